"""The persistent BM25 keyword index beside the vector store, in two backends.

* Embedded default (no service): :class:`SqliteKeywordIndex`, SQLite FTS5 in one file
  under the data dir. Several worker processes on the machine share it (WAL).
* Production: :class:`PostgresKeywordIndex`, BM25 computed in SQL in the primary
  PostgreSQL, so workers on several machines share it under ordinary transactions.

Chroma's own BM25 (sparse vector index + ``Search``) would keep one store instead of two,
but Chroma 1.5 refuses sparse indexes outside Chroma Cloud ("Sparse vector indexing is not
enabled in local"), both embedded and from ``chroma run``; ``benchmarks/keyword.py``
re-checks this. Both backends share :mod:`.tokenize`, so they rank alike.
"""

from __future__ import annotations

from pathlib import Path

from psycopg_pool import ConnectionPool

from ragline.rag.stores.base import KeywordIndex
from ragline.rag.stores.keyword.postgres import PostgresKeywordIndex
from ragline.rag.stores.keyword.sqlite import SqliteKeywordIndex

__all__ = ["PostgresKeywordIndex", "SqliteKeywordIndex", "build_keyword_index"]

SQLITE_FILE = "keyword.sqlite3"


def build_keyword_index(
    *,
    database_url: str | None = None,
    data_dir: Path | None = None,
    pool_size: int = 4,
    table: str = "keyword",
) -> KeywordIndex:
    """PostgreSQL when ``database_url`` is a ``postgresql://`` URL (a SQLAlchemy
    ``postgresql+psycopg://`` one is accepted), else SQLite FTS5 in ``data_dir``."""
    if database_url is not None and database_url.startswith("postgresql"):
        conninfo = "postgresql://" + database_url.split("://", 1)[1]
        pool: ConnectionPool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            # Checked when taken (as SQLAlchemy's pool_pre_ping): a connection the server
            # ended (restart, failover, pg_terminate_backend) is replaced, not handed out.
            check=ConnectionPool.check_connection,
            open=True,
        )
        return PostgresKeywordIndex(pool, table=table)
    if data_dir is None:
        raise ValueError("build_keyword_index needs a PostgreSQL database_url or a data_dir")
    return SqliteKeywordIndex(data_dir / SQLITE_FILE)
