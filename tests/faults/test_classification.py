"""Which errors mean "a dependency is down" (503, no attempt spent), raised by the real
clients against a loopback port where nothing listens, and which do not."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ragline.kit.outages import unavailable_dependency
from ragline.rag.embeddings.base import EmbeddingError
from tests.services import free_port


def _raised(call: Callable[[], object]) -> Exception:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("it did not fail")


def test_refused_connections_are_outages() -> None:
    port = free_port()
    database = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
    cases = {
        "database": _raised(lambda: database.connect()),
        "redis": _raised(lambda: redis.Redis(port=port, socket_connect_timeout=1).ping()),
        "service": _raised(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=1)),
    }
    for expected, error in cases.items():
        assert unavailable_dependency(error) == expected, repr(error)
    assert isinstance(cases["database"], DBAPIError)
    assert unavailable_dependency(_raised(lambda: psycopg.connect(port=port))) == "database"


def test_a_wrapped_connection_error_is_still_an_outage() -> None:
    def embed() -> None:
        try:
            httpx.post(f"http://127.0.0.1:{free_port()}/v1/embeddings", timeout=1)
        except httpx.TransportError as exc:
            raise EmbeddingError(f"embedding server unreachable: {exc}") from exc

    assert unavailable_dependency(_raised(embed)) == "service"


def test_errors_of_the_request_or_the_data_are_not(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))

    def duplicate() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    def missing_table() -> None:
        with engine.begin() as connection:
            connection.execute(text("SELECT * FROM nowhere"))

    assert isinstance(_raised(duplicate), IntegrityError)
    for error in (
        _raised(duplicate),
        _raised(missing_table),  # SQLite's OperationalError: not an outage
        _raised(lambda: sqlite3.connect(":memory:").execute("nonsense")),
        EmbeddingError("the embedding server answered 400: bad input"),
        ValueError("bad"),
    ):
        assert unavailable_dependency(error) is None, repr(error)
