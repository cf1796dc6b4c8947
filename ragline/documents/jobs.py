"""Ingestion jobs, worker side. The file row is the source of truth; the queue only says
"look at file X, version V".

A job first *claims* the file: a conditional UPDATE that succeeds only if the file is not
final, still at that version, and nobody holds an unexpired lease. It extends the lease as
it makes progress. A worker that dies loses its lease; start-up recovery and the periodic
reaper re-queue such files, and the pipeline's deterministic chunk ids make the re-run
overwrite rather than duplicate. Permanent errors (bad file) fail at once; transient ones
(provider or store down) are retried with exponential backoff until ``ingest_max_attempts``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from huey.exceptions import RetryTask
from sqlalchemy import ColumnElement, Engine, or_, select, update

from ragline.config import Settings
from ragline.documents.storage import FileStorage
from ragline.models import ChatFile, FileStatus
from ragline.models.base import utcnow
from ragline.rag.embeddings.base import Embedder
from ragline.rag.ingest.errors import IngestError
from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.pipeline import (
    ChangePlan,
    FileJob,
    prepare_file,
    sweep_keyword_leftovers,
)
from ragline.rag.ingest.sink import FileWork, IngestSink
from ragline.rag.ingest.store import Stores, remove_file

logger = logging.getLogger(__name__)
ACTIVE = (FileStatus.QUEUED, FileStatus.PARSING, FileStatus.EMBEDDING)
LEASE_BUSY_RETRY_S = 5.0


class JobObsolete(Exception):
    """The file was deleted or replaced by a newer version while the job ran."""


@dataclass(frozen=True, slots=True)
class WorkerContext:
    settings: Settings
    engine: Engine
    storage: FileStorage
    stores: Stores
    embedder: Embedder
    limits: IngestLimits
    sink: IngestSink
    retry: Callable[[str, int, float], None]  # re-enqueue (file_id, version) after a delay


def _current(file_id: uuid.UUID, version: int) -> ColumnElement[bool]:
    return (ChatFile.id == file_id) & (ChatFile.version == version)


def _update(context: WorkerContext, file_id: uuid.UUID, version: int, **values: object) -> None:
    """Write status/progress and extend the lease; ``JobObsolete`` if the version is gone."""
    lease = utcnow() + timedelta(seconds=context.settings.ingest_lease_seconds)
    with context.engine.begin() as connection:
        result = connection.execute(
            update(ChatFile)
            .where(_current(file_id, version))
            .values(lease_expires_at=lease, updated_at=utcnow(), **values)
        )
    if result.rowcount == 0:
        raise JobObsolete()


def claim(context: WorkerContext, file_id: uuid.UUID, version: int) -> str:
    """'claimed' (now ``parsing``), 'busy' (another worker holds a live lease) or 'gone'."""
    now = utcnow()
    lease = now + timedelta(seconds=context.settings.ingest_lease_seconds)
    with context.engine.begin() as connection:
        claimed = connection.execute(
            update(ChatFile)
            .where(
                _current(file_id, version),
                ChatFile.status.in_(ACTIVE),
                or_(ChatFile.lease_expires_at.is_(None), ChatFile.lease_expires_at < now),
            )
            .values(status=FileStatus.PARSING, lease_expires_at=lease, updated_at=now)
        ).rowcount
        if claimed:
            return "claimed"
        alive = connection.execute(
            select(ChatFile.id).where(_current(file_id, version), ChatFile.status.in_(ACTIVE))
        ).first()
    return "busy" if alive else "gone"


def _finish(context: WorkerContext, file_id: uuid.UUID, version: int, **values: object) -> bool:
    with context.engine.begin() as connection:
        result = connection.execute(
            update(ChatFile)
            .where(_current(file_id, version))
            .values(lease_expires_at=None, updated_at=utcnow(), **values)
        )
    return bool(result.rowcount)


def _load_job(context: WorkerContext, file_id: uuid.UUID) -> tuple[FileJob, int] | None:
    with context.engine.connect() as connection:
        row = connection.execute(
            select(
                ChatFile.chat_id,
                ChatFile.owner_id,
                ChatFile.name,
                ChatFile.storage_key,
                ChatFile.attempts,
            ).where(ChatFile.id == file_id)
        ).first()
    if row is None:
        return None
    job = FileJob(
        file_id=str(file_id),
        chat_id=str(row.chat_id),
        owner_id=str(row.owner_id),
        file_name=row.name,
        path=context.storage.path(row.storage_key),
    )
    return job, int(row.attempts)


def _file_exists(context: WorkerContext, file_id: uuid.UUID) -> bool:
    with context.engine.connect() as connection:
        found = connection.execute(select(ChatFile.id).where(ChatFile.id == file_id)).first()
    return found is not None


def run_job(context: WorkerContext, file_id_text: str, version: int) -> None:
    """Claim, parse and chunk the file, then hand its new chunks to the sink. The file is
    finished (``indexed``) by the sink's callback once its last chunk is stored."""
    file_id = uuid.UUID(file_id_text)
    state = claim(context, file_id, version)
    if state == "busy":
        raise RetryTask("file is held by another worker", delay=LEASE_BUSY_RETRY_S)
    if state == "gone":
        logger.info("ingest %s v%s: nothing to do", file_id, version)
        return
    loaded = _load_job(context, file_id)
    if loaded is None:
        return
    job, attempts = loaded
    try:
        plan = prepare_file(
            job,
            tokenizer=context.embedder.tokenize,
            stores=context.stores,
            limits=context.limits,
            chunk_size=context.settings.chunk_size,
        )
        _update(
            context,
            file_id,
            version,
            status=FileStatus.EMBEDDING,
            chunks_done=len(plan.kept),
            chunks_total=len(plan.nodes),
        )
    except JobObsolete:
        _cleanup_if_deleted(context, file_id)
        return
    except IngestError as exc:
        logger.info("ingest %s v%s failed: %s", file_id, version, exc.reason)
        _finish(context, file_id, version, status=FileStatus.FAILED, error=exc.reason)
        return
    except Exception as exc:
        _retry_or_fail(context, file_id, version, attempts + 1, exc)
        return
    context.sink.submit(_work(context, job, plan, version, attempts))


