"""Alembic upgrade head -> downgrade base -> upgrade head, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from ragline.db.migrate import downgrade, upgrade
from ragline.models import Base
from tests.conftest import ThrowawayPostgres

TABLES = {table.name for table in Base.metadata.sorted_tables}


def _tables(sync_url: str) -> set[str]:
    engine = create_engine(sync_url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_upgrade_downgrade_upgrade(
    backend: str, throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    if backend == "postgres":
        url = throwaway_postgres.create("migrations")
        sync_url = url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        sync_url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    assert _tables(sync_url) == TABLES
    downgrade(url, "base")
    assert _tables(sync_url) == set()
    upgrade(url)
    assert _tables(sync_url) == TABLES


def test_models_match_migrations(throwaway_postgres: ThrowawayPostgres) -> None:
    """The ORM and the migrations describe the same schema (autogenerate finds nothing)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url = throwaway_postgres.create("drift")
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
