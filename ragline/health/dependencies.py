"""What the API cannot serve without: the database, Redis (sessions, rate limits) when
configured, the ingestion queue's storage, and the Chroma server when ``CHROMA_HOST`` is set
(embedded Chroma lives inside this process). Each probe is one cheap round trip."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from urllib.parse import quote

import httpx
from huey import RedisHuey
from redis.asyncio import Redis
from sqlalchemy import text

from ragline.health.checks import CHECK_TIMEOUT_S, Check, tls_context
from ragline.lifespan import AppState


def dependency_checks(state: AppState) -> dict[str, Check]:
    checks = {"database": Check(lambda: _database(state))}
    if state.redis is not None:
        redis = state.redis
        checks["redis"] = Check(lambda: _ping(redis))
    checks["queue"] = _queue_check(state)
    if state.settings.chroma_host:
        url = f"http://{state.settings.chroma_host}:{state.settings.chroma_port}"
        checks["chroma"] = Check(lambda: _chroma_heartbeat(url))
    return checks


async def _database(state: AppState) -> None:
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _ping(redis: Redis) -> None:
    await redis.ping()  # type: ignore[misc]  # redis-py types ping() for sync and async


def _queue_check(state: AppState) -> Check:
    """Huey's storage: the Redis list its messages go to, or its SQLite file."""
    huey = state.documents.queue.huey
    if isinstance(huey, RedisHuey):
        if state.redis is None:  # refused by Settings.refuse_unsafe; typed for mypy
            raise RuntimeError("INGEST_QUEUE=redis without Redis")
        # The app's own async client on the same URL: Huey's client is synchronous and
        # waits without a timeout, which would pin a thread on a hung server.
        redis, key = state.redis, str(huey.storage.queue_key)

        async def redis_queue() -> None:
            await redis.llen(key)  # type: ignore[misc]  # typed for sync and async

        return Check(redis_queue, details={"backend": "redis"})
    path = str(huey.storage.filename)
    return Check(lambda: asyncio.to_thread(_sqlite_queue, path), details={"backend": "sqlite"})


def _sqlite_queue(path: str) -> None:
    """A connection of its own that may not create the file: a queue file that is gone
    (or not a Huey database) is down, although Huey's open connection still works."""
    uri = f"file:{quote(path)}?mode=rw"
    with closing(sqlite3.connect(uri, uri=True, timeout=CHECK_TIMEOUT_S / 2)) as connection:
        connection.execute("SELECT 1 FROM task LIMIT 1").fetchall()


async def _chroma_heartbeat(base_url: str) -> None:
    # Over async HTTP rather than the Chroma client, whose calls block a thread without a
    # timeout of their own; the path is the one the client's heartbeat() requests.
    async with httpx.AsyncClient(
        base_url=base_url, timeout=CHECK_TIMEOUT_S, verify=tls_context()
    ) as client:
        response = await client.get("/api/v2/heartbeat")
        response.raise_for_status()
