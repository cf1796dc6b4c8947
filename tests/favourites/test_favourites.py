from __future__ import annotations

import asyncio

import httpx

from tests.helpers import as_user, create_chat

ALICE = as_user("alice")


async def test_favourite_lifecycle(client: httpx.AsyncClient) -> None:
    chat = await create_chat(client, "alice", title="Fav")
    url = f"/favourites/{chat['id']}"
    missing = await client.get(url, headers=ALICE)
    assert missing.status_code == 404 and missing.json()["error"] == "FavouriteNotFound"

    added = await client.post(url, headers=ALICE)
    assert added.status_code == 201
    assert added.json()["chat_id"] == chat["id"]
    again = await client.post(url, headers=ALICE)  # idempotent
    assert again.status_code == 200 and again.json() == added.json()
    assert (await client.get(url, headers=ALICE)).json() == added.json()
    assert (await client.get(f"/chats/{chat['id']}", headers=ALICE)).json()["is_favourite"]

    assert (await client.delete(url, headers=ALICE)).status_code == 204
    assert (await client.delete(url, headers=ALICE)).status_code == 404
    assert not (await client.get(f"/chats/{chat['id']}", headers=ALICE)).json()["is_favourite"]


async def test_list_favourites_paginated(client: httpx.AsyncClient) -> None:
    chats = [await create_chat(client, "alice", title=f"c{i}") for i in range(5)]
    for chat in chats[:4]:
        assert (await client.post(f"/favourites/{chat['id']}", headers=ALICE)).status_code == 201
        await asyncio.sleep(0.002)
    page = (await client.get("/favourites?size=3", headers=ALICE)).json()
    assert (page["total"], page["pages"]) == (4, 2)
    assert [c["id"] for c in page["items"]] == [c["id"] for c in chats[:4][::-1][:3]]
    assert all(c["is_favourite"] for c in page["items"])
    listed = (await client.get("/chats", headers=ALICE)).json()["items"]
    assert {c["id"]: c["is_favourite"] for c in listed} == {
        c["id"]: i < 4 for i, c in enumerate(chats)
    }
