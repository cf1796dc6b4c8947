"""OpenAI clients, unchanged, against a real `ragline serve` whose own model is the
loopback OpenAI server (configured with the OpenAI SDK's variable names): the official
`openai` client (whole and streamed) and LlamaIndex's `OpenAILike` (chat and stream_chat).
Models are the user's assistants; answers come from the files with `sources`; nobody
reaches another user's assistant; nothing is written to the assistant's history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from llama_index.core.llms import ChatMessage as LlamaMessage
from llama_index.llms.openai_like import OpenAILike
from openai.types.chat import ChatCompletionMessageParam

from tests.chat.helpers import FACT, QUESTION, seeded_chat
from tests.fake_providers import CHAT_MODEL, FakeProvider, fake_reply, openai_chat_server
from tests.helpers import as_user
from tests.services import embedded_env, free_port, ragline_server

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]
CONVERSATION: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": "Marta Kowalczyk invented it."},
    {"role": "user", "content": "And in which city?"},
]
UPSTREAM_KEY = "sk-upstream-test"


class Served:
    def __init__(self, base: str, chat: str, model: FakeProvider) -> None:
        self.base = base
        self.chat = chat  # alice's assistant, seeded with three files
        self.model = model  # the loopback model server ragline answers with

    def client(self, user: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.base}/v1",
            api_key="unused",
            default_headers=as_user(user),
            timeout=120,
            max_retries=0,
        )

    def sent_since(self, before: int) -> dict[str, Any]:
        """The last request the model server received after ``before`` requests."""
        assert len(self.model.requests) > before
        return self.model.requests[-1]["body"]  # type: ignore[no-any-return]

    def history(self) -> list[Any]:
        response = httpx.get(f"{self.base}/messages/{self.chat}", headers=as_user("alice"))
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]


async def _seed(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return (await seeded_chat(client, "alice"))[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("openai")
    with openai_chat_server() as model:
        env = embedded_env(
            workdir / "data",
            free_port(),
            LLM_PROVIDER="openai",
            OPENAI_BASE_URL=f"{model.url}/v1",
            OPENAI_API_KEY=UPSTREAM_KEY,
            OPENAI_MODEL=CHAT_MODEL,
            LLM_MAX_TOKENS="64",
            RATE_LIMIT_CHAT="",
        )
        with ragline_server(workdir, env) as (base, _):
            yield Served(base, asyncio.run(_seed(base)), model)


def _check_sources(sources: list[dict[str, Any]]) -> None:
    assert sources, "no sources"
    assert (sources[0]["file_name"], sources[0]["page"]) == ("history.pdf", 2), sources


def test_models_are_the_users_assistants(served: Served) -> None:
    models = served.client("alice").models.list()
    assert [model.id for model in models.data] == [served.chat]
    model = models.data[0]
    assert (model.object, model.owned_by, model.model_extra) == (
        "model",
        "ragline",
        {"name": "valves"},
    )
    assert model.created > 1_700_000_000
    assert served.client("bob").models.list().data == []


def test_create_sends_the_whole_conversation(served: Served) -> None:
    before = len(served.model.requests)
    completion = served.client("alice").chat.completions.create(
        model=served.chat,
        messages=CONVERSATION,
        temperature=0.7,
        top_p=0.9,
        max_tokens=5,
        stop="zz",
        user="x",
    )
    sent = served.sent_since(before)
    assert served.model.requests[-1]["auth"] == f"Bearer {UPSTREAM_KEY}"  # OPENAI_API_KEY
    assert sent["model"] == CHAT_MODEL
    assert sent["messages"][1:] == CONVERSATION[1:]
    system = sent["messages"][0]["content"]
    assert "Answer in one sentence." in system and FACT in system
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["stop"]) == (
        0.7,
        0.9,
        5,
        ["zz"],
    )
    assert completion.object == "chat.completion" and completion.model == served.chat
    choice = completion.choices[0]
    assert (choice.message.role, choice.finish_reason) == ("assistant", "stop")
    assert choice.message.content == "".join(fake_reply(sent["messages"])[:5])
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    assert completion.model_extra is not None
    _check_sources(completion.model_extra["sources"])
    assert served.history() == []  # nothing written


def test_create_streamed_with_usage(served: Served) -> None:
    before = len(served.model.requests)
    stream = served.client("alice").chat.completions.create(
        model=served.chat,
        messages=ASK,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    reply = fake_reply(served.sent_since(before)["messages"])
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    *answer, finish, usage = chunks
    assert "".join(chunk.choices[0].delta.content or "" for chunk in answer) == "".join(reply)
    assert [c.choices[0].finish_reason for c in answer] == [None] * len(answer)
    assert finish.choices[0].finish_reason == "stop"
    assert finish.model_extra is not None
    _check_sources(finish.model_extra["sources"])
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.completion_tokens == len(reply)
    assert all(chunk.usage is None for chunk in [*answer, finish])
    assert served.history() == []


def test_errors_raise_the_clients_exceptions(served: Served) -> None:
    bob, alice = served.client("bob"), served.client("alice")
    for model in (served.chat, "gpt-4o", "00000000-0000-0000-0000-000000000000"):
        for stream in (False, True):
            with pytest.raises(openai.NotFoundError) as missing:
                bob.chat.completions.create(model=model, messages=ASK, stream=stream)
            assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    refused: list[dict[str, Any]] = [
        {"tools": [{"type": "function", "function": {"name": "lookup"}}]},
        {"n": 2},
        {"response_format": {"type": "json_object"}},
    ]
    for extra in refused:
        with pytest.raises(openai.BadRequestError) as caught:
            alice.chat.completions.create(model=served.chat, messages=ASK, **extra)
        assert caught.value.type == "invalid_request_error"
        assert caught.value.param == next(iter(extra))
    for messages in ([], [{"role": "system", "content": "hi"}], [{"role": "user", "content": " "}]):
        with pytest.raises(openai.BadRequestError):
            alice.chat.completions.create(model=served.chat, messages=messages)  # type: ignore[arg-type]


def test_llamaindex_openai_like(served: Served) -> None:
    llm = OpenAILike(
        model=served.chat,
        api_base=f"{served.base}/v1",
        api_key="unused",
        is_chat_model=True,
        default_headers=as_user("alice"),
        max_retries=0,
        timeout=120,
    )
    messages = [LlamaMessage(role=m["role"], content=m.get("content")) for m in CONVERSATION]
    before = len(served.model.requests)
    response = llm.chat(messages)
    sent = served.sent_since(before)["messages"]
    assert sent[1:] == CONVERSATION[1:]
    assert response.message.content == "".join(fake_reply(sent))

    before = len(served.model.requests)
    streamed = list(llm.stream_chat(messages))
    sent = served.sent_since(before)["messages"]
    assert [piece.delta for piece in streamed if piece.delta] == fake_reply(sent)
    assert streamed[-1].message.content == "".join(fake_reply(sent))
    assert served.history() == []
