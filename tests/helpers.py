from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import Image

from ragline.config import Settings
from ragline.lifespan import AppState
from ragline.main import create_app


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


@asynccontextmanager
async def running_app(
    settings: Settings,
    *,
    app: FastAPI | None = None,
    client_host: str = "127.0.0.1",
    raise_app_exceptions: bool = True,
) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    """The API in-process with its real lifespan (ingestion workers included), a client
    speaking to it over ASGI from ``client_host``, and its state (stores, settings...)."""
    app = app or create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(
            app=manager.app, client=(client_host, 40000), raise_app_exceptions=raise_app_exceptions
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client, app.state.ragline
