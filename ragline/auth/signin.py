"""Browser sign-in with Entra ID: authorization code flow with PKCE, ``state`` and ``nonce``.

``begin`` remembers a fresh state, nonce and PKCE verifier in Redis (10 minutes, single
use) and returns Entra's authorize URL. ``finish`` takes the state back exactly once,
exchanges the code (Authlib's OAuth 2 client; a reused code is refused by Entra), validates
the ID token (:mod:`.tokens`, audience = ``CLIENT_ID``) and its nonce, gates on groups
(asking Graph once when the token's ``groups`` overflowed), upserts the user, caches the
profile photo, and creates a new server-side session. The Graph token is used right there
and never stored. Entra unreachable: 503 ``IdentityProviderUnavailable``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.auth.entra import (
    app_roles,
    check_groups,
    has_group_overage,
    strings,
    text,
    token_rules,
)
from ragline.auth.graph import GraphClient, GraphUnavailable, PhotoCache
from ragline.auth.groups import GroupResolver
from ragline.auth.identity import AuthMethod, Principal
from ragline.auth.repository import upsert_user
from ragline.auth.sessions import PendingSignin, SessionData, SessionStore
from ragline.auth.tokens import (
    InvalidToken,
    ProviderMetadata,
    ProviderUnavailable,
    TenantKeys,
    validate,
)
from ragline.config import Settings
from ragline.errors import ServiceUnavailable, Unauthorized

logger = logging.getLogger(__name__)


class IdentityProviderUnavailable(ServiceUnavailable):
    """Entra (its OpenID configuration or token endpoint) could not be reached: 503."""


@dataclass(frozen=True, slots=True)
class SigninServices:
    settings: Settings
    http: httpx.AsyncClient
    keys: TenantKeys
    sessions: SessionStore
    graph: GraphClient
    photos: PhotoCache
    groups: GroupResolver

    def scope(self) -> str:
        graph = self.settings.graph_base_url.rstrip("/")
        return f"openid profile email {graph}/User.Read"

    def oauth(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            redirect_uri=self.settings.redirect_uri,
            scope=self.scope(),
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
        )

    def unavailable(self, doing: str) -> IdentityProviderUnavailable:
        """The 503 for an identity provider that did not answer while ``doing``."""
        authority = self.settings.entra_authority_host.rstrip("/")
        return IdentityProviderUnavailable(
            f"The identity provider ({authority}) could not be reached to {doing}; "
            "try again in a moment."
        )


async def provider_metadata(*, services: SigninServices, doing: str) -> ProviderMetadata:
    """The tenant's OpenID configuration (cached once read); ``IdentityProviderUnavailable``
    when Entra cannot be reached (down, unknown host, an answer that is not one)."""
    try:
        return await services.keys.metadata()
    except ProviderUnavailable as exc:
        logger.warning("identity provider unavailable: %s", exc)
        raise services.unavailable(doing) from exc


async def begin(*, services: SigninServices) -> str:
    """Entra's authorize URL for a new sign-in."""
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 allows 43-128
    metadata = await provider_metadata(services=services, doing="start the sign-in")
    await services.sessions.start_signin(state, PendingSignin(code_verifier=verifier, nonce=nonce))
    async with services.oauth() as client:
        url, _ = client.create_authorization_url(
            metadata.authorization_endpoint,
            state=state,
            code_verifier=verifier,
            nonce=nonce,
            response_mode="query",
        )
    return str(url)


async def finish(
    *,
    services: SigninServices,
    db: AsyncSession,
    state: str | None,
    code: str | None,
    error: str | None,
) -> str:
    """A new session id for the user who signed in; ``Unauthorized`` for anything amiss."""
    pending = await services.sessions.finish_signin(state) if state else None
    if pending is None:
        raise Unauthorized("Unknown or expired sign-in state; start again at /signin.")
    if error or not code:
        raise Unauthorized(f"Sign-in did not complete: {error or 'no authorization code'}.")
    token = await _exchange(services, code=code, verifier=pending.code_verifier)
    claims = await _id_token_claims(services, token, nonce=pending.nonce)
    groups = strings(claims.get("groups"))
    graph_token = token.get("access_token")
    if has_group_overage(claims) and isinstance(graph_token, str):
        try:
            groups = await services.graph.group_ids(graph_token)
        except GraphUnavailable as exc:
            raise ServiceUnavailable("Your groups could not be read from Graph.") from exc
        await services.groups.remember(
            tenant_id=claims["tid"], object_id=claims["oid"], groups=groups
        )
    check_groups(services.settings, groups)
    principal = Principal(
        tenant_id=claims["tid"],
        subject=claims["oid"],
        name=text(claims.get("name")),
        email=text(claims.get("preferred_username") or claims.get("email")),
        roles=app_roles(services.settings, strings(claims.get("roles"))),
        groups=tuple(groups),
        method=AuthMethod.SESSION,
    )
    user = await upsert_user(db, principal=principal)
    if isinstance(graph_token, str):
        await _cache_photo(services, user_id=str(user.id), token=graph_token)
    return await services.sessions.create(
        SessionData(
            user_id=str(user.id),
            tenant_id=principal.tenant_id,
            subject=principal.subject,
            name=principal.name,
            email=principal.email,
            groups=list(principal.groups),
            roles=sorted(principal.roles),
        )
    )


async def _exchange(services: SigninServices, *, code: str, verifier: str) -> dict[str, Any]:
    metadata = await provider_metadata(services=services, doing="complete the sign-in")
    async with services.oauth() as client:
        try:
            token = await client.fetch_token(
                metadata.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
            )
        except OAuthError as exc:  # e.g. invalid_grant: a code used twice, or expired
            logger.info("code exchange refused: %s", exc)
            raise Unauthorized(f"Entra refused the sign-in: {exc.error}.") from exc
        except httpx.HTTPError as exc:
            logger.warning("code exchange failed: %s", exc)
            raise services.unavailable("complete the sign-in") from exc
    return dict(token)


async def _id_token_claims(
    services: SigninServices, token: dict[str, Any], *, nonce: str
) -> dict[str, Any]:
    settings = services.settings
    rules = token_rules(settings, (settings.client_id or "",))
    raw = token.get("id_token")
    if not isinstance(raw, str):
        raise Unauthorized("Entra returned no ID token.")
    try:
        claims = await validate(raw, keys=services.keys, rules=rules)
    except InvalidToken as exc:
        logger.info("rejected an ID token: %s", exc)
        raise Unauthorized("Invalid ID token.") from exc
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise Unauthorized("The ID token's nonce does not match this sign-in.")
    if not isinstance(claims.get("oid"), str) or not isinstance(claims.get("tid"), str):
        raise Unauthorized("The ID token names no user (oid, tid).")
    return claims


async def _cache_photo(services: SigninServices, *, user_id: str, token: str) -> None:
    try:
        photo = await services.graph.photo(token)
    except GraphUnavailable as exc:  # a photo is not worth failing a sign-in for
        logger.warning("could not fetch the profile photo: %s", exc)
        return
    await services.photos.put(user_id, photo)
