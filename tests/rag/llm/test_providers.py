"""The three chat-model providers against real models and real HTTP: the embedded SmolLM2
in-process, llama.cpp's OpenAI-compatible server with the same model, and a loopback
server speaking Ollama's `/api/chat`. Answers are short (a few tokens at temperature 0) and
the assertions are about structure, never the model's wording."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import pytest

from ragline.rag.llm.base import (
    LLM,
    ChatMessage,
    GenerationParams,
    LLMError,
    LLMUnavailable,
    Usage,
    complete,
)
from ragline.rag.llm.local import MODEL_NAME, LocalLLM
from ragline.rag.llm.ollama import OllamaLLM
from ragline.rag.llm.openai import OpenAILLM
from tests.fake_providers import CHAT_MODEL, fake_reply, ollama_chat_server
from tests.services import LLAMA_MODEL_ALIAS, free_port, llama_server, stop_process

HELLO = [ChatMessage("user", "Say hello.")]
SHORT = GenerationParams(temperature=0.0, max_tokens=8)
LONG = [ChatMessage("user", "Count from 1 to 100, separated by commas.")]


async def stream_text(llm: LLM, messages: list[ChatMessage], params: GenerationParams) -> str:
    return "".join([piece async for piece in llm.stream(messages, params, Usage())])


async def collect(stream: AsyncIterator[str], pieces: list[str]) -> None:
    """Appends as it reads, so the pieces before a failure stay visible."""
    async for piece in stream:
        pieces.append(piece)


def assert_streamed(pieces: list[str], usage: Usage, max_tokens: int) -> None:
    assert pieces and all(isinstance(piece, str) and piece for piece in pieces)
    assert "".join(pieces).strip()
    # A piece holds one token or more (a streamer may hold back a partial word).
    assert 1 <= len(pieces) <= usage.completion_tokens <= max_tokens


# --- local: SmolLM2 in-process --------------------------------------------------------


@pytest.fixture(scope="module")
def local_llm() -> Iterator[LocalLLM]:
    llm = LocalLLM(n_ctx=2048, n_threads=2)
    yield llm
    asyncio.run(llm.aclose())


def test_local_warm_up_loads_the_model(local_llm: LocalLLM) -> None:
    local_llm.warm_up()  # what `ragline serve` runs in the background at start-up
    assert local_llm.loaded


async def test_local_streams_a_short_deterministic_answer(local_llm: LocalLLM) -> None:
    usage = Usage()
    pieces = [piece async for piece in local_llm.stream(HELLO, SHORT, usage)]
    assert_streamed(pieces, usage, SHORT.max_tokens)
    assert usage.prompt_tokens > 0
    assert local_llm.name == f"local:{MODEL_NAME}"
    assert await stream_text(local_llm, HELLO, SHORT) == "".join(pieces)


async def test_local_concurrent_streams_are_serialised(local_llm: LocalLLM) -> None:
    order: list[str] = []

    async def run(label: str, question: str) -> str:
        text = ""
        async for piece in local_llm.stream([ChatMessage("user", question)], SHORT, Usage()):
            order.append(label)
            text += piece
        return text

    async with asyncio.timeout(60):
        first, second = await asyncio.gather(run("a", "Say hello."), run("b", "Name a colour."))
    assert first.strip() and second.strip()
    # One generation at a time: each stream's pieces arrive together, never interleaved.
    assert order == sorted(order) or order == sorted(order, reverse=True)


async def test_local_consumer_that_stops_early(local_llm: LocalLLM) -> None:
    usage = Usage()
    async with asyncio.timeout(60):
        async for _ in local_llm.stream(LONG, GenerationParams(max_tokens=64), usage):
            break
        # The abandoned generation stops at its next token; the model answers again.
        assert await stream_text(local_llm, HELLO, SHORT)
    assert 1 <= usage.completion_tokens < 64


async def test_local_aclose_waits_for_a_running_generation(local_llm: LocalLLM) -> None:
    usage = Usage()
    async with asyncio.timeout(60):
        stream = local_llm.stream(HELLO, SHORT, usage)
        pieces = [await anext(stream)]
        await local_llm.aclose()  # waits for the generation instead of freeing the model
        pieces += [piece async for piece in stream]
        assert_streamed(pieces, usage, SHORT.max_tokens)
        assert await stream_text(local_llm, HELLO, SHORT) == "".join(pieces)  # loaded again


def wait_unloaded(llm: LocalLLM, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while llm.loaded:
        assert time.monotonic() < deadline, "the model was not unloaded"
        time.sleep(0.1)


async def test_local_unloads_after_keep_alive_and_loads_again() -> None:
    llm = LocalLLM(n_ctx=2048, n_threads=2, keep_alive_s=0.5)
    try:
        first = await stream_text(llm, HELLO, SHORT)
        assert llm.loaded
        await asyncio.to_thread(wait_unloaded, llm, 30)  # unused for keep_alive_s
        assert await stream_text(llm, HELLO, SHORT) == first  # the next question loads it
    finally:
        await llm.aclose()


# --- openai: llama.cpp's server -----------------------------------------------


def openai_llm(base_url: str, **options: float) -> OpenAILLM:
    return OpenAILLM(
        base_url=base_url, api_key=None, model=LLAMA_MODEL_ALIAS, max_retries=0, **options
    )


async def test_openai_streams_and_completes(llm_server: str) -> None:
    llm = openai_llm(llm_server, timeout=60)
    try:
        usage = Usage()
        pieces = [piece async for piece in llm.stream(HELLO, SHORT, usage)]
        # llama.cpp's server ignores `stream_options`: usage is counted from the pieces.
        assert_streamed(pieces, usage, SHORT.max_tokens)
        completion = await complete(llm, HELLO, SHORT)
        assert completion.text.strip()
        assert 1 <= completion.usage.completion_tokens <= SHORT.max_tokens
    finally:
        await llm.aclose()
    assert llm.name == f"openai:{LLAMA_MODEL_ALIAS}"


async def test_openai_nothing_listening_is_unavailable() -> None:
    llm = OpenAILLM(
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        api_key="key",
        model="m",
        timeout=5,
        connect_timeout=1,
        max_retries=1,
    )
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="unreachable"):
        await stream_text(llm, HELLO, SHORT)
    assert time.monotonic() - started < 5
    await llm.aclose()


async def test_openai_server_stopped_mid_stream_is_an_error() -> None:
    with llama_server() as (url, process):
        llm = openai_llm(url, timeout=30)
        pieces: list[str] = []

        async def read_and_stop_the_server() -> None:
            async for piece in llm.stream(LONG, GenerationParams(max_tokens=128), Usage()):
                pieces.append(piece)
                if len(pieces) == 1:
                    await asyncio.to_thread(stop_process, process)

        async with asyncio.timeout(60):
            with pytest.raises(LLMError, match="broke off"):
                await read_and_stop_the_server()
        await llm.aclose()
    assert 1 <= len(pieces) < 128


# --- ollama: the /api/chat wire format on loopback ----------------------------------


def ollama_llm(url: str, **options: Any) -> OllamaLLM:
    return OllamaLLM(base_url=url, model=CHAT_MODEL, **options)


def reply_to(question: str) -> list[str]:
    return fake_reply([{"role": "user", "content": question}])


async def test_ollama_streams_the_chat_wire_format() -> None:
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "Where do herons nest?")]
    usage = Usage()
    with ollama_chat_server() as server:
        llm = ollama_llm(server.url)
        params = GenerationParams(temperature=0.3, max_tokens=50)
        pieces = [piece async for piece in llm.stream(messages, params, usage)]
        await llm.aclose()
    expected = reply_to("Where do herons nest?")
    assert pieces == expected and len(pieces) > 3
    assert usage.prompt_tokens == 6  # words in the messages, the fake's prompt_eval_count
    assert usage.completion_tokens == len(expected)  # eval_count
    [request] = server.requests
    assert request["path"] == "/api/chat"
    body = request["body"]
    assert body["model"] == CHAT_MODEL and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where do herons nest?"},
    ]
    assert body["options"] == {"temperature": 0.3, "num_predict": 50}


async def test_ollama_max_tokens_cuts_the_answer() -> None:
    with ollama_chat_server() as server:
        llm = ollama_llm(server.url)
        usage = Usage()
        pieces = [piece async for piece in llm.stream(HELLO, GenerationParams(max_tokens=2), usage)]
        await llm.aclose()
    assert pieces == reply_to("Say hello.")[:2]
    assert usage.completion_tokens == 2


async def test_ollama_unknown_model_is_unavailable() -> None:
    with ollama_chat_server() as server:
        llm = ollama_llm(server.url)
        with pytest.raises(LLMUnavailable, match=r'model "missing" not found.*404'):
            await stream_text(llm, HELLO, GenerationParams(model="missing"))
        await llm.aclose()
    assert [r["body"]["model"] for r in server.requests] == ["missing"]  # not retried


async def test_ollama_nothing_listening_is_unavailable_after_retries() -> None:
    llm = ollama_llm(f"http://127.0.0.1:{free_port()}", connect_attempts=3, retry_delay_s=0.1)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="unreachable"):
        await stream_text(llm, HELLO, SHORT)
    assert 0.3 <= time.monotonic() - started < 5  # slept 0.1 s and 0.2 s between attempts
    await llm.aclose()


async def test_ollama_retries_until_the_server_is_up() -> None:
    port = free_port()
    llm = ollama_llm(f"http://127.0.0.1:{port}", connect_attempts=3, retry_delay_s=0.5)
    answer = asyncio.create_task(stream_text(llm, HELLO, SHORT))
    await asyncio.sleep(0.2)  # the first attempt has failed; the second comes at 0.5 s
    with ollama_chat_server(port=port):
        assert await answer == "".join(reply_to("Say hello."))
    await llm.aclose()


@pytest.mark.parametrize("fault", ["drop", "truncate"])
async def test_ollama_broken_stream_is_an_error(fault: Literal["drop", "truncate"]) -> None:
    pieces: list[str] = []
    with ollama_chat_server(fault=fault) as server:
        llm = ollama_llm(server.url)
        with pytest.raises(LLMError):
            await collect(llm.stream(HELLO, SHORT, Usage()), pieces)
        await llm.aclose()
    reply = reply_to("Say hello.")
    assert pieces == (reply[:1] if fault == "drop" else reply)
