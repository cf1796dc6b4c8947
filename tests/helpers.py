from __future__ import annotations

import io
import json
from typing import Any

import httpx
from PIL import Image


def as_user(name: str) -> dict[str, str]:
    return {"X-Ragline-Dev-User": name}


async def create_chat(client: httpx.AsyncClient, user: str, **fields: Any) -> dict[str, Any]:
    body = {"title": "Assistant", **fields}
    response = await client.post("/chats", json=body, headers=as_user(user))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def multipart_chat(
    chat: dict[str, Any] | str, avatar: bytes | None, name: str = "a.png"
) -> dict[str, Any]:
    """httpx kwargs for the multipart form of POST/PUT /chats."""
    text = chat if isinstance(chat, str) else json.dumps(chat)
    kwargs: dict[str, Any] = {"data": {"chat": text}}
    if avatar is not None:
        kwargs["files"] = {"file": (name, avatar, "application/octet-stream")}
    else:
        kwargs["files"] = {"unused": ("", b"", "application/octet-stream")}
    return kwargs
