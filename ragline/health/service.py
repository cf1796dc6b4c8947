"""Readiness: each configured dependency answers within a short timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from ragline.lifespan import AppState

CHECK_TIMEOUT_S = 2.0


async def _timed(check: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await check()
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def readiness(state: AppState) -> dict[str, dict[str, Any]]:
    async def database() -> None:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    checks: dict[str, Callable[[], Awaitable[Any]]] = {"database": database}
    if state.redis is not None:
        redis = state.redis

        async def ping_redis() -> None:
            await redis.ping()  # type: ignore[misc]  # redis-py types ping() for sync and async

        checks["redis"] = ping_redis
    results = await asyncio.gather(*(_timed(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))
