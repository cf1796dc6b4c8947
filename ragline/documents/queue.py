"""The ingestion queue (Huey) and its consumers.

Why Huey: it is small, well kept, and is the one established queue with both an embedded,
durable, serverless storage (SQLite: the embedded default needs no broker) and a Redis
storage for workers on several machines; it has delayed retries and periodic tasks. Its
Redis storage pops a message before running it, so a worker killed mid-job loses the
message: ragline does not rely on the queue for durability — the file row and its lease
are the truth, and ``requeue_unfinished`` (start-up, then every minute) re-sends any file
whose job died.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.consumer import Consumer

from ragline.config import QueueBackend, Settings
from ragline.documents.jobs import WorkerContext, run_jobs
from ragline.documents.purge import pending_purges, run_purges
from ragline.documents.retries import OUTAGE_RETRY_S, recoverable_files
from ragline.kit.outages import unavailable_dependency
from ragline.rag.ingest import chunk

logger = logging.getLogger(__name__)
MESSAGE_FILES = 50
PURGE_RETRIES = 5
PURGE_RETRY_DELAY_S = 10
PURGE_RESEND_AFTER = timedelta(minutes=2)

_context: WorkerContext | None = None
_context_lock = threading.Lock()


def _worker_context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("no ingestion worker is running in this process")
    return _context


def ingest_job(files: list[tuple[str, int]]) -> None:
    context = _worker_context()
    pairs = [(file_id, int(version)) for file_id, version in files]
    try:
        run_jobs(context, pairs)
    except Exception as exc:
        # The database went away (claiming, or recording the totals): send the message
        # again rather than lose it until the reaper's round; no attempt is counted, and a
        # file this job had claimed is taken again when its lease expires.
        dependency = unavailable_dependency(exc)
        if dependency is None:
            raise
        logger.warning("ingestion waits for the %s (unavailable): %s", dependency, exc)
        for file_id, version in pairs:
            context.retry(file_id, version, OUTAGE_RETRY_S)


def purge_job(file_ids: list[str]) -> None:
    context = _worker_context()
    run_purges(
        engine=context.engine, stores=context.stores, storage=context.storage, file_ids=file_ids
    )


def reap_unfinished() -> None:
    """Periodic: re-queue files whose worker died (lease expired) or whose message was lost,
    and purges still pending a while after their message."""
    context = _worker_context()
    queue = build_queue(context.settings)
    queue.enqueue(recoverable_files(context.engine, include_leased=False))
    queue.purge(pending_purges(context.engine, older_than=PURGE_RESEND_AFTER))


@dataclass(frozen=True)
class IngestQueue:
    huey: Huey
    task: TaskWrapper
    purge_task: TaskWrapper

    def enqueue(self, files: Sequence[tuple[str, int]], *, delay: float | None = None) -> None:
        """Queue files as messages of up to MESSAGE_FILES (file_id, version) pairs."""
        for start in range(0, len(files), MESSAGE_FILES):
            batch = [list(pair) for pair in files[start : start + MESSAGE_FILES]]
            if delay:
                self.task.schedule(args=(batch,), delay=delay)
            else:
                self.task(batch)

    def purge(self, file_ids: Sequence[str]) -> None:
        """Queue the purge of deleted files (see :mod:`ragline.documents.purge`)."""
        for start in range(0, len(file_ids), MESSAGE_FILES):
            self.purge_task(list(file_ids[start : start + MESSAGE_FILES]))


_queues: dict[tuple[str, str], IngestQueue] = {}


def build_queue(settings: Settings) -> IngestQueue:
    """One Huey instance per (backend, location) per process."""
    if settings.ingest_queue is QueueBackend.REDIS:
        key = ("redis", settings.redis_url or "")
    else:
        key = ("sqlite", str((settings.ragline_data_dir / "queue.db").resolve()))
    with _context_lock:
        if key not in _queues:
            huey: Huey
            name = f"ragline-{settings.chroma_collection_name}"
            if key[0] == "redis":
                huey = RedisHuey(name, url=settings.redis_url, results=False, utc=True)
            else:
                settings.ragline_data_dir.mkdir(parents=True, exist_ok=True)
                huey = SqliteHuey(name, filename=key[1], results=False, utc=True, timeout=30)
            task = huey.task(name="ingest_file", retries=0)(ingest_job)
            purge_task = huey.task(
                name="purge_files", retries=PURGE_RETRIES, retry_delay=PURGE_RETRY_DELAY_S
            )(purge_job)
            _queues[key] = IngestQueue(huey=huey, task=task, purge_task=purge_task)
        return _queues[key]


class _QuietConsumer(Consumer):  # type: ignore[misc]
    """A consumer that leaves signal handling to the host process (Hypercorn)."""

    def _set_signal_handlers(self) -> None:
        return None


def start_consumer(context: WorkerContext, *, threads: int) -> Consumer:
    """Run ingestion workers as threads of this process until ``stop_consumer``."""
    global _context
    with _context_lock:
        _context = context
    queue = build_queue(context.settings)
    consumer = _QuietConsumer(
        queue.huey,
        workers=threads,
        worker_type="thread",
        periodic=False,  # the reaper has a thread of its own (``Reaper``)
        shutdown_timeout=10,
        max_delay=0.5,  # poll at least twice a second: an upload starts within 0.5 s
    )
    consumer.start()
    global _reaper
    _reaper = Reaper(context.settings.ingest_reap_seconds)
    if context.settings.ingest_warm_up:
        threading.Thread(
            target=warm_up, args=(context,), name="ingest-warm-up", daemon=True
        ).start()
        threading.Thread(
            target=warm_up_parsers, args=(context,), name="parse-warm-up", daemon=True
        ).start()
    return consumer


def warm_up(context: WorkerContext) -> None:
    """Load the sentence splitter and the embedding model in the background right after
    start-up, so the first upload does not wait for them (start-up itself stays fast). A
    failure is only logged: the first job loads them again, and reports its own error."""
    try:
        chunk.warm_up()
        _ = context.embedder.max_tokens  # builds the (lazy) embedder; sends no request
    except Exception:
        logger.warning(
            "ingestion warm-up failed; the first job will load what it needs", exc_info=True
        )


class Reaper:
    """Runs ``reap_unfinished`` every ``interval_s`` on a thread of its own. It used to be a
    Huey periodic task, run by the ingestion threads: with both busy (a dense file, a big
    CSV) it waited behind them, so nothing re-queued a file whose worker had died."""

    def __init__(self, interval_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="ingest-reaper", daemon=True
        )
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                reap_unfinished()
            except Exception:  # e.g. the database is down: the next round tries again
                logger.warning("re-queueing unfinished files failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


_reaper: Reaper | None = None


def warm_up_parsers(context: WorkerContext) -> None:
    """Start a parse process (``rag/ingest/parse/budget.py``), so the first file does not
    wait ~2 s for the parsers' import; a second one starts when two files parse at once."""
    try:
        context.parser.warm_up(1)
    except Exception:
        logger.warning("parse processes could not start; the first job tries", exc_info=True)


def stop_consumer(consumer: Any) -> None:
    global _context, _reaper
    if _reaper is not None:
        _reaper.stop()
        _reaper = None
    consumer.stop(graceful=True)
    with _context_lock:
        context, _context = _context, None
    if context is not None:
        context.sink.close()
        context.parser.close()


def requeue_unfinished(context: WorkerContext, *, single_process: bool) -> int:
    """Start-up recovery. A single process (embedded default) owns every lease it finds."""
    files = recoverable_files(context.engine, include_leased=single_process)
    purges = pending_purges(context.engine)
    queue = build_queue(context.settings)
    queue.enqueue(files)
    queue.purge(purges)
    if files or purges:
        logger.info("re-queued %d unfinished file(s), %d purge(s)", len(files), len(purges))
    return len(files)
