"""A failed job's next step (retry with backoff, wait out an outage, or give up) and the
files to re-queue after a crash (see :mod:`ragline.documents.jobs`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Engine, or_, select, update

from ragline.documents.leases import finish_statement
from ragline.kit.outages import unavailable_dependency
from ragline.models import ChatFile, FileStatus
from ragline.models.base import utcnow

if TYPE_CHECKING:
    from ragline.documents.jobs import Claim, WorkerContext

logger = logging.getLogger(__name__)
ACTIVE = (FileStatus.QUEUED, FileStatus.PARSING, FileStatus.EMBEDDING)
OUTAGE_RETRY_S = 5.0


def retry_or_fail(context: WorkerContext, claimed: Claim, exc: Exception) -> None:
    """Transient failure: back off exponentially and try again, or give up and say why.

    A dependency that is down (database, Redis, Chroma server, embedding provider: see
    :mod:`ragline.kit.outages`) spends no attempt: the file stays ``queued``, its ``error``
    says what it waits for, and it is tried again every ``OUTAGE_RETRY_S`` until the
    dependency is back, however long the outage. Never raises: when the database cannot
    take this write either, the lease expires and the reaper re-queues the file."""
    settings = context.settings
    attempt = claimed.attempts + 1
    reason = f"{type(exc).__name__}: {exc}"[:500]
    file_id, version, token = claimed.file_id, claimed.version, claimed.token
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        attempt, delay = claimed.attempts, OUTAGE_RETRY_S
        logger.warning(
            "ingest %s v%s waits for the %s (unavailable), retry in %.0fs: %s",
            *(file_id, version, dependency, delay, reason),
        )
        values: dict[str, object] = {
            "status": FileStatus.QUEUED,
            "error": f"waiting for the {dependency} to come back ({reason}); retrying",
        }
    elif attempt >= settings.ingest_max_attempts:
        logger.error(
            "ingest %s v%s gave up after %d attempts: %s", file_id, version, attempt, reason
        )
        values = {
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
    try:
        with context.engine.begin() as connection:
            written = connection.execute(
                finish_statement(file_id, version, token, attempts=attempt, **values)
            ).rowcount
        if written and values["status"] is FileStatus.QUEUED:
            context.retry(str(file_id), version, delay)
    except Exception:  # the database or the queue is down too: the reaper takes over
        logger.exception("ingest %s v%s: failure not recorded; re-queued later", file_id, version)


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
