"""Clients are built once here and reached through typed dependencies.

Nothing connects at import time: ``create_app`` only wires; this lifespan opens the
database engine and (when configured) Redis, and closes them on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

from fastapi import FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ragline.auth.identity import IdentityProvider, build_identity_provider
from ragline.config import Settings
from ragline.db.engine import build_sessionmaker, engine_from_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    identity: IdentityProvider


def app_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.ragline)


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    engine = engine_from_settings(settings)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    try:
        yield AppState(
            settings=settings,
            engine=engine,
            sessionmaker=build_sessionmaker(engine),
            redis=redis,
            identity=build_identity_provider(settings),
        )
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


def lifespan_for(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_state(settings) as state:
            app.state.ragline = state
            logger.info(
                "ragline started (env=%s, database=%s, redis=%s)",
                settings.ragline_env,
                state.engine.url.get_backend_name(),
                "on" if state.redis is not None else "off",
            )
            yield

    return lifespan
