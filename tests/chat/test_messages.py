from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ragline.models import ChatMessage, MessageRole, MessageStatus, User
from tests.helpers import as_user, create_chat

ALICE = as_user("alice")


async def test_history_empty_then_paginated(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    chat = await create_chat(client, "alice", title="History")
    empty = (await client.get(f"/messages/{chat['id']}", headers=ALICE)).json()
    assert empty == {"items": [], "total": 0, "page": 1, "size": 50, "pages": 0}

    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with AsyncSession(db) as session:
        owner = await session.scalar(select(User.id).where(User.subject == "alice"))
        assert owner is not None
        for i in range(5):
            session.add(
                ChatMessage(
                    owner_id=owner,
                    chat_id=uuid.UUID(chat["id"]),
                    role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                    text=f"message {i}",
                    sources=[{"file_id": "f", "page": i}] if i % 2 else [],
                    status=MessageStatus.COMPLETE,
                    prompt_tokens=i,
                    completion_tokens=2 * i,
                    created_at=start + timedelta(seconds=i),
                )
            )
        await session.commit()

    page = (await client.get(f"/messages/{chat['id']}?size=2&page=2", headers=ALICE)).json()
    assert (page["total"], page["pages"]) == (5, 3)
    assert [m["text"] for m in page["items"]] == ["message 2", "message 3"]
    third = page["items"][1]
    assert third["role"] == "assistant" and third["status"] == "complete"
    assert third["sources"] == [{"file_id": "f", "page": 3}]
    assert third["usage"] == {"prompt_tokens": 3, "completion_tokens": 6}
    assert third["created_at"].startswith("2026-01-01T00:00:03")

    newest = (await client.get(f"/messages/{chat['id']}?size=1&order=desc", headers=ALICE)).json()
    assert [m["text"] for m in newest["items"]] == ["message 4"]
    bad = await client.get(f"/messages/{chat['id']}?order=sideways", headers=ALICE)
    assert bad.status_code == 422
