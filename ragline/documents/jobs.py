"""Ingestion jobs, worker side. The file row is the source of truth; the queue only says
"look at file X, version V".

A job first *claims* the file: a conditional UPDATE that succeeds only if the file is not
final, still at that version, and nobody holds an unexpired lease; it stores a random lease
token, and every later write of the job requires that token, so a job whose file was
deleted, replaced or taken over can no longer write its status. It extends the lease as it
makes progress. Replacing a file keeps the running job's lease: the new version's job waits
until the old one notices (at its next write) and releases it, so two versions of a file are
never ingested at once. A worker that dies loses its lease; start-up recovery and the
periodic reaper re-queue such files, and the pipeline's deterministic chunk ids make the
re-run overwrite rather than duplicate. Permanent errors (bad file) fail at once; transient ones
(provider or store down) are retried with exponential backoff until ``ingest_max_attempts``.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, or_, select, tuple_, update

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


def _held(file_id: uuid.UUID, version: int, token: str) -> ColumnElement[bool]:
    return _current(file_id, version) & (ChatFile.lease_token == token)


def _update_statement(
    file_id: uuid.UUID, version: int, token: str, lease_seconds: int, **values: object
) -> Any:
    lease = utcnow() + timedelta(seconds=lease_seconds)
    return (
        update(ChatFile)
        .where(_held(file_id, version, token))
        .values(lease_expires_at=lease, updated_at=utcnow(), **values)
    )


def _finish_statement(file_id: uuid.UUID, version: int, token: str, **values: object) -> Any:
    """Final write of a job (or back to ``queued`` for a retry); releases the lease."""
    return (
        update(ChatFile)
        .where(_held(file_id, version, token))
        .values(lease_expires_at=None, lease_token=None, updated_at=utcnow(), **values)
    )


@dataclass(frozen=True, slots=True)
class Claim:
    file_id: uuid.UUID
    version: int
    token: str
    job: FileJob
    attempts: int
    fresh: bool  # first run of a first version: nothing can be stored for it yet
    settled: bool  # the last job that wrote the file's chunks finished (see ChatFile)


def claim_many(
    context: WorkerContext, files: Sequence[tuple[str, int]]
) -> tuple[list[Claim], list[tuple[str, int]]]:
    """Take the files that are free (status ``parsing``) with one conditional UPDATE; they
    share this job's lease token. Returns the claims and the files another job still holds
    (to retry later); the rest are final or obsolete and need nothing."""
    if not files:
        return [], []
    now = utcnow()
    lease = now + timedelta(seconds=context.settings.ingest_lease_seconds)
    token = secrets.token_hex(16)
    wanted = [(uuid.UUID(file_id), version) for file_id, version in files]
    with context.engine.begin() as connection:
        rows = connection.execute(
            update(ChatFile)
            .where(
                tuple_(ChatFile.id, ChatFile.version).in_(wanted),
                ChatFile.status.in_(ACTIVE),
                or_(ChatFile.lease_expires_at.is_(None), ChatFile.lease_expires_at < now),
            )
            .values(
                status=FileStatus.PARSING,
                lease_expires_at=lease,
                lease_token=token,
                updated_at=now,
            )
            .returning(
                ChatFile.id,
                ChatFile.version,
                ChatFile.chat_id,
                ChatFile.owner_id,
                ChatFile.name,
                ChatFile.storage_key,
                ChatFile.attempts,
                ChatFile.chunks_total,
                ChatFile.chunks_settled,
            )
        ).all()
        by_pair = {(row.id, row.version): row for row in rows}
        rest = [pair for pair in wanted if pair not in by_pair]
        alive = (
            connection.execute(
                select(ChatFile.id, ChatFile.version).where(
                    tuple_(ChatFile.id, ChatFile.version).in_(rest), ChatFile.status.in_(ACTIVE)
                )
            ).all()
            if rest
            else []
        )
    busy = [(str(row.id), row.version) for row in alive]
    claims = []
    for file_id, version in wanted:  # in the message's order
        row = by_pair.get((file_id, version))
        if row is None:
            continue
        job = FileJob(
            file_id=str(file_id),
            chat_id=str(row.chat_id),
            owner_id=str(row.owner_id),
            file_name=row.name,
            path=context.storage.path(row.storage_key),
        )
        # chunks_total is set before anything is written: None means no run wrote yet.
        fresh = version == 1 and row.attempts == 0 and row.chunks_total is None
        claims.append(
            Claim(file_id, version, token, job, int(row.attempts), fresh, row.chunks_settled)
        )
    return claims, busy


def _abandon(context: WorkerContext, claimed: Claim) -> None:
    """This job's file was deleted or replaced: release the lease so the next version's job
    can start, and remove anything written for a file that no longer exists."""
    file_id, token = claimed.file_id, claimed.token
    with context.engine.begin() as connection:
        connection.execute(
            update(ChatFile)
            .where(ChatFile.id == file_id, ChatFile.lease_token == token)
            .values(lease_expires_at=None, lease_token=None)
        )
        exists = connection.execute(select(ChatFile.id).where(ChatFile.id == file_id)).first()
    if exists is None:
        remove_file(context.stores, chat_id=claimed.job.chat_id, file_id=str(file_id))


def run_jobs(context: WorkerContext, files: Sequence[tuple[str, int]]) -> None:
    """One queue message (an upload request's files): claim them together, parse and chunk
    each, record their chunk totals together, and hand their changes to the sink. Each file
    is finished (``indexed``) once its last chunk is stored (``finish_works``)."""
    claims, busy = claim_many(context, files)
    for file_id, version in busy:  # e.g. the previous version's job still runs
        context.retry(file_id, version, LEASE_BUSY_RETRY_S)
    prepared: list[tuple[Claim, ChangePlan]] = []
    failed: list[tuple[Claim, str]] = []
    for claimed in claims:
        try:
            plan = prepare_file(
                claimed.job,
                tokenizer=context.embedder.tokenize,
                stores=context.stores,
                limits=context.limits,
                chunk_size=context.settings.chunk_size,
                fresh=claimed.fresh,
                settled=claimed.settled,
            )
        except IngestError as exc:
            logger.info("ingest %s failed: %s", claimed.file_id, exc.reason)
            failed.append((claimed, exc.reason))
        except Exception as exc:
            _retry_or_fail(context, claimed, exc)
        else:
            prepared.append((claimed, plan))
    started: list[tuple[Claim, ChangePlan]] = []
    abandoned: list[Claim] = []
    with context.engine.begin() as connection:
        for claimed, reason in failed:
            connection.execute(
                _finish_statement(
                    claimed.file_id,
                    claimed.version,
                    claimed.token,
                    status=FileStatus.FAILED,
                    error=reason,
                )
            )
        for claimed, plan in prepared:
            result = connection.execute(
                _update_statement(
                    claimed.file_id,
                    claimed.version,
                    claimed.token,
                    context.settings.ingest_lease_seconds,
                    status=FileStatus.EMBEDDING,
                    chunks_done=len(plan.kept),
                    chunks_total=len(plan.nodes),
                    chunks_settled=False,  # until this job finishes
                )
            )
            if result.rowcount:
                started.append((claimed, plan))
            else:
                abandoned.append(claimed)
    for claimed in abandoned:
        _abandon(context, claimed)
    # Fewest new chunks first: the sink may start a batch between two submits, and a big
    # file's submit may wait for room; a small file of the same upload is then already in.
    for claimed, plan in sorted(started, key=lambda item: len(item[1].new)):
        context.sink.submit(_work(context, claimed, plan))


def _work(context: WorkerContext, claimed: Claim, plan: ChangePlan) -> FileWork:
    kept = len(plan.kept)

    def on_progress(stored: int) -> None:
        with context.engine.begin() as connection:
            result = connection.execute(
                _update_statement(
                    claimed.file_id,
                    claimed.version,
                    claimed.token,
                    context.settings.ingest_lease_seconds,
                    chunks_done=kept + stored,
                )
            )
        if result.rowcount == 0:
            raise JobObsolete()

    def on_error(exc: BaseException) -> None:
        if isinstance(exc, JobObsolete):
            _abandon(context, claimed)
        elif isinstance(exc, Exception):
            _retry_or_fail(context, claimed, exc)

    return FileWork(
        key=claimed.job.file_id,
        chat_id=claimed.job.chat_id,
        new=plan.new,
        moved=plan.moved,
        stale=plan.stale,
        on_progress=on_progress,
        on_error=on_error,
        payload=(claimed, plan),
    )


def finish_works(context: WorkerContext, works: Sequence[FileWork]) -> None:
    """Files whose changes are all stored: sweep (unless the job started from a settled
    file: no crashed run can have left rows), then mark them ``indexed`` and settled in one
    transaction; a file that was deleted or replaced meanwhile is abandoned."""
    done: list[tuple[FileWork, Claim, ChangePlan]] = []
    for work in works:
        claimed: Claim
        plan: ChangePlan
        claimed, plan = work.payload  # type: ignore[misc]
        if not (claimed.fresh or claimed.settled):
            try:
                sweep_keyword_leftovers(plan, stores=context.stores, file_id=claimed.job.file_id)
            except Exception as exc:
                work.on_error(exc)
                continue
        done.append((work, claimed, plan))
    model, dimension = context.embedder.model_name, context.embedder.dimension
    lost: list[Claim] = []
    with context.engine.begin() as connection:
        for _, claimed, plan in done:
            result = connection.execute(
                _finish_statement(
                    claimed.file_id,
                    claimed.version,
                    claimed.token,
                    status=FileStatus.INDEXED,
                    error=None,
                    attempts=0,
                    chunks_done=len(plan.nodes),
                    chunks_total=len(plan.nodes),
                    indexed_at=utcnow(),
                    embedding_model=model,
                    embedding_dimension=dimension,
                    chunks_settled=True,
                )
            )
            if result.rowcount == 0:
                lost.append(claimed)
    for claimed in lost:
        _abandon(context, claimed)
    for _, claimed, plan in done:
        logger.info(
            "ingest %s v%s: %d chunks (%d embedded, %d kept, %d removed)",
            claimed.file_id,
            claimed.version,
            len(plan.nodes),
            len(plan.new),
            len(plan.kept),
            len(plan.stale),
        )


def _retry_or_fail(context: WorkerContext, claimed: Claim, exc: Exception) -> None:
    """Transient failure: back off exponentially and try again, or give up and say why."""
    settings = context.settings
    attempt = claimed.attempts + 1
    reason = f"{type(exc).__name__}: {exc}"[:500]
    file_id, version, token = claimed.file_id, claimed.version, claimed.token
    if attempt >= settings.ingest_max_attempts:
        logger.error(
            "ingest %s v%s gave up after %d attempts: %s", file_id, version, attempt, reason
        )
        values: dict[str, object] = {
            "status": FileStatus.FAILED,
            "error": f"gave up after {attempt} attempts; last error: {reason}",
        }
    else:
        delay = settings.ingest_retry_base_seconds * 2 ** (attempt - 1)
        logger.warning(
            "ingest %s v%s attempt %d failed, retry in %.1fs: %s",
            file_id,
            version,
            attempt,
            delay,
            reason,
        )
        values = {
            "status": FileStatus.QUEUED,
            "error": f"attempt {attempt} failed ({reason}); retrying",
        }
    with context.engine.begin() as connection:
        written = connection.execute(
            _finish_statement(file_id, version, token, attempts=attempt, **values)
        ).rowcount
    if written and values["status"] is FileStatus.QUEUED:
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
            connection.execute(
                update(ChatFile).where(condition).values(lease_expires_at=None, lease_token=None)
            )
        rows = connection.execute(select(ChatFile.id, ChatFile.version).where(condition)).all()
    return [(str(row.id), int(row.version)) for row in rows]
