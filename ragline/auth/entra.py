"""The Entra ID identity provider: browser sessions, Entra access tokens, API keys.

Order of checks for a request: ``Authorization: Bearer`` first (an API key ``rl_…``, else
an Entra access token validated offline by :mod:`.tokens`), then the session cookie. A
cookie-authenticated request that changes state must come from the frontend's or ragline's
own origin (``Origin``, else ``Referer``): cross-site forms cannot ride the cookie (CSRF).
Roles: a delegated token must carry ``API_SCOPE`` in ``scp``; an app-only token (no
``scp``) one of the app roles ``USER_APP_ROLE``/``ADMIN_APP_ROLE``; ``ADMIN_APP_ROLE`` in
``roles`` makes the caller an admin. ``ALLOWED_GROUPS_IDS`` gates everyone by ``groups``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.auth.groups import GroupResolver
from ragline.auth.identity import ADMIN, USER, AuthMethod, Principal
from ragline.auth.keys import BEARER_CHALLENGE, api_key_principal, bearer, is_api_key
from ragline.auth.sessions import SessionStore, SessionStoreUnavailable
from ragline.auth.tokens import InvalidToken, ProviderUnavailable, TenantKeys, TokenRules, validate
from ragline.config import Settings
from ragline.errors import Forbidden, ServiceUnavailable, Unauthorized

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The frontend's origin and ragline's own (from its redirect URI)."""
    return frozenset(origin_of(u) for u in (settings.frontend_url, settings.redirect_uri) if u)


def check_origin(request: Request, allowed: frozenset[str]) -> None:
    """CSRF guard for cookie-authenticated requests that change state."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None or origin_of(origin) not in allowed:
        raise Forbidden(
            "Cross-site request refused: a state-changing request with a session cookie "
            "must come from the ragline frontend (Origin header)."
        )


def token_rules(settings: Settings, audiences: tuple[str, ...]) -> TokenRules:
    """The tenant's rules for a token meant for ``audiences``."""
    return TokenRules(
        issuer=settings.entra_issuer,
        audiences=audiences,
        tenant_id=settings.tenant_id or "",
        leeway_seconds=settings.token_leeway_seconds,
    )


def access_token_rules(settings: Settings) -> TokenRules:
    """API tokens: ``api://CLIENT_ID`` or ``CLIENT_ID`` (ID tokens: ``CLIENT_ID`` only)."""
    client_id = settings.client_id or ""
    return token_rules(settings, (f"api://{client_id}", client_id))


def text(value: object) -> str | None:
    """A claim that should be a string, else None."""
    return value if isinstance(value, str) else None


def app_roles(settings: Settings, claimed: Iterable[str]) -> frozenset[str]:
    """ragline roles from the token's app roles (every authenticated caller is a user)."""
    return frozenset({USER} | ({ADMIN} if settings.admin_app_role in claimed else set()))


def check_groups(settings: Settings, groups: Iterable[str]) -> None:
    allowed = set(settings.allowed_groups_ids)
    if allowed and not allowed.intersection(groups):
        raise Forbidden("You are not a member of a group allowed to use ragline.")


def strings(value: object) -> list[str]:
    """A claim that should be a list of strings, tolerating absence and junk."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def has_group_overage(claims: dict[str, Any]) -> bool:
    """Entra leaves ``groups`` out when there are too many: ``_claim_names.groups`` (JWT)
    or ``hasgroups`` (implicit flow) says so."""
    names = claims.get("_claim_names")
    return bool(claims.get("hasgroups")) or (isinstance(names, dict) and "groups" in names)


class EntraIdentity:
    def __init__(
        self,
        *,
        settings: Settings,
        keys: TenantKeys,
        sessions: SessionStore,
        groups: GroupResolver,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._sessions = sessions
        self._groups = groups
        self._rules = access_token_rules(settings)
        self._origins = allowed_origins(settings)

    async def authenticate(self, request: Request, db: AsyncSession) -> Principal:
        raw = bearer(request)
        if raw is not None:
            if is_api_key(raw):
                return await api_key_principal(db, raw)
            return await self._access_token(raw)
        session_id = request.cookies.get(self._settings.session_cookie_name)
        if session_id:
            return await self._session(request, session_id)
        raise Unauthorized(
            "Sign in (GET /signin), or send 'Authorization: Bearer <Entra access token or "
            "API key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def _access_token(self, raw: str) -> Principal:
        try:
            claims = await validate(raw, keys=self._keys, rules=self._rules)
        except InvalidToken as exc:
            logger.info("rejected an access token: %s", exc)
            raise Unauthorized("Invalid access token.", headers=BEARER_CHALLENGE) from exc
        except ProviderUnavailable as exc:
            logger.warning("cannot check access tokens: %s", exc)
            raise ServiceUnavailable("The identity provider's keys are unavailable.") from exc
        subject, tenant = claims.get("oid"), claims.get("tid")
        if not isinstance(subject, str) or not isinstance(tenant, str) or not subject:
            raise Unauthorized("The token names no user (oid).", headers=BEARER_CHALLENGE)
        claimed_roles = strings(claims.get("roles"))
        scopes = str(claims.get("scp", "")).split()
        if scopes and self._settings.api_scope not in scopes:
            raise Forbidden(f"The token lacks the scope {self._settings.api_scope!r}.")
        if not scopes and not {
            self._settings.user_app_role,
            self._settings.admin_app_role,
        }.intersection(claimed_roles):
            raise Forbidden("An application token needs a ragline app role.")
        groups = strings(claims.get("groups"))
        if has_group_overage(claims):
            groups = await self._groups.of_user(tenant_id=tenant, object_id=subject)
        check_groups(self._settings, groups)
        return Principal(
            tenant_id=tenant,
            subject=subject,
            name=text(claims.get("name")),
            email=text(claims.get("preferred_username") or claims.get("email")),
            roles=app_roles(self._settings, claimed_roles),
            groups=tuple(groups),
            method=AuthMethod.BEARER,
        )

    async def _session(self, request: Request, session_id: str) -> Principal:
        if request.method not in SAFE_METHODS:
            check_origin(request, self._origins)
        try:
            data = await self._sessions.get(session_id)
        except SessionStoreUnavailable as exc:
            logger.warning("session store unavailable, refusing cookie sessions: %s", exc)
            raise Unauthorized("Sessions are unavailable; sign in again later.") from exc
        if data is None:
            raise Unauthorized("Your session has ended; sign in again (GET /signin).")
        return Principal(
            tenant_id=data.tenant_id,
            subject=data.subject,
            name=data.name,
            email=data.email,
            roles=frozenset(data.roles),
            groups=tuple(data.groups),
            method=AuthMethod.SESSION,
            user_id=data.user_id,
        )
