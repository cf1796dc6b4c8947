"""One JSON error shape for every 4xx/5xx, no stack traces to clients."""

from __future__ import annotations

import httpx

from ragline.config import Settings
from ragline.main import create_app
from tests.helpers import running_app


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "detail": "Not Found"}
    wrong = await client.patch("/chats")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "MethodNotAllowed"


async def test_unhandled_error_is_opaque(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    async with running_app(settings, app=app, raise_app_exceptions=False) as (client, _state):
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": "InternalServerError",
        "detail": "Internal server error.",
    }
    assert "secret" not in response.text


async def test_dev_identity_refuses_remote_clients(settings: Settings) -> None:
    async with running_app(settings, client_host="203.0.113.9") as (client, _state):
        response = await client.get("/chats")
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
