"""Grounded answers end to end with the embedded default model (in-process llama.cpp):
streamed deltas, sources naming the file and page, history stored with its sources."""

from __future__ import annotations

from typing import Any

import pytest

from ragline.config import Settings
from tests.chat.helpers import FACT, QUESTION, parse_sse, seeded_chat
from tests.helpers import as_user, running_app

ALICE = as_user("alice")
pytestmark = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)


def short(settings: Settings) -> Settings:
    """Short answers keep the model's share of the test time small."""
    return settings.model_copy(update={"llm_max_tokens": 16})


async def test_stream_answers_with_sources_and_stores_history(
    doc_settings: Settings, db: Any
) -> None:
    async with running_app(short(doc_settings)) as (client, _state):
        chat_id, ids = await seeded_chat(client, "alice")

        response = await client.post(
            f"/chats/{chat_id}/chat/stream", json={"text": QUESTION}, headers=ALICE
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)
        names = [name for name, _ in events]
        assert names[-2:] == ["sources", "done"] and set(names[:-2]) == {"delta"}
        answer = "".join(data["text"] for name, data in events if name == "delta")
        assert answer.strip()
        sources = events[-2][1]["sources"]
        assert sources[0]["file_id"] == ids["history.pdf"]
        assert sources[0]["file_name"] == "history.pdf" and sources[0]["page"] == 2
        assert "Zephyrine" in sources[0]["snippet"]
        assert set(sources[0]) >= {"file_id", "file_name", "page", "snippet", "score"}
        message_id = events[-1][1]["message_id"]

        history = (await client.get(f"/messages/{chat_id}", headers=ALICE)).json()["items"]
        assert [(m["role"], m["status"]) for m in history] == [
            ("user", "complete"),
            ("assistant", "complete"),
        ]
        assert history[0]["text"] == QUESTION
        assert history[1]["id"] == message_id and history[1]["text"] == answer
        assert history[1]["sources"] == sources
        assert history[1]["usage"]["completion_tokens"] > 0


async def test_whole_answer_and_follow_up(doc_settings: Settings, db: Any) -> None:
    async with running_app(short(doc_settings)) as (client, _state):
        chat_id, ids = await seeded_chat(client, "alice")
        first = await client.post(f"/chats/{chat_id}/chat", json={"text": QUESTION}, headers=ALICE)
        assert first.status_code == 200, first.text
        body = first.json()
        assert set(body) == {"message_id", "text", "sources", "usage", "supported", "unsupported"}
        assert body["sources"][0]["file_id"] == ids["history.pdf"]
        assert body["usage"]["completion_tokens"] > 0

        # A follow-up (history exists: rewritten into a standalone query for retrieval).
        second = await client.post(
            f"/chats/{chat_id}/chat", json={"text": "In which year?"}, headers=ALICE
        )
        assert second.status_code == 200, second.text
        history = (await client.get(f"/messages/{chat_id}", headers=ALICE)).json()["items"]
        assert len(history) == 4 and history[2]["text"] == "In which year?"


async def test_search_returns_chunks_with_scores_and_offsets(
    doc_settings: Settings, db: Any
) -> None:
    async with running_app(doc_settings) as (client, _state):
        chat_id, ids = await seeded_chat(client, "alice")
        response = await client.post(
            f"/chats/{chat_id}/search", json={"query": "Zephyrine valve inventor"}, headers=ALICE
        )
        assert response.status_code == 200, response.text
        top = response.json()["results"][0]
        assert top["file_id"] == ids["history.pdf"] and top["page"] == 2
        assert FACT in top["text"] and top["score"] > 0
        assert 0 <= top["start_char"] < top["end_char"]
        assert top["dense_score"] is not None and top["keyword_score"] is not None

        only_sailing = {"files": {ids["sailing.txt"]: {"queried": True}}}
        restricted = await client.post(
            f"/chats/{chat_id}/search",
            json={"query": "Zephyrine valve", "params": only_sailing},
            headers=ALICE,
        )
        assert {r["file_id"] for r in restricted.json()["results"]} == {ids["sailing.txt"]}

        for bad in ({"query": ""}, {"query": "x", "k": 0}, {"query": "x", "mode": "magic"}, {}):
            rejected = await client.post(f"/chats/{chat_id}/search", json=bad, headers=ALICE)
            assert rejected.status_code == 422 and rejected.json()["error"] == "ValidationError"
        blank = await client.post(f"/chats/{chat_id}/chat", json={"text": "  "}, headers=ALICE)
        assert blank.status_code == 422
