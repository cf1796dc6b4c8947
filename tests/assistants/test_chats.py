"""Assistants CRUD, pagination, ordering and search, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import row_counts
from tests.helpers import as_user, create_chat

ALICE = as_user("alice")


async def test_create_read_update(client: httpx.AsyncClient) -> None:
    created = await create_chat(
        client,
        "alice",
        title="  Support bot  ",
        description="Answers tickets",
        context="You are helpful.",
        temperature=0.7,
        model="smollm2",
    )
    assert created["title"] == "Support bot"  # stripped
    assert created["avatar_url"] is None
    assert created["is_favourite"] is False
    uuid.UUID(created["id"])

    read = await client.get(f"/chats/{created['id']}", headers=ALICE)
    assert read.status_code == 200
    assert read.json() == created

    updated = await client.put(
        f"/chats/{created['id']}", json={"description": "Answers all tickets"}, headers=ALICE
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["description"] == "Answers all tickets"
    assert body["title"] == "Support bot"  # left out, kept
    assert body["context"] == "You are helpful."
    assert body["updated_at"] > created["updated_at"]


async def test_defaults(client: httpx.AsyncClient) -> None:
    chat = await create_chat(client, "alice", title="Minimal")
    assert (chat["description"], chat["context"], chat["temperature"], chat["model"]) == (
        "",
        "",
        0.2,
        None,
    )


async def test_list_is_paginated_and_ordered_by_last_interaction(
    client: httpx.AsyncClient,
) -> None:
    ids = []
    for i in range(7):
        ids.append((await create_chat(client, "alice", title=f"chat {i}"))["id"])
        await asyncio.sleep(0.002)  # distinct creation times
    first = (await client.get("/chats?page=1&size=3", headers=ALICE)).json()
    assert (first["total"], first["page"], first["size"], first["pages"]) == (7, 1, 3, 3)
    assert [c["id"] for c in first["items"]] == ids[::-1][:3]
    last = (await client.get("/chats?page=3&size=3", headers=ALICE)).json()
    assert [c["id"] for c in last["items"]] == [ids[0]]
    beyond = (await client.get("/chats?page=4&size=3", headers=ALICE)).json()
    assert beyond["items"] == [] and beyond["total"] == 7
    default = (await client.get("/chats", headers=ALICE)).json()
    assert (default["page"], default["size"], len(default["items"])) == (1, 50, 7)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("invoice", {"Invoices", "Billing"}),
        ("INVOICE", {"Invoices", "Billing"}),
        ("100%", {"Discounts"}),
        ("%", {"Discounts"}),
        ("_", {"snake_case"}),
        ("o'brien", {"O'Brien notes"}),
        ('"quoted"', {"Quotes"}),
        ("'; DROP TABLE chats; --", {"Injection"}),
        ("\\", {"Backslash"}),
        ("nothing matches this", set()),
    ],
)
async def test_search_is_literal(
    client: httpx.AsyncClient, db: AsyncEngine, query: str, expected: set[str]
) -> None:
    for title, description in [
        ("Invoices", "monthly"),
        ("Billing", "Invoice questions"),
        ("Discounts", "100% off"),
        ("snake_case", "names"),
        ("O'Brien notes", ""),
        ("Quotes", 'says "quoted" words'),
        ("Injection", "'; DROP TABLE chats; --"),
        ("Backslash", "a \\ b"),
        ("Plain", "nothing special"),
    ]:
        await create_chat(client, "alice", title=title, description=description)
    response = await client.get("/chats/search", params={"q": query}, headers=ALICE)
    assert response.status_code == 200, response.text
    assert {c["title"] for c in response.json()["items"]} == expected
    assert (await row_counts(db))["chats"] == 9  # the table is still there


async def test_search_is_paginated_and_scoped(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await create_chat(client, "alice", title=f"report {i}")
    await create_chat(client, "bob", title="report of bob")
    page = (await client.get("/chats/search?q=report&size=2", headers=ALICE)).json()
    assert (page["total"], page["pages"], len(page["items"])) == (3, 2, 2)
    assert all("bob" not in c["title"] for c in page["items"])


async def test_delete_removes_dependents(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ragline.models import ChatFile, ChatMessage, FileKind, MessageRole

    keep = await create_chat(client, "alice", title="keep")
    doomed = await create_chat(client, "alice", title="doomed")
    for chat in (keep, doomed):
        assert (await client.post(f"/favourites/{chat['id']}", headers=ALICE)).status_code == 201
    owner_id = await _owner_id(db, "alice")
    async with AsyncSession(db) as session:
        for chat in (keep, doomed):
            chat_id = uuid.UUID(chat["id"])
            session.add(
                ChatMessage(owner_id=owner_id, chat_id=chat_id, role=MessageRole.USER, text="hi")
            )
            session.add(
                ChatFile(
                    owner_id=owner_id,
                    chat_id=chat_id,
                    name="a.txt",
                    mime_type="text/plain",
                    size=1,
                    sha256="0" * 64,
                    storage_key="0" * 32,
                    kind=FileKind.DOCUMENT,
                )
            )
        await session.commit()
    assert (await row_counts(db)) | {"users": 0} == {
        "file_purges": 0,
        "api_keys": 0,
        "users": 0,
        "chats": 2,
        "favourites": 2,
        "chat_messages": 2,
        "chat_files": 2,
    }

    response = await client.delete(f"/chats/{doomed['id']}", headers=ALICE)
    assert response.status_code == 204
    assert (await client.get(f"/chats/{doomed['id']}", headers=ALICE)).status_code == 404
    # The deleted chat's file leaves a purge row, which the purge job removes (whether it
    # has yet is timing: tests/documents/test_ingestion.py waits for it).
    assert (await row_counts(db)) | {"users": 0, "file_purges": 0} == {
        "file_purges": 0,
        "api_keys": 0,
        "users": 0,
        "chats": 1,
        "favourites": 1,
        "chat_messages": 1,
        "chat_files": 1,
    }
    assert (await client.get(f"/chats/{keep['id']}", headers=ALICE)).status_code == 200
    again = await client.delete(f"/chats/{doomed['id']}", headers=ALICE)
    assert again.status_code == 404
    assert again.json()["error"] == "ChatNotFound"


async def _owner_id(db: AsyncEngine, name: str) -> uuid.UUID:
    from sqlalchemy import select

    from ragline.models import User

    async with db.connect() as connection:
        value = await connection.scalar(select(User.id).where(User.subject == name))
    assert value is not None
    return value


async def test_users_are_created_once_per_identity(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await asyncio.gather(*(create_chat(client, "carol", title=f"c{i}") for i in range(5)))
    await create_chat(client, "dave", title="d")
    assert (await row_counts(db))["users"] == 2
