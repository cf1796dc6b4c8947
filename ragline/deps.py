"""Annotated dependency aliases used by every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.auth.repository import upsert_user
from ragline.config import Settings
from ragline.db.session import get_session
from ragline.lifespan import app_state
from ragline.models import User

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_settings_dep(request: Request) -> Settings:
    return app_state(request).settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_current_user(request: Request, session: SessionDep) -> User:
    principal = await app_state(request).identity.authenticate(request)
    return await upsert_user(session, principal=principal)


CurrentUser = Annotated[User, Depends(get_current_user)]
