"""Fixtures for real services: a throwaway PostgreSQL database per run, a SQLite file,
real Redis. The API runs in-process over ASGI with its real lifespan.

PostgreSQL, Redis and MariaDB on this machine are shared with other runs: each run
creates its own database (dropped at the end) and its own Redis key prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ragline.config import Settings
from ragline.db.engine import build_engine
from ragline.db.migrate import upgrade
from ragline.models import Base

PG_ADMIN_DSN = os.environ.get(
    "RAGLINE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_HOST = os.environ.get("RAGLINE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("RAGLINE_TEST_REDIS_PORT", "6379"))
BACKENDS = ["sqlite", "postgres"]
# The suite starts hundreds of apps: a background model load in each would compete with the
# tests (and push app start-up past its timeout). warm_up itself is tested directly.
os.environ.setdefault("INGEST_WARM_UP", "false")
os.environ.setdefault("LLM_WARM_UP", "false")


def _admin_execute(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


class ThrowawayPostgres:
    """Creates uniquely named databases on the shared server and drops them all at exit."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")

    def create(self, label: str) -> str:
        name = f"ragline_test_{label}_{uuid.uuid4().hex[:12]}"
        _admin_execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return f"{self.base}/{name}"

    def drop_all(self) -> None:
        for name in self.names:
            _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    databases = ThrowawayPostgres()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    throwaway_postgres: ThrowawayPostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """A migrated database: the embedded SQLite default and real PostgreSQL."""
    if request.param == "postgres":
        url = throwaway_postgres.create("api")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'ragline.db'}"
    upgrade(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_host=REDIS_HOST,
        redis_port=REDIS_PORT,
        ragline_data_dir=tmp_path / "data",
        frontend_url="http://localhost:5173",
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A separate engine for tests to read and seed the database; tables emptied after."""
    engine = build_engine(settings.sqlalchemy_url, pool_size=2)
    yield engine
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())
    await engine.dispose()


@pytest.fixture
async def client(settings: Settings, db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    from tests.helpers import running_app

    async with running_app(settings) as (client, _):
        yield client


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(
                await connection.scalar(select(func.count()).select_from(table)) or 0
            )
    return counts


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Every row of every table: equal snapshots mean nothing changed."""
    state: dict[str, Any] = {}
    async with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            state[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return state


@pytest.fixture(scope="session")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real Chroma server (`chroma run`) for the whole session."""
    from tests.services import chroma_server

    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as (host, port, _):
        yield host, port


@pytest.fixture(params=["embedded-chroma", "chroma-server"])
def doc_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings for file tests: embedded Chroma, or the real Chroma server."""
    update: dict[str, Any] = {
        "chroma_collection_name": f"test-{uuid.uuid4().hex[:12]}",
        "ingest_retry_base_seconds": 0.05,
    }
    if request.param == "chroma-server":
        host, port = request.getfixturevalue("chroma")
        update |= {"chroma_host": host, "chroma_port": port}
    return settings.model_copy(update=update)


@pytest.fixture
async def app_client(
    doc_settings: Settings, db: AsyncEngine
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The API with its real lifespan (ingestion worker threads included) and its state."""
    from tests.helpers import running_app

    async with running_app(doc_settings) as client_and_state:
        yield client_and_state


@pytest.fixture(scope="session")
def llm_server() -> Iterator[str]:
    """llama.cpp's real OpenAI-compatible server with the shipped SmolLM2, started by
    the first test that asks for it; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    from tests.services import llama_server

    with llama_server() as (url, _):
        yield url
