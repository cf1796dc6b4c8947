from __future__ import annotations

import re
import socket

import httpx

from ragline.config import Settings
from tests.helpers import running_app


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "queue", "llm", "embeddings", "ingestion"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


async def test_readyz_reports_redis_down(settings: Settings) -> None:
    down = settings.model_copy(update={"redis_port": _closed_port()})
    async with running_app(down) as (client, _state):
        ready = await client.get("/readyz")
        assert (await client.get("/healthz")).status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "down"


async def test_docs_are_served_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets, page.text
    for asset in assets:
        assert asset.startswith("/"), f"docs page loads {asset} from another host"
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 1000, asset
    spec = (await client.get("/openapi.json")).json()
    assert {"/chats", "/chats/{chat_id}", "/favourites/{chat_id}", "/messages/{chat_id}"} <= set(
        spec["paths"]
    )
    create = spec["paths"]["/chats"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(create)


async def test_cors_allows_frontend(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/chats",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    other = await client.options(
        "/chats",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers
