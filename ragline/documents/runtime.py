"""What the API process needs for files: storage, stores, queue; and, when the worker
runs in-process (embedded default), the worker context with its embedder."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, event

from ragline.config import Settings
from ragline.db.engine import sqlite_pragmas
from ragline.documents.jobs import WorkerContext, finish_works, obsolete_works
from ragline.documents.queue import IngestQueue, build_queue
from ragline.documents.storage import LocalFileStorage
from ragline.rag.embeddings.lazy import LazyEmbedder
from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.parse.budget import ParseBudget, ParsePool
from ragline.rag.ingest.sink import IngestSink
from ragline.rag.ingest.store import Stores
from ragline.rag.providers import build_embedder, build_stores, ingest_limits

logger = logging.getLogger(__name__)


@dataclass
class Documents:
    settings: Settings
    storage: LocalFileStorage
    stores: Stores
    queue: IngestQueue
    limits: IngestLimits
    consumer: Any = field(default=None)

    async def enqueue(self, files: list[tuple[str, int]]) -> None:
        """Queue ingestion jobs for these (file id, version) pairs."""
        await _send(self.queue.enqueue, files, "ingestion")

    async def purge(self, file_ids: list[str]) -> None:
        """Queue the purge of these deleted files."""
        await _send(self.queue.purge, file_ids, "purge")


async def _send(send: Callable[[Sequence[Any]], None], items: Sequence[Any], what: str) -> None:
    """Best effort: the rows behind the messages are committed first, and start-up recovery
    and the periodic reaper re-send what is still pending, so a lost message is recovered."""
    if not items:
        return
    try:
        await asyncio.to_thread(send, items)
    except Exception:
        logger.exception(
            "could not queue %d %s message item(s); they will be re-sent", len(items), what
        )


def sync_engine(settings: Settings) -> Engine:
    url = settings.sync_database_url
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True)


def open_documents(settings: Settings) -> Documents:
    return Documents(
        settings=settings,
        storage=LocalFileStorage(settings.ragline_data_dir / "files"),
        stores=build_stores(settings),
        queue=build_queue(settings),
        limits=ingest_limits(settings),
    )


def worker_context(settings: Settings, documents: Documents) -> WorkerContext:
    embedder = LazyEmbedder(lambda: build_embedder(settings))

    def retry(file_id: str, version: int, delay: float) -> None:
        documents.queue.enqueue([(file_id, version)], delay=delay)

    sink = IngestSink(
        embedder,
        documents.stores,
        finisher=lambda works: finish_works(context, works),
        max_batch=settings.embed_batch_size,
        obsolete=lambda works: obsolete_works(context, works),
    )
    context = WorkerContext(
        settings=settings,
        engine=sync_engine(settings),
        storage=documents.storage,
        stores=documents.stores,
        embedder=embedder,
        limits=documents.limits,
        sink=sink,
        retry=retry,
        parser=ParsePool(
            ParseBudget(cpu_seconds=settings.parse_cpu_seconds, memory_mb=settings.parse_memory_mb)
        ),
    )
    return context
