"""Avatars: checked by content, re-encoded, served back only to the owner."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.helpers import as_user, create_chat, image_bytes, multipart_chat

ALICE = as_user("alice")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
async def test_create_with_avatar_reencodes(client: httpx.AsyncClient, fmt: str) -> None:
    # The client's filename and declared type are ignored; the content decides.
    response = await client.post(
        "/chats",
        headers=ALICE,
        **multipart_chat(
            {"title": "Pictured", "temperature": 0.5}, image_bytes(fmt, (1200, 600)), name="x.exe"
        ),
    )
    assert response.status_code == 201, response.text
    chat = response.json()
    assert (chat["title"], chat["temperature"]) == ("Pictured", 0.5)
    assert chat["avatar_url"] == f"/avatars/{chat['id']}"

    avatar = await client.get(chat["avatar_url"], headers=ALICE)
    assert avatar.status_code == 200
    assert avatar.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(avatar.content))
    assert image.format == "WEBP"
    assert max(image.size) == 512 and image.size == (512, 256)  # bounded, aspect kept


async def test_update_replaces_and_removes_avatar(client: httpx.AsyncClient) -> None:
    chat = await create_chat(client, "alice", title="Plain")
    assert (await client.get(f"/avatars/{chat['id']}", headers=ALICE)).json()["error"] == (
        "AvatarNotFound"
    )
    response = await client.put(
        f"/chats/{chat['id']}",
        headers=ALICE,
        **multipart_chat({"description": "now with a face"}, image_bytes("PNG", (32, 32), "blue")),
    )
    assert response.status_code == 200, response.text
    assert response.json()["avatar_url"] == f"/avatars/{chat['id']}"
    assert response.json()["description"] == "now with a face"
    pixel = Image.open(
        io.BytesIO((await client.get(f"/avatars/{chat['id']}", headers=ALICE)).content)
    )
    assert pixel.convert("RGB").getpixel((16, 16))[2] > 200  # blue

    removed = await client.put(f"/chats/{chat['id']}", json={"remove_avatar": True}, headers=ALICE)
    assert removed.json()["avatar_url"] is None
    assert (await client.get(f"/avatars/{chat['id']}", headers=ALICE)).status_code == 404


async def test_multipart_without_avatar(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chats", headers=ALICE, **multipart_chat({"title": "No face"}, None)
    )
    assert response.status_code == 201, response.text
    assert response.json()["avatar_url"] is None