def _work(
    context: WorkerContext, job: FileJob, plan: ChangePlan, version: int, attempts: int
) -> FileWork:
    file_id = uuid.UUID(job.file_id)
    kept = len(plan.kept)

    def on_progress(stored: int) -> None:
        _update(context, file_id, version, chunks_done=kept + stored)

    def on_done() -> None:
        try:
            sweep_keyword_leftovers(plan, stores=context.stores, file_id=job.file_id)
        except Exception as exc:
            on_error(exc)
            return
        finished = _finish(
            context,
            file_id,
            version,
            status=FileStatus.INDEXED,
            error=None,
            attempts=0,
            chunks_done=len(plan.nodes),
            chunks_total=len(plan.nodes),
            indexed_at=utcnow(),
            embedding_model=context.embedder.model_name,
            embedding_dimension=context.embedder.dimension,
        )
        if not finished:
            _cleanup_if_deleted(context, file_id)
        logger.info(
            "ingest %s v%s: %d chunks (%d embedded, %d kept, %d removed)",
            file_id,
            version,
            len(plan.nodes),
            len(plan.new),
            kept,
            len(plan.stale),
        )

    def on_error(exc: BaseException) -> None:
        if isinstance(exc, JobObsolete):
            _cleanup_if_deleted(context, file_id)
        elif isinstance(exc, Exception):
            _retry_or_fail(context, file_id, version, attempts + 1, exc, raise_retry=False)

    return FileWork(
        key=job.file_id,
        new=plan.new,
        kept=plan.kept,
        stale=plan.stale,
        on_progress=on_progress,
        on_done=on_done,
        on_error=on_error,
    )


def _cleanup_if_deleted(context: WorkerContext, file_id: uuid.UUID) -> None:
    """A file deleted mid-job may have had a batch written after its vectors were
    removed: remove them again, so nothing is left behind."""
    if not _file_exists(context, file_id):
        remove_file(context.stores, file_id=str(file_id))


def _retry_or_fail(
    context: WorkerContext,
    file_id: uuid.UUID,
    version: int,
    attempt: int,
    exc: Exception,
    *,
    raise_retry: bool = True,
) -> None:
    """Transient failure: back off exponentially and try again, or give up and say why."""
    settings = context.settings
    reason = f"{type(exc).__name__}: {exc}"[:500]
    if attempt >= settings.ingest_max_attempts:
        logger.error(
            "ingest %s v%s gave up after %d attempts: %s", file_id, version, attempt, reason
        )
        _finish(
            context,
            file_id,
            version,
            status=FileStatus.FAILED,
            attempts=attempt,
            error=f"gave up after {attempt} attempts; last error: {reason}",
        )
        return
    delay = settings.ingest_retry_base_seconds * 2 ** (attempt - 1)
    logger.warning(
        "ingest %s v%s attempt %d failed, retry in %.1fs: %s",
        file_id,
        version,
        attempt,
        delay,
        reason,
    )
    queued = _finish(
        context,
        file_id,
        version,
        status=FileStatus.QUEUED,
        attempts=attempt,
        error=f"attempt {attempt} failed ({reason}); retrying",
    )
    if not queued:
        return
    if raise_retry:
        raise RetryTask(reason, delay=delay)
    context.retry(str(file_id), version, delay)


def recoverable_files(engine: Engine, *, include_leased: bool) -> list[tuple[str, int]]:
    """Files to (re-)queue: not final and, unless ``include_leased``, without a live lease."""
    now = utcnow()
    condition: ColumnElement[bool] = ChatFile.status.in_(ACTIVE)
    if not include_leased:
        condition = condition & or_(
            ChatFile.lease_expires_at.is_(None), ChatFile.lease_expires_at < now
        )
    with engine.begin() as connection:
        if include_leased:  # a single process restarting: earlier leases are its own, dead
            connection.execute(update(ChatFile).where(condition).values(lease_expires_at=None))
        rows = connection.execute(select(ChatFile.id, ChatFile.version).where(condition)).all()
    return [(str(row.id), int(row.version)) for row in rows]
