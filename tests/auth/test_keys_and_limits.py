"""API keys acting as their owner (Entra mode), and per-user rate limits in Redis."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest
from openai import AsyncOpenAI

from ragline.config import Settings
from ragline.lifespan import AppState
from tests.auth.conftest import FRONTEND, Tenant, bearer, browser_sign_in, entra_app

ORIGIN = {"Origin": FRONTEND}


async def test_api_key_made_in_a_session_acts_as_its_owner(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, _ = entra
    await browser_sign_in(client, tenant, "alice")
    chat = (await client.post("/chats", json={"title": "keyed"}, headers=ORIGIN)).json()
    made = await client.post("/api-keys", json={"name": "ci"}, headers=ORIGIN)
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    read_only = (
        await client.post("/api-keys", json={"name": "ro", "scope": "read"}, headers=ORIGIN)
    ).json()

    revoke_url = f"/api-keys/{made.json()['id']}"
    assert (await client.post("/logout", headers=ORIGIN)).status_code == 303
    assert (await client.get("/me")).status_code == 401  # no session: the key alone below

    me = await client.get("/me", headers=bearer(key))
    assert me.status_code == 200 and me.json()["subject"] == "oid-alice"
    assert me.json()["auth"] == "api_key"
    # The OpenAI client, unchanged, with the key as its API key.
    openai = AsyncOpenAI(
        api_key=key, base_url=f"{client.base_url}/v1", http_client=client, max_retries=0
    )
    models = await openai.models.list()
    assert [m.id for m in models.data] == [chat["id"]]

    reader = bearer(read_only["key"])
    assert (await client.get("/chats", headers=reader)).status_code == 200
    refused = await client.post("/chats", json={"title": "x"}, headers=reader)
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]

    assert (await client.delete(revoke_url, headers=bearer(key))).status_code == 204
    after = await client.get("/me", headers=bearer(key))
    assert after.status_code == 401


@pytest.fixture
def limited(tenant: Tenant, settings: Settings) -> Settings:
    return tenant.settings(settings, rate_limit_chat="2/minute", rate_limit_signin="2/minute")


async def test_chat_and_sign_in_are_rate_limited(tenant: Tenant, limited: Settings) -> None:
    # A client address of its own: sign-in is limited per address, in the shared Redis.
    host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    async with entra_app(limited, client_host=host) as (client, _):
        # Fresh identities: the counters live in the shared Redis for a minute.
        token = bearer(tenant.mint({"oid": f"oid-{uuid.uuid4()}"}))
        url = f"/chats/{uuid.uuid4()}/chat"
        answers = [
            (await client.post(url, json={"text": "hi"}, headers=token)).status_code
            for _ in range(3)
        ]
        assert answers == [404, 404, 429]  # counted before the chat is looked up
        limited_answer = await client.post(url, json={"text": "hi"}, headers=token)
        assert int(limited_answer.headers["retry-after"]) >= 1
        assert limited_answer.json()["error"] == "TooManyRequests"
        # Per user: another user is not limited by bob's requests.
        other = await client.post(
            url, json={"text": "hi"}, headers=bearer(tenant.mint({"oid": f"oid-{uuid.uuid4()}"}))
        )
        assert other.status_code == 404

        signins = [(await client.get("/signin")).status_code for _ in range(3)]
        assert signins == [302, 302, 429]


async def test_rate_limits_fail_open_without_redis(
    tenant: Tenant,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.services import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        config = tenant.settings(settings, redis_port=port, rate_limit_chat="1/minute")
        async with entra_app(config) as (client, state):
            token = bearer(tenant.access_token("bob"))
            assert state.redis is not None
            await state.redis.shutdown(nosave=True)
            url = f"/chats/{uuid.uuid4()}/chat"
            answers = [
                (await client.post(url, json={"text": "hi"}, headers=token)).status_code
                for _ in range(3)
            ]
            assert answers == [404, 404, 404]
            assert "rate limit chat not applied" in caplog.text
