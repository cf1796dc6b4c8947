"""Browser sign-in against the real OpenID provider: PKCE, state, nonce, server-side
sessions in Redis, CSRF, logout, timeouts, groups and Graph."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from ragline.auth import signin
from ragline.auth.sessions import SESSION_PREFIX
from ragline.config import Settings
from ragline.errors import Unauthorized
from ragline.lifespan import AppState
from tests.auth.conftest import (
    ALLOWED,
    ERIN_GROUPS,
    FRONTEND,
    PHOTO,
    RAGLINE,
    Tenant,
    browser_sign_in,
    entra_app,
    get_with_cookie,
)

ORIGIN = {"Origin": FRONTEND}


async def session_keys(state: AppState) -> set[bytes]:
    assert state.redis is not None
    return {key async for key in state.redis.scan_iter(match=f"{SESSION_PREFIX}*")}


async def test_sign_in_me_protected_call_logout(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, state = entra
    start = await client.get("/signin")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert start.headers["location"].startswith(tenant.provider.authorization_endpoint)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [f"{RAGLINE}/redirect"]

    before = await session_keys(state)
    back = await browser_sign_in(client, tenant, "alice")
    assert back.status_code == 302 and back.headers["location"] == FRONTEND
    cookie = back.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # loopback development over http only
    created = await session_keys(state) - before
    assert len(created) == 1

    me = await client.get("/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert (body["subject"], body["name"], body["email"]) == (
        "oid-alice",
        "Alice",
        "alice@example.test",
    )
    assert ALLOWED in body["groups"] and body["roles"] == ["user"] and body["auth"] == "session"

    created_chat = await client.post("/chats", json={"title": "mine"}, headers=ORIGIN)
    assert created_chat.status_code == 201, created_chat.text
    listed = await client.get("/chats")
    assert [c["title"] for c in listed.json()["items"]] == ["mine"]

    picture = await client.get("/profile-picture")
    assert picture.status_code == 200 and picture.content == PHOTO
    assert picture.headers["content-type"] == "image/png"

    logout = await client.post("/logout", headers=ORIGIN)
    assert logout.status_code == 303
    assert logout.headers["location"].startswith(tenant.provider.end_session_endpoint)
    assert "post_logout_redirect_uri" in logout.headers["location"]
    assert await session_keys(state) == before

    # The browser may keep sending the old cookie: it no longer opens anything.
    old = cookie.split(";")[0].split("=", 1)[1]
    after = await get_with_cookie(client, "/me", old)
    assert after.status_code == 401 and after.json()["error"] == "Unauthorized"


async def test_state_changing_cookie_requests_need_the_frontend_origin(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState], db: object
) -> None:
    client, _ = entra
    await browser_sign_in(client, tenant, "bob")

    for headers in ({}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        refused = await client.post("/chats", json={"title": "csrf"}, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["error"] == "Forbidden"
    assert (await client.get("/chats")).json()["total"] == 0  # nothing was created
    referer = await client.post(
        "/chats", json={"title": "ok"}, headers={"Referer": FRONTEND + "/x"}
    )
    assert referer.status_code == 201
    # A cross-site form cannot sign the user out either; the session survives it.
    forged = await client.post("/logout", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert (await client.get("/me")).status_code == 200


async def test_bad_state_and_reused_code_create_no_session(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, state = entra
    before = await session_keys(state)
    for params in ({}, {"code": "x"}, {"code": "x", "state": "forged"}):
        answer = await client.get("/redirect", params=params)
        assert answer.status_code == 401, params
        assert "set-cookie" not in answer.headers

    # A real sign-in, then its redirect replayed: the state was used once.
    start = await client.get("/signin")
    with httpx.Client() as browser:
        back = await asyncio.to_thread(
            tenant.provider.login, browser, start.headers["location"], "alice"
        )
    callback = back.headers["location"]
    assert (await client.get(callback)).status_code == 302
    signed_in = await session_keys(state)
    replay = await client.get(callback)
    assert replay.status_code == 401 and "set-cookie" not in replay.headers

    # The used code with a fresh, valid state: the provider refuses to redeem it twice.
    fresh = parse_qs(urlsplit((await client.get("/signin")).headers["location"]).query)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    reused = await client.get("/redirect", params={"code": code, "state": fresh["state"][0]})
    assert reused.status_code == 401 and "set-cookie" not in reused.headers
    assert await session_keys(state) == signed_in
    assert len(signed_in - before) == 1


async def test_id_token_with_another_sign_ins_nonce_is_refused(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    _, state = entra
    services = state.auth.signin
    assert services is not None
    replayed = tenant.mint({"aud": services.settings.client_id, "nonce": "nonce-of-sign-in-1"})
    with pytest.raises(Unauthorized, match="nonce"):
        await signin._id_token_claims(services, {"id_token": replayed}, nonce="nonce-of-sign-in-2")
    # Positive control: the same token passes with its own nonce.
    claims = await signin._id_token_claims(
        services, {"id_token": replayed}, nonce="nonce-of-sign-in-1"
    )
    assert claims["oid"] == "oid-alice"


async def test_user_outside_the_allowed_groups_is_refused(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, state = entra
    before = await session_keys(state)
    refused = await browser_sign_in(client, tenant, "dave")
    assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    assert "set-cookie" not in refused.headers
    assert await session_keys(state) == before


async def test_groups_overage_is_resolved_through_graph_once(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, _ = entra
    calls = tenant.graph.calls("/me/memberOf")
    back = await browser_sign_in(client, tenant, "erin")
    assert back.status_code == 302, back.text
    me = await client.get("/me")
    assert me.json()["groups"] == ERIN_GROUPS
    assert tenant.graph.calls("/me/memberOf") - calls == 3  # three pages, once
    await client.get("/me")
    assert tenant.graph.calls("/me/memberOf") - calls == 3  # no Graph call per request


async def test_no_photo_is_404(tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]) -> None:
    client, _ = entra
    await browser_sign_in(client, tenant, "bob")
    missing = await client.get("/profile-picture")
    assert missing.status_code == 404 and missing.json()["error"] == "ProfilePictureNotFound"


async def test_session_past_its_absolute_timeout_is_refused(
    tenant: Tenant, settings: Settings
) -> None:
    short = tenant.settings(settings, session_absolute_hours=1.5 / 3600)
    async with entra_app(short) as (client, _):
        await browser_sign_in(client, tenant, "alice")
        assert (await client.get("/me")).status_code == 200
        await asyncio.sleep(2.0)
        expired = await client.get("/me")
        assert expired.status_code == 401


async def test_session_ids_rotate_at_sign_in(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, state = entra
    first = await browser_sign_in(client, tenant, "alice")
    second = await browser_sign_in(client, tenant, "alice")
    old = first.cookies["ragline_session"]
    assert old != second.cookies["ragline_session"]
    assert (await get_with_cookie(client, "/me", old)).status_code == 401
    assert isinstance(state.redis, Redis)
