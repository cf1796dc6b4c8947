"""Entra ID tokens checked offline: the tenant's OpenID configuration and signing keys,
cached, and the validation of ID tokens (browser sign-in) and access tokens (API calls).

JOSE is joserfc's (Authlib's JOSE library): ragline only picks the key and the rules.
Rules: RS256 only (``alg: none`` and HMAC tokens are refused before any key is tried),
issuer ``{ENTRA_AUTHORITY_HOST}/{TENANT_ID}/v2.0`` (v2.0 tokens: the app registration sets
``accessTokenAcceptedVersion: 2``), audience, ``exp``/``nbf`` with ``TOKEN_LEEWAY_SECONDS``,
and ``tid`` equal to the tenant. An unknown key id refetches the key set, at most once per
``JWKS_REFRESH_FLOOR_SECONDS`` (so forged key ids cannot make ragline hammer Entra).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

ALGORITHMS = ("RS256",)
MAX_AGE_SECONDS = 3600.0


class InvalidToken(Exception):
    """The token is not acceptable; the message says why (logged, not shown to clients)."""


class ProviderUnavailable(Exception):
    """The identity provider's configuration or keys could not be fetched."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


class TenantKeys:
    """The tenant's discovery document and JWKS, fetched lazily and cached."""

    def __init__(
        self, http: httpx.AsyncClient, *, discovery_url: str, refresh_floor_seconds: float
    ) -> None:
        self._http = http
        self._discovery_url = discovery_url
        self._floor = refresh_floor_seconds
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            document = await self._get_json(self._discovery_url)
            try:
                self._metadata = ProviderMetadata(
                    issuer=document["issuer"],
                    authorization_endpoint=document["authorization_endpoint"],
                    token_endpoint=document["token_endpoint"],
                    jwks_uri=document["jwks_uri"],
                    end_session_endpoint=document.get("end_session_endpoint"),
                )
            except KeyError as exc:
                raise ProviderUnavailable(f"discovery document lacks {exc}") from exc
        return self._metadata

    async def key(self, kid: str) -> RSAKey:
        """The signing key ``kid``. The key set is refetched when ``kid`` is unknown (a new
        key) or the set is older than ``MAX_AGE_SECONDS`` (a withdrawn key stops being
        trusted), never twice within the floor."""
        found = self._find(kid) if not self._stale() else None
        if found is not None:
            return found
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if (self._find(kid) is None or self._stale()) and age >= self._floor:
                await self._refresh()
            found = self._find(kid)
        if found is None:
            raise InvalidToken(f"unknown signing key {kid!r}")
        return found

    def _stale(self) -> bool:
        return time.monotonic() - self._fetched_at > MAX_AGE_SECONDS

    def _find(self, kid: str) -> RSAKey | None:
        if self._keys is None:
            return None
        for key in self._keys.keys:
            if key.kid == kid and isinstance(key, RSAKey):
                return key
        return None

    async def _refresh(self) -> None:
        metadata = await self.metadata()
        document = await self._get_json(metadata.jwks_uri)
        self._fetched_at = time.monotonic()
        keys = [key for key in document.get("keys", []) if key.get("kty") == "RSA"]
        try:
            self._keys = KeySet.import_key_set({"keys": keys})
        except (JoseError, ValueError) as exc:
            raise ProviderUnavailable(f"unusable key set: {exc}") from exc

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise ProviderUnavailable(f"{url}: {exc}") from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return document


@dataclass(frozen=True, slots=True)
class TokenRules:
    issuer: str
    audiences: Collection[str]
    tenant_id: str
    leeway_seconds: int


async def validate(raw: str, *, keys: TenantKeys, rules: TokenRules) -> dict[str, Any]:
    """The claims of a valid token, else ``InvalidToken``."""
    try:
        header = jws.extract_compact(raw.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidToken(f"malformed token: {exc}") from exc
    if header.get("alg") not in ALGORITHMS:
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("the token names no signing key")
    key = await keys.key(kid)
    try:
        token = jwt.decode(raw, key, algorithms=list(ALGORITHMS))
        jwt.JWTClaimsRegistry(
            leeway=rules.leeway_seconds,
            iss={"essential": True, "value": rules.issuer},
            aud={"essential": True, "values": list(rules.audiences)},
            exp={"essential": True},
            tid={"essential": True, "value": rules.tenant_id},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise InvalidToken(str(exc) or type(exc).__name__) from exc
    return dict(token.claims)
