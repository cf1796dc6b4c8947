"""The Entra-shaped OpenID Connect test provider itself: discovery, signed ID and access
tokens with Entra's claims, single-use codes, sign-in and sign-out without a browser, and
signing key rotation on the same address."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.auth.provider import Provider, oidc_provider, pkce_pair, rsa_jwk

TENANT = "0b9e3b6a-4f3c-4c8e-9d43-3a6c1f2e7d10"
CLIENT_ID = "5d7f2c1e-8a4b-4e0f-b6a1-2c9d8e7f6a50"
CLIENT_SECRET = "harness-client-secret"
API_AUDIENCE = f"api://{CLIENT_ID}"
# Never contacted: the flows stop at the redirect to it.
REDIRECT_URI = "http://127.0.0.1:9/auth/callback"
LOGGED_OUT_URI = "http://127.0.0.1:9/logged-out"
ALICE = {
    "oid": "a11ce000-0000-4000-8000-000000000001",
    "name": "Alice Example",
    "email": "alice@example.org",
    "preferred_username": "alice@example.org",
    "groups": ["9f0d3c52-1111-4a5b-8c6d-000000000001"],
    "roles": ["Ragline.Admin"],
}
BOB = {"oid": "b0b00000-0000-4000-8000-000000000002", "name": "Bob", "groups_overage": True}
APP_ROLES = ["Ragline.Ingest"]
GRAPH = "https://graph.microsoft.com"  # a second API, never contacted
CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def start(workdir: Path, keys: list[dict[str, Any]]) -> AbstractContextManager[Provider]:
    return oidc_provider(
        workdir,
        tenant=TENANT,
        clients=[
            {
                **CLIENT,
                "redirect_uris": [REDIRECT_URI],
                "post_logout_redirect_uris": [LOGGED_OUT_URI],
                "app_roles": APP_ROLES,
            }
        ],
        accounts={"alice": ALICE, "bob": BOB},
        keys=keys,
        api_audience=API_AUDIENCE,
        other_apis={GRAPH: ["User.Read"]},
    )


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with start(tmp_path_factory.mktemp("oidc"), [rsa_jwk("harness-key-1")]) as running:
        yield running


def verify(provider: Provider, token: str, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a token checked against the provider's published keys."""
    keys = KeySet.import_key_set(provider.jwks())  # type: ignore[arg-type]
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
    ).validate(decoded.claims)
    return decoded.header, decoded.claims


