"""Schemathesis over the whole OpenAPI document, on SQLite and PostgreSQL, as the
development identity, with the chat model answered by a loopback OpenAI-compatible server.

``RAGLINE_FUZZ_CASES`` (default 2,000 per database) and ``RAGLINE_FUZZ_SEED`` (default
fixed; ``random`` for a new run each time) size and seed the run; ``make fuzz`` runs long.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.python import asgi

from ragline.config import Settings
from ragline.db.migrate import upgrade
from ragline.main import create_app
from tests.conftest import REDIS_HOST, REDIS_PORT, ThrowawayPostgres
from tests.fake_providers import openai_chat_server
from tests.fuzz import runner
from tests.fuzz.conftest import REPORTS
from tests.fuzz.links import run_links
from tests.fuzz.world import World, seed
from tests.openai_api.helpers import via

CASES = int(os.environ.get("RAGLINE_FUZZ_CASES", "2000"))
SEED = os.environ.get("RAGLINE_FUZZ_SEED", "20261208")
LINKED_SHARE = 4
"""A quarter of the cases come from scenarios along the document's links (tests.fuzz.links),
the rest from single calls aimed at the seeded objects (tests.fuzz.runner)."""


class FromLoopback:
    """The app as reached from 127.0.0.1 (the development identity serves loopback only;
    Schemathesis's in-process client calls itself ``testclient``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": ("127.0.0.1", 50000)}
        await self.app(scope, receive, send)


@pytest.fixture(params=["sqlite", "postgres"])
def fuzz_database(
    request: pytest.FixtureRequest, throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> str:
    """A database of the fuzz run's own (its rows stay out of the other tests' way)."""
    if request.param == "postgres":
        url = throwaway_postgres.create("fuzz")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    upgrade(url)
    return url


@pytest.fixture
def fuzz_app(fuzz_database: str, tmp_path: Path) -> Iterator[tuple[Any, World]]:
    """The app (its real lifespan, embedded Chroma and ingestion workers, the local
    embedding model) with seeded objects."""
    with openai_chat_server() as model:
        settings = Settings(
            _env_file=None,
            database_url=fuzz_database,
            redis_host=REDIS_HOST,
            redis_port=REDIS_PORT,
            ragline_data_dir=tmp_path / "data",
            frontend_url="http://localhost:5173",
            chroma_collection_name=f"fuzz-{uuid.uuid4().hex[:12]}",
        )
        # No rate limits: their counters live in the Redis every test run shares.
        app = FromLoopback(create_app(via(settings, model, rate_limit_upload="")))
        try:
            with asgi.get_client(app) as client:
                yield app, seed(client)
        finally:
            asgi.shutdown_lifespans()


def test_every_operation_answers_as_documented(
    fuzz_app: tuple[Any, World], fuzz_database: str
) -> None:
    app, world = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seed_value = random.randrange(2**32) if SEED == "random" else int(SEED)
    report = runner.Report()
    started = time.monotonic()
    with asgi.get_client(app) as session:
        linked = CASES // LINKED_SHARE
        run_links(schema, session, cases=linked, seed_value=seed_value, report=report)
        runner.run(
            schema, world, session, cases=CASES - linked, seed_value=seed_value, report=report
        )
    report.seconds = time.monotonic() - started
    backend = fuzz_database.split(":", 1)[0]
    REPORTS.append(report.lines(f"{backend} (seed {seed_value})"))
    assert report.cases >= CASES
    assert not report.findings, "\n".join(report.lines("findings"))
