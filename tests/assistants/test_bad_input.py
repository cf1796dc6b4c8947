"""Bad input answers a 4xx JSON error and changes nothing in the database."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot
from tests.helpers import as_user, create_chat, image_bytes, multipart_chat

ALICE = as_user("alice")
MISSING = "00000000-0000-4000-8000-000000000000"


async def assert_rejected(
    client: httpx.AsyncClient,
    db: AsyncEngine,
    method: str,
    url: str,
    status: int,
    error: str,
    **kwargs: Any,
) -> dict[str, Any]:
    before = await snapshot(db)
    headers = {**ALICE, **kwargs.pop("headers", {})}
    response = await client.request(method, url, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert "detail" in body
    assert "Traceback" not in response.text
    assert await snapshot(db) == before, "a rejected request changed the database"
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 5}, "title"),
        ({"title": "ok", "temperature": 2.5}, "temperature"),
        ({"title": "ok", "temperature": -0.1}, "temperature"),
        ({"title": "ok", "temperature": "hot"}, "temperature"),
        ({"title": "ok", "description": "d" * 2001}, "description"),
        ({"title": "ok", "context": "c" * 20_001}, "context"),
        ({"title": "ok", "model": ""}, "model"),
        ({"title": "ok", "owner_id": MISSING}, "owner_id"),
    ],
)
async def test_create_with_invalid_fields(
    client: httpx.AsyncClient, db: AsyncEngine, body: dict[str, Any], field: str
) -> None:
    await create_chat(client, "alice", title="existing")
    result = await assert_rejected(client, db, "POST", "/chats", 422, "ValidationError", json=body)
    assert any(problem["loc"][-1] == field for problem in result["detail"]), result


async def test_create_with_malformed_json(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    await assert_rejected(
        client,
        db,
        "POST",
        "/chats",
        422,
        "ValidationError",
        content=b'{"title": ',
        headers={"content-type": "application/json"},
    )


async def test_create_with_unsupported_content_type(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await assert_rejected(
        client,
        db,
        "POST",
        "/chats",
        415,
        "UnsupportedMediaType",
        content=b"title=x",
        headers={"content-type": "text/plain"},
    )


async def test_update_with_invalid_fields(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    chat = await create_chat(client, "alice", title="keep me")
    url = f"/chats/{chat['id']}"
    for body in ({"title": None}, {"title": ""}, {"temperature": 3}, {"unknown": 1}):
        await assert_rejected(client, db, "PUT", url, 422, "ValidationError", json=body)


@pytest.mark.parametrize(
    ("avatar", "status", "error"),
    [
        (b"%PDF-1.7 not an image at all", 415, "UnsupportedAvatarType"),
        (b"", 422, "InvalidAvatar"),
        (image_bytes("PNG")[:60], 422, "InvalidAvatar"),  # truncated PNG
        (image_bytes("BMP"), 415, "UnsupportedAvatarType"),  # real image, not allowed
        (image_bytes("PNG", size=(5000, 5000)), 422, "InvalidAvatar"),  # too many pixels
    ],
)
async def test_create_with_bad_avatar(
    client: httpx.AsyncClient, db: AsyncEngine, avatar: bytes, status: int, error: str
) -> None:
    await assert_rejected(
        client, db, "POST", "/chats", status, error, **multipart_chat({"title": "x"}, avatar)
    )


async def test_create_with_oversized_avatar(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    big = image_bytes("PNG") + b"\0" * (2 * 1024 * 1024)
    await assert_rejected(
        client, db, "POST", "/chats", 413, "AvatarTooLarge", **multipart_chat({"title": "x"}, big)
    )


async def test_multipart_with_bad_chat_field(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    body = await assert_rejected(
        client,
        db,
        "POST",
        "/chats",
        422,
        "ValidationError",
        **multipart_chat("{not json", image_bytes()),
    )
    assert body["detail"][0]["loc"][:2] == ["body", "chat"]
    await assert_rejected(
        client,
        db,
        "POST",
        "/chats",
        422,
        "ValidationError",
        files={"file": ("a.png", image_bytes(), "image/png")},
    )


async def test_update_with_bad_avatar_keeps_chat(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    chat = await create_chat(client, "alice", title="before")
    await assert_rejected(
        client,
        db,
        "PUT",
        f"/chats/{chat['id']}",
        415,
        "UnsupportedAvatarType",
        **multipart_chat({"title": "after"}, b"plain text, not an image"),
    )
    assert (await client.get(f"/chats/{chat['id']}", headers=ALICE)).json()["title"] == "before"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/chats/{id}"),
        ("PUT", "/chats/{id}"),
        ("DELETE", "/chats/{id}"),
        ("GET", "/avatars/{id}"),
        ("GET", "/favourites/{id}"),
        ("POST", "/favourites/{id}"),
        ("DELETE", "/favourites/{id}"),
        ("GET", "/messages/{id}"),
    ],
)
@pytest.mark.parametrize(
    ("chat_id", "status", "error"),
    [
        ("not-a-uuid", 422, "ValidationError"),
        ("1234", 422, "ValidationError"),
        ("00000000-0000-4000-8000-00000000000g", 422, "ValidationError"),
        (MISSING, 404, "ChatNotFound"),
    ],
)
async def test_unknown_or_malformed_ids(
    client: httpx.AsyncClient,
    db: AsyncEngine,
    method: str,
    path: str,
    chat_id: str,
    status: int,
    error: str,
) -> None:
    await create_chat(client, "alice", title="existing")
    kwargs: dict[str, Any] = {"json": {"title": "x"}} if method == "PUT" else {}
    await assert_rejected(client, db, method, path.format(id=chat_id), status, error, **kwargs)


@pytest.mark.parametrize("url", ["/chats", "/favourites", "/chats/search?q=a", "/messages/{id}"])
@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "size=0", "size=101", "size=10000", "page=x", "size=1.5"]
)
async def test_bad_pagination(
    client: httpx.AsyncClient, db: AsyncEngine, url: str, query: str
) -> None:
    chat = await create_chat(client, "alice", title="existing")
    url = url.format(id=chat["id"])
    sep = "&" if "?" in url else "?"
    body = await assert_rejected(client, db, "GET", f"{url}{sep}{query}", 422, "ValidationError")
    assert body["detail"][0]["loc"][0] == "query"


@pytest.mark.parametrize("query", ["", "q=", "q=" + "x" * 201])
async def test_bad_search_query(client: httpx.AsyncClient, db: AsyncEngine, query: str) -> None:
    await assert_rejected(client, db, "GET", f"/chats/search?{query}", 422, "ValidationError")


async def test_invalid_dev_user_header(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    before = await snapshot(db)
    for name in ("", "has space", "a" * 65, "../../etc"):
        response = await client.post("/chats", json={"title": "x"}, headers=as_user(name))
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"] == "Unauthorized"
    assert await snapshot(db) == before


async def test_json_body_limit(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    huge = json.dumps({"title": "x", "context": "c" * 300_000})
    await assert_rejected(
        client,
        db,
        "POST",
        "/chats",
        400,
        "BadRequest",
        content=huge,
        headers={"content-type": "application/json"},
    )
