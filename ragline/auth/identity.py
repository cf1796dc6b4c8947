"""The identity seam: who is calling, decided by a provider chosen by configuration.

With Entra settings (``CLIENT_ID``, ``CLIENT_SECRET``, ``TENANT_ID``) the Entra provider
(:mod:`ragline.auth.entra`) accepts browser sessions, Entra access tokens and API keys.
Without them, the development provider: refused in production, it answers only requests
that come from loopback. The routers never see a provider; they depend on ``CurrentUser``
or ``CurrentPrincipal`` (``ragline.deps``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.config import is_loopback
from ragline.errors import Unauthorized

DEV_USER_HEADER = "X-Ragline-Dev-User"
DEV_TENANT = "dev"
DEFAULT_DEV_USER = "dev"
_DEV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

USER = "user"
ADMIN = "admin"


class AuthMethod(StrEnum):
    DEVELOPMENT = "development"
    SESSION = "session"
    BEARER = "bearer"
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller as the identity provider describes it."""

    tenant_id: str
    subject: str
    name: str | None = None
    email: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    groups: tuple[str, ...] = ()
    method: AuthMethod = AuthMethod.DEVELOPMENT
    read_only: bool = False  # an API key with the ``read`` scope
    user_id: str | None = None  # known already (sessions, API keys): no user lookup


class IdentityProvider(Protocol):
    async def authenticate(self, request: Request, db: AsyncSession) -> Principal:
        """Return the caller, or raise ``Unauthorized`` / ``Forbidden``."""
        ...


class DevelopmentIdentity:
    """Loopback-only development identity: user ``dev``, or ``X-Ragline-Dev-User: NAME``;
    API keys (``Authorization: Bearer rl_…``) work too; other bearer tokens are ignored."""

    async def authenticate(self, request: Request, db: AsyncSession) -> Principal:
        client = request.client
        if client is None or not is_loopback(client.host):
            raise Unauthorized("The development identity only serves loopback clients.")
        from ragline.auth.keys import api_key_principal, bearer, is_api_key

        raw = bearer(request)
        if raw is not None and is_api_key(raw):
            return await api_key_principal(db, raw)
        # Any other bearer (e.g. the placeholder key an OpenAI client must send) is ignored:
        # this identity cannot check tokens; the header below names the user.
        name = request.headers.get(DEV_USER_HEADER, DEFAULT_DEV_USER)
        if not _DEV_NAME.match(name):
            raise Unauthorized(
                f"{DEV_USER_HEADER} must be 1-64 characters of letters, digits, '.', '_', '@', '-'."
            )
        return Principal(tenant_id=DEV_TENANT, subject=name, name=name, roles=frozenset({USER}))
