"""Two users over every operation of the OpenAPI document, with each way of signing in:
Entra access tokens and API keys (and the development identity). For every operation that
names one of alice's objects (in its path, or in its body), bob gets 404 and nothing
changes; alice gets a 2xx on the very same request (positive control).

The operations come from ``app.openapi()``: a new route fails ``test_every_operation_is
_classified`` until it is given a recipe here or declared public or a collection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ragline.config import Settings
from ragline.main import create_app
from tests.auth.conftest import Tenant, bearer, entra_app
from tests.conftest import snapshot
from tests.helpers import image_bytes, multipart_chat, running_app

PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/signin"),
    ("get", "/redirect"),
    ("get", "/logout"),
    ("post", "/logout"),
}
# The caller's own collections (scoping of lists is tested in tests/test_isolation.py).
COLLECTIONS = {
    ("get", "/me"),
    ("get", "/profile-picture"),
    ("get", "/chats"),
    ("post", "/chats"),
    ("get", "/chats/search"),
    ("get", "/favourites"),
    ("get", "/api-keys"),
    ("post", "/api-keys"),
    ("get", "/v1/models"),
    ("get", "/admin/chats"),
}
TEXT = b"The Zephyrine valve was invented in 1931.\n\nIt regulates steam pressure."


@dataclass
class Objects:
    """alice's objects for one request."""

    chat: str
    file: str | None = None
    key: str | None = None


@dataclass
class Recipe:
    needs: str = ""  # "file", "favourite", "avatar", "key"
    body: Callable[[Objects], dict[str, Any]] = lambda _: {}


def _upload(_: Objects) -> dict[str, Any]:
    return {"files": [("files", ("more.txt", TEXT + b" More.", "text/plain"))]}


def _replace(_: Objects) -> dict[str, Any]:
    return {"files": [("file", ("new.txt", TEXT + b" Edited.", "text/plain"))]}


RECIPES: dict[tuple[str, str], Recipe] = {
    ("get", "/chats/{chat_id}"): Recipe(),
    ("put", "/chats/{chat_id}"): Recipe(body=lambda _: {"json": {"title": "renamed"}}),
    ("delete", "/chats/{chat_id}"): Recipe(),
    ("get", "/avatars/{chat_id}"): Recipe(needs="avatar"),
    ("post", "/chats/{chat_id}/upload"): Recipe(body=_upload),
    ("get", "/chats/{chat_id}/files"): Recipe(),
    ("get", "/chats/{chat_id}/ingestion"): Recipe(),
    ("get", "/chats/{chat_id}/files/{file_id}"): Recipe(needs="file"),
    ("put", "/chats/{chat_id}/files/{file_id}"): Recipe(needs="file", body=_replace),
    ("delete", "/chats/{chat_id}/files/{file_id}"): Recipe(needs="file"),
    ("get", "/favourites/{chat_id}"): Recipe(needs="favourite"),
    ("post", "/favourites/{chat_id}"): Recipe(),
    ("delete", "/favourites/{chat_id}"): Recipe(needs="favourite"),
    ("delete", "/api-keys/{key_id}"): Recipe(needs="key"),
    ("get", "/messages/{chat_id}"): Recipe(),
    ("post", "/chats/{chat_id}/search"): Recipe(
        needs="file", body=lambda _: {"json": {"query": "Zephyrine valve"}}
    ),
    ("post", "/chats/{chat_id}/chat"): Recipe(body=lambda _: {"json": {"text": "Who?"}}),
    ("post", "/chats/{chat_id}/chat/stream"): Recipe(body=lambda _: {"json": {"text": "Who?"}}),
    ("post", "/v1/chat/completions"): Recipe(
        body=lambda o: {
            "json": {"model": o.chat, "messages": [{"role": "user", "content": "Who?"}]}
        }
    ),
}


def operations(settings: Settings) -> set[tuple[str, str]]:
    document = create_app(settings).openapi()
    return {(method, path) for path, ops in document["paths"].items() for method in ops}


def test_every_operation_is_classified(settings: Settings) -> None:
    found = operations(settings)
    assert found - PUBLIC - COLLECTIONS - set(RECIPES) == set(), "add a recipe for new routes"
    assert set(RECIPES) | PUBLIC | COLLECTIONS <= found  # no stale entries


