"""Two users: every per-object endpoint answers 404 for another user's object, and the
owner gets a 2xx on the very same request (positive control)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot
from tests.helpers import as_user, create_chat, image_bytes, multipart_chat

ALICE, BOB = as_user("alice"), as_user("bob")

# (method, path, request kwargs, precondition): precondition prepares alice's chat.
CASES: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("GET", "/chats/{id}", {}, None),
    ("PUT", "/chats/{id}", {"json": {"title": "renamed"}}, None),
    ("DELETE", "/chats/{id}", {}, None),
    ("GET", "/avatars/{id}", {}, "avatar"),
    ("GET", "/favourites/{id}", {}, "favourite"),
    ("POST", "/favourites/{id}", {}, None),
    ("DELETE", "/favourites/{id}", {}, "favourite"),
    ("GET", "/messages/{id}", {}, None),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "precondition"), CASES)
async def test_other_users_objects_are_not_found(
    client: httpx.AsyncClient,
    db: AsyncEngine,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    precondition: str | None,
) -> None:
    await create_chat(client, "bob", title="bob's own")  # bob exists and has data
    if precondition == "avatar":
        response = await client.post(
            "/chats", headers=ALICE, **multipart_chat({"title": "alice's"}, image_bytes())
        )
        chat = response.json()
    else:
        chat = await create_chat(client, "alice", title="alice's")
    if precondition == "favourite":
        assert (await client.post(f"/favourites/{chat['id']}", headers=ALICE)).status_code == 201
    url = path.format(id=chat["id"])

    before = await snapshot(db)
    as_bob = await client.request(method, url, headers=BOB, **kwargs)
    assert as_bob.status_code == 404, as_bob.text
    assert as_bob.json()["error"] == "ChatNotFound"
    assert await snapshot(db) == before

    as_alice = await client.request(method, url, headers=ALICE, **kwargs)
    assert 200 <= as_alice.status_code < 300, as_alice.text


async def test_lists_and_search_are_scoped(client: httpx.AsyncClient) -> None:
    alice_chat = await create_chat(client, "alice", title="shared word")
    await create_chat(client, "bob", title="shared word too")
    assert (await client.post(f"/favourites/{alice_chat['id']}", headers=ALICE)).status_code == 201

    for url in ("/chats", "/chats/search?q=shared", "/favourites"):
        bob_ids = {c["id"] for c in (await client.get(url, headers=BOB)).json()["items"]}
        alice_ids = {c["id"] for c in (await client.get(url, headers=ALICE)).json()["items"]}
        assert alice_chat["id"] not in bob_ids, url
        assert alice_chat["id"] in alice_ids, url
