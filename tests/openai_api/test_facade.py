"""The `openai` client, unchanged, against a real `ragline serve`: models are the user's
assistants, completions (whole and streamed) answer from the files with `sources`, and
nobody reaches another user's assistant. Three LLM calls in all (16 tokens each)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ragline.config import Settings
from tests.chat.helpers import QUESTION, seeded_chat, with_llm_down
from tests.helpers import as_user, create_chat, running_app
from tests.services import embedded_env, free_port, ragline_server

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]


class Served:
    def __init__(self, base: str, chats: list[str]) -> None:
        self.base = base
        self.chats = chats  # alice's: one for the whole answer, one for the stream

    def client(self, user: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.base}/v1",
            api_key="unused",
            default_headers=as_user(user),
            timeout=300,
            max_retries=0,
        )


async def _seed(base: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return [(await seeded_chat(client, "alice"))[0] for _ in range(2)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("openai")
    env = embedded_env(workdir / "data", free_port(), LLM_MAX_TOKENS="16")
    with ragline_server(workdir, env) as (base, _):
        yield Served(base, asyncio.run(_seed(base)))


def _check_sources(sources: list[dict[str, Any]]) -> None:
    assert sources, "no sources"
    assert (sources[0]["file_name"], sources[0]["page"]) == ("history.pdf", 2), sources


def test_models_are_the_users_assistants(served: Served) -> None:
    models = served.client("alice").models.list()
    assert {model.id for model in models.data} == set(served.chats)
    model = models.data[0]
    assert (model.object, model.owned_by, model.model_extra) == (
        "model",
        "ragline",
        {"name": "valves"},
    )
    assert model.created > 1_700_000_000
    assert served.client("bob").models.list().data == []


def test_completion_whole(served: Served) -> None:
    completion = served.client("alice").chat.completions.create(
        model=served.chats[0], messages=ASK, temperature=0.7, max_tokens=5, user="x"
    )
    assert completion.object == "chat.completion"
    assert completion.model == served.chats[0]
    choice = completion.choices[0]
    assert (choice.message.role, choice.finish_reason) == ("assistant", "stop")
    assert choice.message.content and choice.message.content.strip()
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.model_extra is not None
    _check_sources(completion.model_extra["sources"])


def test_completion_streamed(served: Served) -> None:
    stream = served.client("alice").chat.completions.create(
        model=served.chats[1],
        messages=[{"role": "system", "content": "Be brief."}, *ASK],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text.strip()
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert last.model_extra is not None
    _check_sources(last.model_extra["sources"])
    assert all("sources" not in (chunk.model_extra or {}) for chunk in chunks[:-1])


def test_other_users_and_unknown_models_are_404(served: Served) -> None:
    bob = served.client("bob")
    for model in (served.chats[0], "gpt-4o", "00000000-0000-0000-0000-000000000000"):
        for stream in (False, True):
            with pytest.raises(openai.NotFoundError) as caught:
                bob.chat.completions.create(model=model, messages=ASK, stream=stream)
            assert caught.value.body == "ChatNotFound"  # the client keeps body["error"]


def test_bad_bodies_are_422(served: Served) -> None:
    alice = served.client("alice")
    for messages in ([], [{"role": "system", "content": "hi"}], [{"role": "user", "content": " "}]):
        with pytest.raises(openai.UnprocessableEntityError):
            alice.chat.completions.create(model=served.chats[0], messages=messages)  # type: ignore[arg-type]
    with httpx.Client(base_url=served.base, headers=as_user("alice")) as client:
        for body in (
            {"model": served.chats[0]},
            {"messages": ASK},
            {"model": served.chats[0], "messages": "hi"},
        ):
            response = client.post("/v1/chat/completions", json=body)
            assert response.status_code == 422, response.text
            assert response.json()["error"] == "ValidationError"


async def test_model_down_is_503(settings: Settings, db: Any) -> None:
    settings = with_llm_down(settings)
    async with running_app(settings) as (client, _state):
        chat = await create_chat(client, "alice", title="down")
        for stream in (False, True):
            response = await client.post(
                "/v1/chat/completions",
                json={"model": chat["id"], "messages": ASK, "stream": stream},
                headers=as_user("alice"),
            )
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"] == "LLMUnavailableError"