Headers = dict[str, str]
Identity = Callable[[httpx.AsyncClient], Awaitable[tuple[Headers, Headers]]]


async def _prepare(client: httpx.AsyncClient, alice: Headers, recipe: Recipe) -> Objects:
    fields = {"title": "alice's", "temperature": 0.0}
    if recipe.needs == "avatar":
        made = await client.post("/chats", headers=alice, **multipart_chat(fields, image_bytes()))
    else:
        made = await client.post("/chats", json=fields, headers=alice)
    assert made.status_code == 201, made.text
    objects = Objects(chat=made.json()["id"])
    if recipe.needs == "favourite":
        assert (await client.post(f"/favourites/{objects.chat}", headers=alice)).status_code == 201
    if recipe.needs == "key":
        key = await client.post("/api-keys", json={"name": "alice's"}, headers=alice)
        objects.key = key.json()["id"]
    if recipe.needs == "file":
        sent = await client.post(
            f"/chats/{objects.chat}/upload",
            files=[("files", ("valve.txt", TEXT, "text/plain"))],
            headers=alice,
        )
        assert sent.status_code == 202, sent.text
        objects.file = sent.json()["files"][0]["file_id"]
        deadline = time.monotonic() + 60
        while True:
            state = await client.get(f"/chats/{objects.chat}/files/{objects.file}", headers=alice)
            if state.json()["status"] in {"indexed", "failed"}:
                assert state.json()["status"] == "indexed"
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    return objects


async def _check(
    client: httpx.AsyncClient,
    db: AsyncEngine,
    operation: tuple[str, str],
    alice: Headers,
    bob: Headers,
) -> None:
    method, path = operation
    recipe = RECIPES[operation]
    objects = await _prepare(client, alice, recipe)
    url = path.format(chat_id=objects.chat, file_id=objects.file, key_id=objects.key)

    before = await snapshot(db)
    as_bob = await client.request(method.upper(), url, headers=bob, **recipe.body(objects))
    assert as_bob.status_code == 404, (operation, as_bob.status_code, as_bob.text)
    error = as_bob.json()["error"]
    if path.startswith("/v1/"):  # OpenAI's error shape under /v1
        assert error["code"] == "model_not_found", error
    else:
        assert error.endswith("NotFound")
    assert await snapshot(db) == before, operation

    as_alice = await client.request(method.upper(), url, headers=alice, **recipe.body(objects))
    assert 200 <= as_alice.status_code < 300, (operation, as_alice.status_code, as_alice.text)


@pytest.fixture
def small_answers(settings: Settings) -> Settings:
    """Positive controls run the real local model: a few tokens are enough."""
    return settings.model_copy(update={"llm_max_tokens": 4, "rate_limit_chat": ""})


async def _keys(client: httpx.AsyncClient, alice: Headers, bob: Headers) -> tuple[Headers, Headers]:
    made = []
    for who in (alice, bob):
        key = await client.post("/api-keys", json={"name": "matrix"}, headers=who)
        assert key.status_code == 201, key.text
        made.append(bearer(key.json()["key"]))
    return made[0], made[1]


@pytest.fixture
async def entra_client(tenant: Tenant, small_answers: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with entra_app(tenant.settings(small_answers)) as (client, _):
        yield client


@pytest.mark.parametrize("operation", sorted(RECIPES))
async def test_entra_tokens(
    operation: tuple[str, str], tenant: Tenant, entra_client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    alice, bob = bearer(tenant.access_token("alice")), bearer(tenant.access_token("bob"))
    await _check(entra_client, db, operation, alice, bob)


@pytest.mark.parametrize("operation", sorted(RECIPES))
async def test_api_keys(
    operation: tuple[str, str], tenant: Tenant, entra_client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    alice, bob = await _keys(
        entra_client, bearer(tenant.access_token("alice")), bearer(tenant.access_token("bob"))
    )
    await _check(entra_client, db, operation, alice, bob)


@pytest.mark.parametrize("operation", sorted(RECIPES))
async def test_development_identity(
    operation: tuple[str, str], small_answers: Settings, db: AsyncEngine
) -> None:
    async with running_app(small_answers) as (client, _):
        alice, bob = {"X-Ragline-Dev-User": "alice"}, {"X-Ragline-Dev-User": "bob"}
        await _check(client, db, operation, alice, bob)
