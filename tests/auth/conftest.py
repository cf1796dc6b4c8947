"""An Entra-shaped tenant for the auth tests: the real OpenID provider (oidc-provider on
Node) and the Graph stand-in, with ragline configured against them. ragline runs
in-process at ``RAGLINE`` (ASGI); the provider and Graph are real HTTP servers on loopback.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy.ext.asyncio import AsyncEngine

from ragline.config import Settings
from ragline.lifespan import AppState
from ragline.main import create_app
from tests.auth.graph_stub import GraphStub, graph_stub
from tests.auth.provider import Provider, oidc_provider, rsa_jwk

TENANT = "8f3c1d52-4d3e-4a0b-9c61-2b1f0c7e9a10"
CLIENT_ID = "5d1b6a9e-2f47-4c1e-8a3b-7e9f0d2c4b61"
CLIENT_SECRET = "test-client-secret-not-a-real-one"
RAGLINE = "http://localhost:8123"
FRONTEND = "http://localhost:5173"
ALLOWED = "0b7e6a3c-allowed-group"
OTHER = "4c2d9e1f-other-group"
ADMIN_ROLE = "ragline.admin"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"alice's photo"

ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"oid": "oid-alice", "name": "Alice", "groups": [ALLOWED, OTHER], "roles": []},
    "bob": {"oid": "oid-bob", "name": "Bob", "groups": [ALLOWED], "roles": []},
    "carol": {"oid": "oid-carol", "name": "Carol", "groups": [ALLOWED], "roles": [ADMIN_ROLE]},
    "dave": {"oid": "oid-dave", "name": "Dave", "groups": [OTHER], "roles": []},
    "erin": {"oid": "oid-erin", "name": "Erin", "groups_overage": True, "roles": []},
}
for _name, _account in ACCOUNTS.items():
    _account |= {
        "tid": TENANT,
        "email": f"{_name}@example.test",
        "preferred_username": f"{_name}@example.test",
    }
ERIN_GROUPS = [OTHER, "g-3", "g-4", ALLOWED, "g-5"]  # three Graph pages


@dataclass
class Tenant:
    provider: Provider
    graph: GraphStub
    key: dict[str, Any]  # the provider's signing key (private JWK): tests mint tokens too

    def settings(self, base: Settings, **changes: Any) -> Settings:
        return base.model_copy(
            update={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "tenant_id": TENANT,
                "redirect_uri": f"{RAGLINE}/redirect",
                "frontend_url": FRONTEND,
                "entra_authority_host": self.provider.authority_host,
                "graph_base_url": self.graph.url,
                "allowed_groups_ids": [ALLOWED],
                "admin_app_role": ADMIN_ROLE,
                "jwks_refresh_floor_seconds": 0.0,
                "rate_limit_signin": "",  # tests sign in often; test_keys_and_limits sets one
                **changes,
            }
        )

    def access_token(self, account: str) -> str:
        return self.provider.access_token(
            account,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uri=f"{RAGLINE}/redirect",
        )

    def mint(
        self,
        claims: dict[str, Any] | None = None,
        *,
        key: dict[str, Any] | None = None,
        **header: Any,
    ) -> str:
        """A token signed like the provider's (its own key unless ``key``), for negative
        tests: the claims of a valid API token for alice, updated with ``claims``."""
        now = int(time.time())
        body = {
            "iss": self.provider.issuer,
            "aud": f"api://{CLIENT_ID}",
            "tid": TENANT,
            "oid": "oid-alice",
            "sub": "oid-alice",
            "scp": "access_as_user",
            "groups": [ALLOWED],
            "name": "Alice",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        } | (claims or {})
        body = {name: value for name, value in body.items() if value is not None}
        signing = key or self.key
        headers = {"alg": "RS256", "kid": signing["kid"], "typ": "JWT"} | header
        return jwt.encode(headers, body, RSAKey.import_key(signing))


@contextmanager
def tenant_for(workdir: Path) -> Iterator[Tenant]:
    key = rsa_jwk("key-1")
    with graph_stub(issuer="") as graph:
        clients = [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{RAGLINE}/redirect"],
                "post_logout_redirect_uris": [FRONTEND],
                "app_roles": ["ragline.user"],
                "service_principal_oid": "oid-ragline-app",
            }
        ]
        with oidc_provider(
            workdir,
            tenant=TENANT,
            clients=clients,
            accounts=ACCOUNTS,
            keys=[key],
            api_audience=f"api://{CLIENT_ID}",
            other_apis={graph.url: ["User.Read", "GroupMember.Read.All"]},
        ) as provider:
            graph.issuer = provider.issuer
            graph.photos["oid-alice"] = (PHOTO, "image/png")
            graph.groups["oid-erin"] = ERIN_GROUPS
            yield Tenant(provider=provider, graph=graph, key=key)


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    """One provider for a test module (tests that restart it make their own)."""
    with tenant_for(tmp_path_factory.mktemp("entra")) as made:
        yield made


@asynccontextmanager
async def entra_app(
    settings: Settings, *, client_host: str = "127.0.0.1"
) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    """ragline at ``RAGLINE`` in-process; the client reaches the provider over real HTTP."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=(client_host, 40000))
        async with httpx.AsyncClient(
            mounts={RAGLINE: transport}, base_url=RAGLINE, timeout=20.0
        ) as client:
            yield client, app.state.ragline


@pytest.fixture
async def entra(
    tenant: Tenant, settings: Settings, db: AsyncEngine
) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    """ragline against the tenant (tables emptied after the test, by ``db``)."""
    async with entra_app(tenant.settings(settings)) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def browser_sign_in(
    client: httpx.AsyncClient, tenant: Tenant, account: str
) -> httpx.Response:
    """GET /signin, sign in at the provider like a browser, return ragline's answer to
    the redirect back (the cookie lands in ``client``)."""
    start = await client.get("/signin")
    assert start.status_code == 302, start.text
    with httpx.Client(timeout=20.0) as browser:
        back = await asyncio.to_thread(
            tenant.provider.login, browser, start.headers["location"], account
        )
    assert back.is_redirect and back.headers["location"].startswith(f"{RAGLINE}/redirect")
    return await client.get(back.headers["location"])


def unique() -> str:
    return uuid.uuid4().hex[:8]


async def get_with_cookie(client: httpx.AsyncClient, path: str, session_id: str) -> httpx.Response:
    """``path`` sent with only this session cookie (a browser that kept an old one)."""
    request = client.build_request("GET", path)
    request.headers["Cookie"] = f"ragline_session={session_id}"
    return await client.send(request)
