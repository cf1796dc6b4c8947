"""A real OpenID Connect provider shaped like one Microsoft Entra ID tenant, for the tests.

`oidc_provider()` runs panva's oidc-provider (Node, `tests/auth/provider/server.mjs`) on
127.0.0.1 and hands back a `Provider` that knows its URLs and can play the user's browser.
Install the Node side once with `npm ci --prefix tests/auth/provider`; without it (or
without `node`) the tests that use it are skipped.

Entra layout, with `authority_host` (http://127.0.0.1:<port>) in place of
https://login.microsoftonline.com:

- issuer `{authority_host}/{tenant}/v2.0`, discovery at `{issuer}/.well-known/openid-configuration`
- authorize, token and logout at `{authority_host}/{tenant}/oauth2/v2.0/...`, keys at
  `{authority_host}/{tenant}/discovery/v2.0/keys`
- sign-in page `/interaction/<uid>`: `POST /interaction/<uid>/login` with `login=<account>`
  signs the account in and consents to everything requested; an unknown account gets a 400.

Tokens:

- ID token (aud = client id): sub, oid, tid, ver, name, email, preferred_username, groups,
  roles, nonce, nbf, iat, exp, auth_time, sid.
- API access token: a signed RS256 JWT (aud = api_audience, scp, oid, tid, sub, groups, roles,
  name, preferred_username, azp, ver "2.0", iat, nbf, exp) when the authorization request asks
  for the API, either Entra's way (scope `<api_audience>/access_as_user` or
  `<api_audience>/.default`) or RFC 8707's (`resource=<api_audience>` plus scope
  `access_as_user`). The code exchange then returns it without a `resource` parameter, as Entra
  does. A request with only OpenID scopes gets an opaque token good for userinfo alone.
- Client credentials (scope `<api_audience>/.default`): an app-only JWT with roles (the
  client's `app_roles`), oid/sub (its `service_principal_oid`), tid, idtyp "app", no scp.
- `other_apis` adds APIs asked for the same ways (a Graph stand-in); an account with
  `groups_overage` gets Entra's `_claim_names`/`_claim_sources` instead of `groups`.

State lives in the Node process's memory: `rotate()` restarts it, which ends sign-in sessions
and unredeemed codes, but tokens already issued stay valid while their key is published.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc.jwk import RSAKey

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
SERVER = PROVIDER_DIR / "server.mjs"
OIDC_SCOPE = "openid profile email offline_access"
START_TIMEOUT_SECONDS = 20.0
_MAX_HOPS = 20
_INTERACTION = re.compile(r"^/interaction/([^/]+)$")


class ProviderError(RuntimeError):
    """The provider did not answer the way a successful flow needs."""


def rsa_jwk(kid: str) -> dict[str, Any]:
    """A fresh private RSA 2048 signing key as a JWK (RS256, use sig)."""
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})
    return dict(key.as_dict(private=True))


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Authorization:
    """What the redirect back to the client carried, plus what the client must remember."""

    code: str
    state: str
    nonce: str
    code_verifier: str
    redirect: httpx.Response


@dataclass
class Provider:
    """A running provider. Built by `oidc_provider()`; `rotate()` restarts it on the same port."""

    workdir: Path
    config: dict[str, Any]
    port: int
    process: subprocess.Popen[bytes]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))
    metadata: dict[str, Any] = field(default_factory=dict)

    # --- addresses ---------------------------------------------------------------------
    @property
    def tenant(self) -> str:
        return str(self.config["tenant"])

    @property
    def api_audience(self) -> str:
        return str(self.config["api_audience"])

    @property
    def authority_host(self) -> str:
        """Entra's ENTRA_AUTHORITY_HOST equivalent (login.microsoftonline.com)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.authority_host}/{self.tenant}/v2.0"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return str(self.metadata["jwks_uri"])

    @property
    def authorization_endpoint(self) -> str:
        return str(self.metadata["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])

    @property
    def end_session_endpoint(self) -> str:
        return str(self.metadata["end_session_endpoint"])

    def owns(self, url: httpx.URL) -> bool:
        """Whether a URL points at this provider (host and port, as a browser would see it)."""
        return url.host == "127.0.0.1" and url.port == self.port

    def api_scope(self) -> str:
        """Entra's way of asking for the API: `openid ... <api_audience>/<scope>`."""
        scopes = str(self.config.get("api_scope", "access_as_user")).split()
        return " ".join([OIDC_SCOPE, *(f"{self.api_audience}/{scope}" for scope in scopes)])

    def jwks(self) -> dict[str, Any]:
        response = self.http.get(self.jwks_url)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    # --- lifecycle ---------------------------------------------------------------------
    def rotate(self, keys: list[dict[str, Any]]) -> None:
        """Restart on the same port with a new key list (the first key signs)."""
        self.reconfigure(keys=keys)

    def reconfigure(self, **changes: Any) -> None:
        """Restart on the same port with config entries replaced (keys, accounts, other_apis,
        ...: the JSON names of `oidc_provider()`'s arguments). Sessions and unredeemed codes
        are lost; issued tokens stay valid while their key is published."""
        _stop(self.process)
        self.config = {**self.config, **changes, "port": self.port}
        self.process, _ = _start(self.workdir, self.config)
        self.metadata = _discover(self.http, self.discovery_url)

    def close(self) -> None:
        _stop(self.process)
        self.http.close()

    # --- the browser side ------------------------------------------------------------
    def authorization_url(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scope: str,
        state: str,
        nonce: str,
        code_challenge: str,
        resource: str | None = None,
        **extra: str,
    ) -> str:
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        if resource is not None:
            params["resource"] = resource
        return str(httpx.URL(self.authorization_endpoint, params=params))

    def login(
        self, client: httpx.Client, start: httpx.Response | httpx.URL | str, account: str
    ) -> httpx.Response:
        """Sign `account` in, the way a browser would, from an authorize URL or a response
        (such as the relying party's redirect to the provider).

        Follows redirects while they stay on the provider, posts the sign-in form once, and
        returns the redirect that leaves the provider (for the caller to hand to the relying
        party), or the first page that is not a redirect (an error page, or the 400 for an
        unknown account).
        """
        response = (
            start
            if isinstance(start, httpx.Response)
            else client.get(start, follow_redirects=False)
        )
        signed_in = False
        for _ in range(_MAX_HOPS):
            if response.is_redirect:
                target = response.url.join(response.headers["location"])
                if not self.owns(target):
                    return response
                response = client.get(target, follow_redirects=False)
                continue
            match = _INTERACTION.match(response.url.path)
            if response.status_code == 200 and match and not signed_in:
                signed_in = True
                response = client.post(
                    f"{self.authority_host}/interaction/{match[1]}/login",
                    data={"login": account},
                    follow_redirects=False,
                )
                continue
            return response
        raise ProviderError(f"more than {_MAX_HOPS} redirects inside the provider")

    def end_session_url(
        self,
        *,
        post_logout_redirect_uri: str | None = None,
        id_token_hint: str | None = None,
        client_id: str | None = None,
        state: str | None = None,
    ) -> str:
        params = {
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "id_token_hint": id_token_hint,
            "client_id": client_id,
            "state": state,
        }
        query = {name: value for name, value in params.items() if value is not None}
        return str(httpx.URL(self.end_session_endpoint, params=query))

    def logout(
        self, client: httpx.Client, start: httpx.Response | httpx.URL | str
    ) -> httpx.Response:
        """Finish an RP-initiated logout from an end-session URL or a response redirecting to
        one; returns the redirect to post_logout_redirect_uri (or the last provider page).

        With a signed-in session (cookies in `client`) the provider confirms by itself; without
        one it answers with a self-posting form, which is posted here as a browser would.
        """
        first = (
            start
            if isinstance(start, httpx.Response)
            else client.get(start, follow_redirects=False)
        )
        response = self._stay(client, first)
        form = _hidden_form(response.text) if response.status_code == 200 else None
        if form is not None and self.owns(response.url.join(form[0])):
            action, fields = form
            posted = client.post(response.url.join(action), data=fields, follow_redirects=False)
            response = self._stay(client, posted)
        return response

    def _stay(self, client: httpx.Client, response: httpx.Response) -> httpx.Response:
        for _ in range(_MAX_HOPS):
            if not response.is_redirect:
                return response
            target = response.url.join(response.headers["location"])
            if not self.owns(target):
                return response
            response = client.get(target, follow_redirects=False)
        raise ProviderError(f"more than {_MAX_HOPS} redirects inside the provider")

    # --- whole flows for tests that only need tokens -----------------------------------
    def authorize(
        self,
        account: str,
        *,
        client_id: str,
        redirect_uri: str,
        scope: str | None = None,
        resource: str | None = None,
        nonce: str | None = None,
    ) -> Authorization:
        """Sign in with a fresh browser (no cookies) and return the authorization code."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        nonce = nonce or secrets.token_urlsafe(16)
        url = self.authorization_url(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope or self.api_scope(),
            state=state,
            nonce=nonce,
            code_challenge=challenge,
            resource=resource,
        )
        with httpx.Client(timeout=10.0) as browser:
            redirect = self.login(browser, url, account)
        if not redirect.is_redirect:
            raise ProviderError(f"sign-in stopped at {redirect.status_code}: {redirect.text[:500]}")
        target = redirect.url.join(redirect.headers["location"])
        query = {name: values[0] for name, values in parse_qs(target.query.decode()).items()}
        if "code" not in query:
            raise ProviderError(f"no code in the redirect: {target}")
        if query.get("state") != state:
            raise ProviderError(f"state not returned: {target}")
        return Authorization(query["code"], state, nonce, verifier, redirect)

    def redeem(
        self,
        code: str,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        code_verifier: str,
        resource: str | None = None,
    ) -> httpx.Response:
        """The token request for a code (client_secret_post); the raw response."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if resource is not None:
            data["resource"] = resource
        return self.http.post(self.token_endpoint, data=data)

    def tokens(
        self,
        account: str,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scope: str | None = None,
        resource: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """The whole code flow with PKCE; the token response (id_token, access_token, ...)."""
        grant = self.authorize(
            account,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            resource=resource,
            nonce=nonce,
        )
        response = self.redeem(
            grant.code,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            code_verifier=grant.code_verifier,
        )
        if response.status_code != 200:
            raise ProviderError(f"token request failed: {response.status_code} {response.text}")
        return response.json()  # type: ignore[no-any-return]

    def access_token(
        self,
        account: str,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scope: str | None = None,
        resource: str | None = None,
    ) -> str:
        """A JWT access token for the API, signed in as `account`.

        The default scope asks for the API Entra's way (`<api_audience>/access_as_user`);
        `resource=` with scope `... access_as_user` is the RFC 8707 way and gives the same token.
        """
        body = self.tokens(
            account,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            scope=scope,
            resource=resource,
        )
        token = str(body["access_token"])
        if token.count(".") != 2:
            raise ProviderError("the access token is opaque: the request did not ask for the API")
        return token

    def client_credentials_token(
        self, *, client_id: str, client_secret: str, scope: str | None = None
    ) -> str:
        """An app-only JWT for the API (scope `<api_audience>/.default`)."""
        response = self.http.post(
            self.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "scope": scope or f"{self.api_audience}/.default",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        if response.status_code != 200:
            raise ProviderError(f"token request failed: {response.status_code} {response.text}")
        return str(response.json()["access_token"])


@contextmanager
def oidc_provider(
    workdir: Path,
    *,
    tenant: str,
    clients: list[dict[str, Any]],
    accounts: dict[str, dict[str, Any]],
    keys: list[dict[str, Any]],
    api_audience: str,
    api_scope: str = "access_as_user",
    api_token_audience: str | None = None,
    other_apis: dict[str, list[str]] | None = None,
    access_token_ttl: int = 3600,
    id_token_ttl: int = 3600,
    port: int = 0,
) -> Iterator[Provider]:
    """Run the provider for the `with` block; skips the test when Node or its packages are
    missing.

    clients: oidc-provider client metadata (client_id, client_secret, redirect_uris,
    post_logout_redirect_uris, ...) plus optional `app_roles` and `service_principal_oid` for
    client credentials tokens. accounts: sign-in name -> oid, tid (defaults to the tenant),
    name, email, preferred_username, groups, roles, optionally sub (defaults to oid) and
    groups_overage (true: Entra's `_claim_names`/`_claim_sources` instead of `groups`).
    keys: private JWKs, the first one signs. api_token_audience: the `aud` of API tokens if it
    should differ from api_audience (real Entra v2.0 tokens carry the API's client id).
    other_apis: more APIs, `{"<uri>": ["Scope", ...]}`, asked for with scope `<uri>/Scope`
    (a Graph stand-in: `{graph_base_url: ["User.Read"]}` makes ragline's sign-in scope give a
    JWT with aud = graph_base_url; unknown scopes are otherwise dropped, as OpenID Connect
    allows, and the access token is then an opaque userinfo token).
    """
    _require_node()
    config: dict[str, Any] = {
        "port": port,
        "tenant": tenant,
        "clients": clients,
        "accounts": accounts,
        "keys": keys,
        "api_audience": api_audience,
        "api_scope": api_scope,
        "access_token_ttl": access_token_ttl,
        "id_token_ttl": id_token_ttl,
    }
    if api_token_audience is not None:
        config["api_token_audience"] = api_token_audience
    if other_apis:
        config["other_apis"] = other_apis
    workdir.mkdir(parents=True, exist_ok=True)
    process, bound = _start(workdir, config)
    provider = Provider(workdir=workdir, config=config, port=bound, process=process)
    try:
        provider.metadata = _discover(provider.http, provider.discovery_url)
        yield provider
    finally:
        provider.close()


# --- process handling ------------------------------------------------------------------------


def _require_node() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the OpenID Connect test provider runs on Node.js")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip(
            "the OpenID Connect test provider is not installed: "
            "run `npm ci --prefix tests/auth/provider`"
        )


def _start(workdir: Path, config: dict[str, Any]) -> tuple[subprocess.Popen[bytes], int]:
    """Start server.mjs and wait for its `LISTENING <port>` line (stdout and stderr go to
    files in workdir, so that no pipe can fill up and block it)."""
    config_path = workdir / "provider.json"
    config_path.write_text(json.dumps(config))
    out_path, err_path = workdir / "provider.out", workdir / "provider.err"
    with out_path.open("wb") as out, err_path.open("ab") as err:
        process = subprocess.Popen(
            ["node", str(SERVER), str(config_path)], cwd=PROVIDER_DIR, stdout=out, stderr=err
        )
    try:
        return process, _wait_listening(process, out_path, err_path)
    except BaseException:
        _stop(process)
        raise


def _wait_listening(process: subprocess.Popen[bytes], out_path: Path, err_path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        match = re.search(rb"^LISTENING (\d+)$", out_path.read_bytes(), re.MULTILINE)
        if match:
            return int(match[1])
        if process.poll() is not None:
            break
        time.sleep(0.02)
    stderr = err_path.read_text(errors="replace")[-4000:]
    raise ProviderError(f"the OpenID Connect provider did not start:\n{stderr}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def _discover(http: httpx.Client, url: str) -> dict[str, Any]:
    response = http.get(url)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def _hidden_form(html: str) -> tuple[str, dict[str, str]] | None:
    """(action, hidden fields) of an oidc-provider self-posting form, if the page is one."""
    action = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', html)
    if action is None:
        return None
    inputs = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return unescape(action[1]), {name: unescape(value) for name, value in inputs}
