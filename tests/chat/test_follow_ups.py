"""Follow-ups keep the question: one that stands alone is searched as asked, with no
rewrite call; one that needs the conversation is searched as asked and as the model
rewrites it, fused, so a rewrite that drifts to the previous topic (the small local
model's habit) still finds the question's own chunk. The loopback model records every
request and rewrites as each test chooses."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ragline.chat.answer import _standalone
from ragline.config import Settings
from ragline.rag.llm.base import ChatMessage, GenerationParams, LLMUnavailable, Usage
from tests.chat.helpers import FACT, QUESTION, seeded_chat
from tests.fake_providers import FakeProvider, fake_reply, openai_chat_server
from tests.helpers import running_app
from tests.openai_api.helpers import ALICE, via

FIRST = "What does reefing do?"
REFERS_BACK = "Does that apply to the Zephyrine valve too?"
DRIFTED = "What does reefing do in strong wind?"
"""The rewrite of ``REFERS_BACK``, stuck on the previous topic."""


def drifting(messages: list[dict[str, Any]]) -> list[str]:
    """A rewrite request gets ``DRIFTED``; an answer the usual fake reply."""
    if "Last question:" not in messages[-1]["content"]:
        return fake_reply(messages)
    first, *rest = DRIFTED.split(" ")
    return [first, *(f" {word}" for word in rest)]


def rewrites(model: FakeProvider, before: int) -> list[str]:
    """The rewrite requests' prompts since request number ``before``."""
    prompts = [r["body"]["messages"][-1]["content"] for r in model.requests[before:]]
    return [prompt for prompt in prompts if "Last question:" in prompt]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # plays no part here
@pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)
async def test_follow_ups_keep_the_question(doc_settings: Settings, db: Any) -> None:
    with openai_chat_server(reply=drifting) as model:
        # Two passages per answer: a drifted rewrite's own ranking would fill them.
        settings = via(doc_settings, model, retrieval_top_k=2)
        async with running_app(settings) as (client, _state):
            chat_id, ids = await seeded_chat(client, "alice")
            first = await client.post(f"/chats/{chat_id}/chat", json={"text": FIRST}, headers=ALICE)
            assert first.status_code == 200, first.text
            assert first.json()["sources"][0]["file_id"] == ids["sailing.txt"]

            # Stands alone: searched as asked; the model is asked for the answer only.
            before = len(model.requests)
            alone = await client.post(
                f"/chats/{chat_id}/chat", json={"text": QUESTION}, headers=ALICE
            )
            assert alone.status_code == 200, alone.text
            assert len(model.requests) == before + 1 and rewrites(model, before) == []
            assert alone.json()["sources"][0]["file_id"] == ids["history.pdf"]

            # Refers back: rewritten (and the rewrite drifts); the question as asked still
            # brings its chunk, which the rewrite alone would not.
            drifted = await client.post(
                f"/chats/{chat_id}/search", json={"query": DRIFTED, "k": 2}, headers=ALICE
            )
            assert ids["history.pdf"] not in {r["file_id"] for r in drifted.json()["results"]}
            before = len(model.requests)
            follow_up = await client.post(
                f"/chats/{chat_id}/chat", json={"text": REFERS_BACK}, headers=ALICE
            )
            assert follow_up.status_code == 200, follow_up.text
            [rewrite] = rewrites(model, before)
            assert f"Last question: {REFERS_BACK}" in rewrite and FIRST in rewrite
            sources = follow_up.json()["sources"]
            assert len(sources) == 2
            assert {s["file_id"] for s in sources} == {ids["history.pdf"], ids["sailing.txt"]}
            assert any("Zephyrine" in s["snippet"] for s in sources)
            passages = model.requests[-1]["body"]["messages"][0]["content"]
            assert FACT in passages


class Unreachable:
    name = "fake:unreachable"

    async def stream(self, messages: Any, params: GenerationParams, usage: Usage) -> Any:
        raise LLMUnavailable("connection refused")
        yield  # an async generator, as providers are

    async def aclose(self) -> None:
        return None


async def test_a_failed_rewrite_searches_the_question_as_asked() -> None:
    history = [ChatMessage("user", FIRST), ChatMessage("assistant", "It reduces sail area.")]
    runtime: Any = SimpleNamespace(llm=Unreachable())
    assert await _standalone(runtime, history, REFERS_BACK, None) == REFERS_BACK