def test_discovery_has_the_entra_tenant_layout(provider: Provider) -> None:
    document = httpx.get(provider.discovery_url).json()

    assert document["issuer"] == f"{provider.authority_host}/{TENANT}/v2.0" == provider.issuer
    base = f"{provider.authority_host}/{TENANT}"
    assert document["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert document["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert document["end_session_endpoint"] == f"{base}/oauth2/v2.0/logout"
    assert document["jwks_uri"] == f"{base}/discovery/v2.0/keys" == provider.jwks_url
    assert document["code_challenge_methods_supported"] == ["S256"]
    keys = provider.jwks()["keys"]
    assert [key["kid"] for key in keys] == ["harness-key-1"]
    assert "d" not in keys[0]


def test_code_flow_id_token_carries_the_entra_claims(provider: Provider) -> None:
    body = provider.tokens(
        "alice",
        **CLIENT,
        redirect_uri=REDIRECT_URI,
        scope="openid profile email offline_access",
        nonce="nonce-42",
    )

    header, claims = verify(provider, body["id_token"], CLIENT_ID)
    assert header["kid"] == "harness-key-1"
    assert claims["nonce"] == "nonce-42"
    assert claims["sub"] == claims["oid"] == ALICE["oid"]
    assert claims["tid"] == TENANT
    assert claims["groups"] == ALICE["groups"]
    assert claims["roles"] == ALICE["roles"]
    for name in ("name", "email", "preferred_username"):
        assert claims[name] == ALICE[name]
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert "refresh_token" in body


@pytest.mark.parametrize(
    ("scope", "resource"),
    [
        pytest.param(None, None, id="entra-scope"),
        pytest.param("openid profile access_as_user", API_AUDIENCE, id="resource-indicator"),
    ],
)
def test_access_token_is_an_entra_v2_api_token(
    provider: Provider, scope: str | None, resource: str | None
) -> None:
    token = provider.access_token(
        "alice", **CLIENT, redirect_uri=REDIRECT_URI, scope=scope, resource=resource
    )

    header, claims = verify(provider, token, API_AUDIENCE)
    assert header["typ"] == "JWT"
    assert claims["aud"] == API_AUDIENCE
    assert claims["scp"] == "access_as_user"
    assert claims["sub"] == claims["oid"] == ALICE["oid"]
    assert claims["tid"] == TENANT
    assert claims["groups"] == ALICE["groups"]
    assert claims["roles"] == ALICE["roles"]
    assert claims["azp"] == CLIENT_ID
    assert claims["ver"] == "2.0"
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert "scope" not in claims
    assert "client_id" not in claims


def test_graph_scope_gets_a_graph_token(provider: Provider) -> None:
    # ragline's own sign-in scope
    scope = f"openid profile email {GRAPH}/User.Read"
    token = provider.access_token("alice", **CLIENT, redirect_uri=REDIRECT_URI, scope=scope)

    _, claims = verify(provider, token, GRAPH)
    assert claims["scp"] == "User.Read"
    assert claims["oid"] == ALICE["oid"]


def test_group_overage_points_at_graph(provider: Provider) -> None:
    body = provider.tokens("bob", **CLIENT, redirect_uri=REDIRECT_URI)

    for token, audience in ((body["id_token"], CLIENT_ID), (body["access_token"], API_AUDIENCE)):
        _, claims = verify(provider, token, audience)
        assert "groups" not in claims
        assert claims["_claim_names"] == {"groups": "src1"}
        assert "getMemberObjects" in claims["_claim_sources"]["src1"]["endpoint"]


def test_client_credentials_token_is_app_only(provider: Provider) -> None:
    token = provider.client_credentials_token(**CLIENT)

    _, claims = verify(provider, token, API_AUDIENCE)
    assert claims["roles"] == APP_ROLES
    assert claims["tid"] == TENANT
    assert claims["idtyp"] == "app"
    assert "scp" not in claims


def test_a_code_is_redeemed_once(provider: Provider) -> None:
    grant = provider.authorize("alice", client_id=CLIENT_ID, redirect_uri=REDIRECT_URI)
    redeem = {**CLIENT, "redirect_uri": REDIRECT_URI, "code_verifier": grant.code_verifier}

    assert provider.redeem(grant.code, **redeem).status_code == 200
    replay = provider.redeem(grant.code, **redeem)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


def test_a_code_needs_its_pkce_verifier(provider: Provider) -> None:
    grant = provider.authorize("alice", client_id=CLIENT_ID, redirect_uri=REDIRECT_URI)
    wrong, _ = pkce_pair()

    response = provider.redeem(grant.code, **CLIENT, redirect_uri=REDIRECT_URI, code_verifier=wrong)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_browser_sign_in_and_out(provider: Provider) -> None:
    _, challenge = pkce_pair()
    url = provider.authorization_url(
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        scope=provider.api_scope(),
        state="state-1",
        nonce="nonce-1",
        code_challenge=challenge,
    )
    with httpx.Client() as browser:
        unknown = provider.login(browser, url, "mallory")
        assert unknown.status_code == 400

        redirect = provider.login(browser, url, "alice")
        assert redirect.is_redirect
        target = httpx.URL(redirect.headers["location"])
        assert str(target.copy_with(query=None)) == REDIRECT_URI
        assert target.params["state"] == "state-1"
        assert target.params["code"]

        # The session is remembered: the next authorization needs no sign-in form.
        again = provider.login(browser, url, "nobody")
        assert httpx.URL(again.headers["location"]).params["code"] != target.params["code"]

        out = provider.logout(
            browser,
            provider.end_session_url(
                client_id=CLIENT_ID, post_logout_redirect_uri=LOGGED_OUT_URI, state="bye"
            ),
        )
        assert out.is_redirect
        assert out.headers["location"] == f"{LOGGED_OUT_URI}?state=bye"

        # Signed out: the sign-in form is back.
        assert provider.login(browser, url, "nobody").status_code == 400


def test_rotation_keeps_old_tokens_verifiable(tmp_path: Path) -> None:
    old_key, new_key = rsa_jwk("old-key"), rsa_jwk("new-key")
    with start(tmp_path, [old_key]) as provider:
        port = provider.port
        old_token = provider.access_token("alice", **CLIENT, redirect_uri=REDIRECT_URI)

        provider.rotate([new_key, old_key])

        assert provider.port == port
        assert [key["kid"] for key in provider.jwks()["keys"]] == ["new-key", "old-key"]
        new_token = provider.access_token("alice", **CLIENT, redirect_uri=REDIRECT_URI)
        assert verify(provider, new_token, API_AUDIENCE)[0]["kid"] == "new-key"
        header, claims = verify(provider, old_token, API_AUDIENCE)
        assert header["kid"] == "old-key"
        assert claims["oid"] == ALICE["oid"]

        provider.rotate([new_key])
        with pytest.raises(JoseError):
            verify(provider, old_token, API_AUDIENCE)
