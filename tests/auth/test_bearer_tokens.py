"""Entra access tokens on API routes, validated offline against the provider's keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ragline.config import Settings
from ragline.lifespan import AppState
from ragline.models import User
from tests.auth.conftest import (
    ALLOWED,
    CLIENT_ID,
    TENANT,
    Tenant,
    bearer,
    entra_app,
    tenant_for,
)
from tests.auth.provider import rsa_jwk


async def users(db: AsyncEngine) -> int:
    async with db.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(User)) or 0)


async def test_provider_issued_token_is_accepted(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, _ = entra
    token = tenant.access_token("alice")
    me = await client.get("/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["subject"] == "oid-alice" and me.json()["auth"] == "bearer"
    created = await client.post("/chats", json={"title": "api"}, headers=bearer(token))
    assert created.status_code == 201  # no Origin needed: a bearer token is not ambient
    models = await client.get("/v1/models", headers=bearer(token))
    assert [m["id"] for m in models.json()["data"]] == [created.json()["id"]]


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["oid"] = "oid-bob"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _unsigned(tenant: Tenant) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    valid = tenant.mint()
    claims = json.loads(base64.urlsafe_b64decode(valid.split(".")[1] + "=="))
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _hs256_with_public_key(tenant: Tenant) -> str:
    """The classic key-confusion forgery: HMAC keyed with the published RSA public key
    (made by hand: joserfc itself refuses to use a public key as an HMAC secret)."""
    public_pem = RSAKey.import_key(tenant.key).as_pem(private=False)
    header = {"alg": "HS256", "kid": tenant.key["kid"], "typ": "JWT"}
    payload = tenant.mint().split(".")[1]
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    signed = f"{head}.{payload}".encode()
    mac = hmac.new(public_pem, signed, hashlib.sha256).digest()
    return f"{head}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


NOW = int(time.time())
BAD_TOKENS = {
    "wrong audience": lambda t: t.mint({"aud": "api://some-other-app"}),
    "wrong issuer": lambda t: t.mint({"iss": f"{t.provider.authority_host}/other/v2.0"}),
    "other tenant": lambda t: t.mint({"tid": "00000000-0000-0000-0000-000000000000"}),
    "expired": lambda t: t.mint({"exp": int(time.time()) - 3600, "nbf": NOW - 7200}),
    "not yet valid": lambda t: t.mint({"nbf": int(time.time()) + 3600}),
    "alg none": _unsigned,
    "HS256 with the public key": _hs256_with_public_key,
    "unknown kid": lambda t: t.mint(key=rsa_jwk("never-published")),
    "tampered payload": lambda t: _tampered(t.mint()),
    "garbage": lambda t: "not.a.jwt",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_are_401_and_create_nobody(
    case: str, tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState], db: AsyncEngine
) -> None:
    client, _ = entra
    token = BAD_TOKENS[case](tenant)
    before = await users(db)
    answer = await client.get("/chats", headers=bearer(token))
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "Unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert await users(db) == before
    # Positive control: the same request with a valid token of the same shape.
    assert (await client.get("/chats", headers=bearer(tenant.mint()))).status_code == 200


async def test_scope_roles_and_groups(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, _ = entra
    no_scope = tenant.mint({"scp": "User.Read"})
    assert (await client.get("/chats", headers=bearer(no_scope))).status_code == 403
    outsider = tenant.mint({"oid": "oid-dave", "groups": ["not-allowed"]})
    answer = await client.get("/chats", headers=bearer(outsider))
    assert answer.status_code == 403 and answer.json()["error"] == "Forbidden"
    assert (
        await client.get("/chats", headers=bearer(tenant.access_token("dave")))
    ).status_code == 403

    app_only = tenant.provider.client_credentials_token(
        client_id=CLIENT_ID, client_secret="test-client-secret-not-a-real-one"
    )
    # An application token (no scp) with the ragline.user app role; groups: none, and
    # ALLOWED_GROUPS_IDS is set, so it is refused as a non-member.
    assert (await client.get("/chats", headers=bearer(app_only))).status_code == 403
    roleless = tenant.mint({"scp": None, "roles": []})
    assert (await client.get("/chats", headers=bearer(roleless))).status_code == 403


async def test_admin_role_lists_every_assistant_read_only(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, _ = entra
    alice, carol = tenant.access_token("alice"), tenant.access_token("carol")
    chat = (await client.post("/chats", json={"title": "alice's"}, headers=bearer(alice))).json()

    refused = await client.get("/admin/chats", headers=bearer(alice))
    assert refused.status_code == 403
    listed = await client.get("/admin/chats", headers=bearer(carol))
    assert listed.status_code == 200, listed.text
    [item] = [i for i in listed.json()["items"] if i["id"] == chat["id"]]
    assert item["owner"]["name"] == "Alice"
    # Admin is read-only here: alice's own objects stay 404 for carol.
    assert (await client.get(f"/chats/{chat['id']}", headers=bearer(carol))).status_code == 404
    me = await client.get("/me", headers=bearer(carol))
    assert me.json()["roles"] == ["admin", "user"]


async def test_groups_overage_token_asks_graph_once(
    tenant: Tenant, entra: tuple[httpx.AsyncClient, AppState]
) -> None:
    client, state = entra
    assert state.redis is not None
    await state.redis.delete(f"ragline:groups:{TENANT}:oid-erin")
    token = tenant.mint(
        {
            "oid": "oid-erin",
            "groups": None,
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.example/x"}},
        }
    )
    calls = tenant.graph.calls("/users/oid-erin/memberOf")
    for _ in range(3):
        answer = await client.get("/me", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        assert ALLOWED in answer.json()["groups"]
    assert tenant.graph.calls("/users/oid-erin/memberOf") - calls == 3  # 3 pages, once


async def test_key_rotation(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> None:
    with tenant_for(tmp_path_factory.mktemp("rotation")) as tenant:
        async with entra_app(tenant.settings(settings)) as (client, _):
            old = tenant.access_token("alice")
            assert (await client.get("/me", headers=bearer(old))).status_code == 200

            new_key = rsa_jwk("key-2")
            tenant.provider.rotate([new_key, tenant.key])
            new = tenant.access_token("alice")
            assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == "key-2"
            assert (await client.get("/me", headers=bearer(new))).status_code == 200  # refetched
            assert (
                await client.get("/me", headers=bearer(old))
            ).status_code == 200  # still published


async def test_redis_down_bearer_works_and_cookies_fail_closed(
    tenant: Tenant, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.auth.conftest import browser_sign_in
    from tests.services import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        async with entra_app(tenant.settings(settings, redis_port=port)) as (client, state):
            await browser_sign_in(client, tenant, "alice")
            assert (await client.get("/me")).status_code == 200
            token = tenant.access_token("alice")
            assert state.redis is not None
            await state.redis.shutdown(nosave=True)  # Redis goes away
            cookie = await client.get("/me")
            assert cookie.status_code == 401, cookie.text
            api = await client.get("/me", headers=bearer(token))
            assert api.status_code == 200, api.text


@pytest.mark.parametrize(("floor", "fetches"), [(3600.0, 1), (0.0, 3)])
async def test_unknown_key_ids_refetch_the_key_set_at_most_once_per_floor(
    tenant: Tenant, floor: float, fetches: int
) -> None:
    from ragline.auth.entra import access_token_rules
    from ragline.auth.runtime import discovery_url
    from ragline.auth.tokens import InvalidToken, TenantKeys, validate

    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.url.path)

    settings = tenant.settings(Settings(_env_file=None))  # type: ignore[call-arg]
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        keys = TenantKeys(http, discovery_url=discovery_url(settings), refresh_floor_seconds=floor)
        rules = access_token_rules(settings)
        assert (await validate(tenant.mint(), keys=keys, rules=rules))["oid"] == "oid-alice"
        for _ in range(2):  # forged key ids: each would make a naive cache refetch
            with pytest.raises(InvalidToken, match="unknown signing key"):
                await validate(tenant.mint(key=rsa_jwk("forged")), keys=keys, rules=rules)
    key_fetches = [path for path in seen if path.endswith("/keys")]
    assert len(key_fetches) == fetches
