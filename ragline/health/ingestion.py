"""Ingestion that does not move, reported but never failing readiness: files accepted and
still waiting, untouched for over ``STALLED_AFTER``, mean that no worker is running (all
`ragline worker` processes stopped) or that their queue messages were lost (Redis
restarted; the reaper re-sends them every minute). A file that waits for a dependency is
touched at each of its retries (every 5 s), so an outage of Chroma or of a provider does
not show here but in its own check."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from ragline.documents.retries import ACTIVE
from ragline.health.checks import Check, CheckFailed
from ragline.lifespan import AppState
from ragline.models import ChatFile
from ragline.models.base import utcnow

STALLED_AFTER = timedelta(minutes=1)
COUNT_UP_TO = 100  # the probe stays cheap on a large backlog


def ingestion_check(state: AppState) -> Check:
    engine = state.engine

    async def moving() -> None:
        stalled = (
            select(ChatFile.id)
            .where(ChatFile.status.in_(ACTIVE), ChatFile.updated_at < utcnow() - STALLED_AFTER)
            .limit(COUNT_UP_TO)
            .subquery()
        )
        try:
            async with engine.connect() as connection:
                count = await connection.scalar(select(func.count()).select_from(stalled))
        except Exception:  # the database is down: its own check says so
            return
        waiting = int(count or 0)
        if waiting:
            more = "+" if waiting >= COUNT_UP_TO else ""
            raise CheckFailed(
                f"{waiting}{more} file(s) waiting, untouched for over a minute: "
                "is an ingestion worker running?"
            )

    worker = "embedded" if state.settings.embedded_worker else "separate"
    return Check(moving, required=False, details={"worker": worker})
