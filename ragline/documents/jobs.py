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
are retried with exponential backoff until ``ingest_max_attempts``, and a dependency that is
down (database, Redis, Chroma server, provider) is waited out without spending an attempt
(:mod:`ragline.documents.retries`; the lease statements: :mod:`ragline.documents.leases`).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from llama_index.core.schema import Document
from sqlalchemy import Engine, or_, select, tuple_, update

from ragline.config import Settings
from ragline.documents.leases import finish_statement, update_statement
from ragline.documents.retries import ACTIVE, retry_or_fail
from ragline.documents.storage import FileStorage
from ragline.models import Chat, ChatFile, FileStatus
from ragline.models.base import utcnow
from ragline.rag.embeddings.base import Embedder
from ragline.rag.ingest.errors import IngestError
from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.parse.budget import ParseCancelled, ParsePool
from ragline.rag.ingest.pipeline import (
    ChangePlan,
    FileJob,
    FileParser,
    prepare_file,
    sweep_keyword_leftovers,
)
from ragline.rag.ingest.sink import FileWork, IngestSink, WorkObsolete
from ragline.rag.ingest.sniff import DetectedType
from ragline.rag.ingest.store import Stores, remove_chat, remove_file

logger = logging.getLogger(__name__)
LEASE_BUSY_RETRY_S = 5.0


class JobObsolete(WorkObsolete):
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
    parser: ParsePool  # parses each file in a parse process, under a CPU and memory budget


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
    can start, and remove anything written for a file that no longer exists — and, when its
    assistant is gone too, the assistant's collection and keyword table that a write of
    this job may have created again after the purge dropped them."""
    file_id, token = claimed.file_id, claimed.token
    with context.engine.begin() as connection:
        connection.execute(
            update(ChatFile)
            .where(ChatFile.id == file_id, ChatFile.lease_token == token)
            .values(lease_expires_at=None, lease_token=None)
        )
        exists = connection.execute(select(ChatFile.id).where(ChatFile.id == file_id)).first()
        chat = connection.execute(
            select(Chat.id).where(Chat.id == uuid.UUID(claimed.job.chat_id))
        ).first()
    if exists is None:
        remove_file(context.stores, chat_id=claimed.job.chat_id, file_id=str(file_id))
    if chat is None:
        remove_chat(context.stores, chat_id=claimed.job.chat_id)


def obsolete_works(context: WorkerContext, works: Sequence[FileWork]) -> list[FileWork]:
    """The works whose job no longer holds its file at its version (deleted, replaced,
    taken over): the sink's check before and after each write (one query)."""
    claims: list[Claim] = [work.payload[0] for work in works]  # type: ignore[index]
    query = select(ChatFile.id, ChatFile.version, ChatFile.lease_token)
    with context.engine.begin() as connection:
        rows = connection.execute(query.where(ChatFile.id.in_({c.file_id for c in claims})))
        current = set(rows.tuples())
    mine = [(c.file_id, c.version, c.token) for c in claims]
    return [work for work, held in zip(works, mine, strict=True) if held not in current]


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
                parser=_budgeted_parser(context, claimed),
            )
        except ParseCancelled:  # deleted or replaced while it was parsed
            _abandon(context, claimed)
        except IngestError as exc:
            logger.info("ingest %s failed: %s", claimed.file_id, exc.reason)
            failed.append((claimed, exc.reason))
        except Exception as exc:
            retry_or_fail(context, claimed, exc)
        else:
            prepared.append((claimed, plan))
    started: list[tuple[Claim, ChangePlan]] = []
    abandoned: list[Claim] = []
    with context.engine.begin() as connection:
        for claimed, reason in failed:
            connection.execute(
                finish_statement(
                    claimed.file_id,
                    claimed.version,
                    claimed.token,
                    status=FileStatus.FAILED,
                    error=reason,
                )
            )
        for claimed, plan in prepared:
            result = connection.execute(
                update_statement(
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


def _budgeted_parser(context: WorkerContext, claimed: Claim) -> FileParser:
    """Parse in the pool; while a parse runs (checked every ``budget.CHECK_S``), extend
    the lease, and once that fails (the file was deleted, replaced or taken over) kill the
    parse. A small file is parsed before the first check: no query."""

    def go_on() -> bool:
        with context.engine.begin() as connection:
            return bool(
                connection.execute(
                    update_statement(
                        claimed.file_id,
                        claimed.version,
                        claimed.token,
                        context.settings.ingest_lease_seconds,
                    )
                ).rowcount
            )

    def parse(path: Path, detected: DetectedType, *, limits: IngestLimits) -> list[Document]:
        return context.parser.parse(path, detected, limits=limits, go_on=go_on)

    return parse


def _work(context: WorkerContext, claimed: Claim, plan: ChangePlan) -> FileWork:
    kept = len(plan.kept)

    def on_progress(stored: int) -> None:
        with context.engine.begin() as connection:
            result = connection.execute(
                update_statement(
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
        """Runs on the sink's threads: must not raise (see ``_retry_or_fail``)."""
        if isinstance(exc, WorkObsolete):
            try:
                _abandon(context, claimed)
            except Exception:  # the database is down: the lease expires, the reaper sees
                logger.exception("ingest %s: could not release its lease", claimed.file_id)
        elif isinstance(exc, Exception):
            retry_or_fail(context, claimed, exc)

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
                finish_statement(
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
