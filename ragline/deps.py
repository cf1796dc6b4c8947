"""Annotated dependency aliases used by every router."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.auth.entra import SAFE_METHODS
from ragline.auth.identity import ADMIN, Principal
from ragline.auth.ratelimit import Limit
from ragline.auth.repository import upsert_user
from ragline.config import Settings
from ragline.db.session import get_session
from ragline.errors import Forbidden, Unauthorized
from ragline.lifespan import app_state
from ragline.models import User

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_settings_dep(request: Request) -> Settings:
    return app_state(request).settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_principal(request: Request, session: SessionDep) -> Principal:
    """The authenticated caller (401/403 otherwise); a read-only API key may only read."""
    principal: Principal = await app_state(request).identity.authenticate(request, session)
    if principal.read_only and request.method not in SAFE_METHODS:
        raise Forbidden("This API key is read-only.")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: CurrentPrincipal, session: SessionDep) -> User:
    if principal.user_id is not None:
        user = await session.get(User, uuid.UUID(principal.user_id))
        if user is None:
            raise Unauthorized("This account no longer exists.")
        return user
    return await upsert_user(session, principal=principal)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(principal: CurrentPrincipal, user: CurrentUser) -> User:
    if ADMIN not in principal.roles:
        raise Forbidden("This needs the admin role.")
    return user


AdminUser = Annotated[User, Depends(get_admin)]


def rate_limited(kind: Limit):  # type: ignore[no-untyped-def]
    """A dependency counting the current user's requests of ``kind``."""

    async def check(request: Request, principal: CurrentPrincipal) -> None:
        # Keyed by identity, not user row: a first request that fails rolls its row back.
        who = f"{principal.tenant_id}:{principal.subject}"
        await app_state(request).auth.rate_limits.hit(kind, who)

    return Depends(check)
