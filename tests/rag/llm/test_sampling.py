"""``top_p`` and ``stop`` reach the OpenAI-compatible and Ollama providers' wire formats
(loopback servers), and are left out when unset so the model's defaults apply."""

from __future__ import annotations

from ragline.rag.llm.base import ChatMessage, GenerationParams, Usage
from ragline.rag.llm.ollama import OllamaLLM
from ragline.rag.llm.openai import OpenAILLM
from tests.fake_providers import CHAT_MODEL, ollama_chat_server, openai_chat_server

QUESTION = [ChatMessage("user", "Where do herons nest?")]
# fake_reply: "You asked: Where do herons nest? Here is my answer."
SAMPLED = GenerationParams(temperature=0.7, max_tokens=50, top_p=0.4, stop=("Here", "zz"))


async def test_openai_sends_top_p_and_stop() -> None:
    with openai_chat_server() as server:
        llm = OpenAILLM(base_url=f"{server.url}/v1", api_key=None, model=CHAT_MODEL)
        usage = Usage()
        cut = "".join([piece async for piece in llm.stream(QUESTION, SAMPLED, usage)])
        plain = [piece async for piece in llm.stream(QUESTION, GenerationParams(), Usage())]
        await llm.aclose()
    assert cut == "You asked: Where do herons nest? "  # the server stopped before "Here"
    assert usage.completion_tokens == 7  # six words, then the space before "Here"
    sampled, default = (request["body"] for request in server.requests)
    assert (sampled["temperature"], sampled["top_p"], sampled["stop"]) == (0.7, 0.4, ["Here", "zz"])
    assert sampled["max_tokens"] == 50
    assert "top_p" not in default and "stop" not in default
    assert "".join(plain).endswith("Here is my answer.")


async def test_ollama_sends_top_p_and_stop_as_options() -> None:
    with ollama_chat_server() as server:
        llm = OllamaLLM(base_url=server.url, model=CHAT_MODEL)
        _ = [piece async for piece in llm.stream(QUESTION, SAMPLED, Usage())]
        await llm.aclose()
    assert server.requests[0]["body"]["options"] == {
        "temperature": 0.7,
        "num_predict": 50,
        "top_p": 0.4,
        "stop": ["Here", "zz"],
    }
