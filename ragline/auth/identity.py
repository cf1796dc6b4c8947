"""The identity seam: who is calling, decided by a provider chosen by configuration.

Until Entra ID sign-in lands, the development provider is the only one. It is refused
outside development and answers only requests that come from loopback. The routers never
see a provider; they depend on ``CurrentUser`` (``ragline.deps``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import Request

from ragline.config import Settings, UnsafeConfigurationError, is_loopback
from ragline.errors import Unauthorized

DEV_USER_HEADER = "X-Ragline-Dev-User"
DEV_TENANT = "dev"
DEFAULT_DEV_USER = "dev"
_DEV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller as the identity provider describes it."""

    tenant_id: str
    subject: str
    name: str | None = None
    email: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)


class IdentityProvider(Protocol):
    async def authenticate(self, request: Request) -> Principal:
        """Return the caller, or raise ``Unauthorized``."""
        ...


class DevelopmentIdentity:
    """Loopback-only development identity: user ``dev``, or ``X-Ragline-Dev-User: NAME``."""

    async def authenticate(self, request: Request) -> Principal:
        client = request.client
        if client is None or not is_loopback(client.host):
            raise Unauthorized("The development identity only serves loopback clients.")
        name = request.headers.get(DEV_USER_HEADER, DEFAULT_DEV_USER)
        if not _DEV_NAME.match(name):
            raise Unauthorized(
                f"{DEV_USER_HEADER} must be 1-64 characters of letters, digits, '.', '_', '@', '-'."
            )
        return Principal(tenant_id=DEV_TENANT, subject=name, name=name, roles=frozenset({"user"}))


def build_identity_provider(settings: Settings) -> IdentityProvider:
    if settings.is_production:
        # Settings already refuse production without Entra settings; the Entra provider
        # itself is issue 5. Until it exists, production cannot authenticate anyone.
        raise UnsafeConfigurationError(
            "Entra ID sign-in is not implemented yet; production mode cannot start."
        )
    return DevelopmentIdentity()
