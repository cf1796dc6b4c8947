"""Clients are built once here and reached through typed dependencies.

Nothing connects at import time: ``create_app`` only wires; this lifespan opens the
database engine and (when configured) Redis, and closes them on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from fastapi import FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ragline.auth.identity import IdentityProvider
from ragline.auth.runtime import AuthRuntime, open_auth
from ragline.chat.runtime import ChatRuntime, open_chat_runtime
from ragline.config import Settings, UnsafeConfigurationError
from ragline.db.engine import build_sessionmaker, engine_from_settings
from ragline.documents.queue import requeue_unfinished, start_consumer, stop_consumer
from ragline.documents.runtime import Documents, open_documents, worker_context
from ragline.models import ChatFile
from ragline.rag.providers import expected_embedding_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    identity: IdentityProvider
    auth: AuthRuntime
    documents: Documents
    chat: ChatRuntime


def app_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.ragline)


class EmbeddedStoresLock:
    """Embedded Chroma and the SQLite keyword index belong to one process: the one that
    holds this lock (``ragline serve``). Other commands talk to it over HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.ragline_data_dir / "embedded-stores.lock"
        self._file: Any = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._file.close()
            raise UnsafeConfigurationError(
                f"another ragline process has the embedded stores in {self.path.parent} open; "
                "talk to it over HTTP (e.g. `ragline ingest`), or configure CHROMA_HOST"
            ) from exc

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def _warn_on_model_change(settings: Settings, engine: AsyncEngine) -> None:
    expected = expected_embedding_model(settings)
    async with engine.connect() as connection:
        used = (
            await connection.execute(
                select(ChatFile.embedding_model, func.count())
                .where(ChatFile.embedding_model.is_not(None))
                .group_by(ChatFile.embedding_model)
            )
        ).all()
    for model, count in used:
        if model != expected:
            logger.warning(
                "%d file(s) were embedded with %s but the configured model is %s: "
                "run `ragline reindex` to re-embed them",
                count,
                model,
                expected,
            )


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    lock = EmbeddedStoresLock(settings) if not settings.chroma_host else None
    if lock is not None:
        lock.acquire()
    engine = engine_from_settings(settings)
    # Bounded waits: a Redis that stops answering fails a session check (401/503) in
    # seconds instead of holding the request.
    redis = (
        Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        if settings.redis_url
        else None
    )
    documents: Documents | None = None
    chat: ChatRuntime | None = None
    auth: AuthRuntime | None = None
    try:
        auth = open_auth(settings, redis)
        documents = await asyncio.to_thread(open_documents, settings)
        if lock is not None:  # the only process on these files: partial uploads are dead
            documents.storage.clear_incoming()
        if settings.embedded_worker:
            context = worker_context(settings, documents)
            await asyncio.to_thread(requeue_unfinished, context, single_process=lock is not None)
            documents.consumer = start_consumer(context, threads=settings.ingest_worker_threads)
        await _warn_on_model_change(settings, engine)
        chat = open_chat_runtime(settings, documents.stores)
        yield AppState(
            settings=settings,
            engine=engine,
            sessionmaker=build_sessionmaker(engine),
            redis=redis,
            identity=auth.identity,
            auth=auth,
            documents=documents,
            chat=chat,
        )
    finally:
        if auth is not None:
            await auth.aclose()
        if chat is not None:
            await chat.aclose()
        if documents is not None:
            if documents.consumer is not None:
                await asyncio.to_thread(stop_consumer, documents.consumer)
            documents.stores.keywords.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
        if lock is not None:
            lock.release()


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
