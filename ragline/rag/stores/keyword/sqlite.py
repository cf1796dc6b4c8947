"""Embedded keyword index: SQLite FTS5 under the data dir, one FTS5 table per chat, ranked
by FTS5's ``bm25()``.

One table per chat (like Chroma's one collection per chat) for two reasons: a query reads
only its chat's posting lists — with one shared table, FTS5 read every chat's postings of
the query terms and then intersected them with the scope, so a query's cost grew with the
whole store (measured at 100k chunks for a 12.8k-chunk chat: 7.6 ms per query, 4.8 ms with
its own table) — and ``bm25()`` takes term rarity from the searched chat's chunks, as the
PostgreSQL backend does, not from every user's.

Queries on a chat whose table has been quiet for ``arrays.ARRAYS_QUIET_S`` are answered from
in-memory arrays built from the table (:mod:`.arrays`: the same scores, ~0.4 ms instead of
~5 ms); ``chat_version`` tells every process whether its arrays are still current.

Text is stored already tokenized by :mod:`.tokenize` (so it ranks like the PostgreSQL
backend), and each row also carries *scope tokens* (hashes of its id, owner and file) in a
second indexed column, so the owner and file filters are part of the FTS5 query itself —
``scope : ("o…" AND ("f1" OR "f2")) AND body : ("t1" OR "t2")`` — and the chat is the
table. ``bm25()`` gives the scope column weight 0. ``chunk_text`` keeps each chunk's
original text and its chat (which table holds its row), written in the same transaction
as the FTS5 rows. Several processes on one machine share the file (WAL, ``BEGIN
IMMEDIATE`` for writes, a busy timeout); several machines cannot: use PostgreSQL there.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragline.rag.stores.base import (
    Hit,
    KeywordDoc,
    Scalar,
    StoredChunk,
    pack_metadata,
    pack_vector,
    unpack_metadata,
    unpack_vector,
)
from ragline.rag.stores.keyword.arrays import (
    ARRAYS_MAX_POSTINGS,
    ARRAYS_QUIET_S,
    ArraysCache,
)
from ragline.rag.stores.keyword.fts5 import (
    file_tokens,
    fts_expression,
    quote_tokens,
    scope_token,
)
from ragline.rag.stores.keyword.sqlite_schema import (
    CHAT_TABLE,
    SCHEMA,
    add_chunk_columns,
    fts_tables,
    move_legacy_table,
    table_name,
)
from ragline.rag.stores.keyword.tokenize import term_counts, terms

READER_MMAP_BYTES = 1 << 31
"""Up to 2 GiB of the index file mapped per reader (SQLite caps it at its compile-time limit)."""
_BATCH = 500
"""Ids per ``OR`` query when deleting many ids."""


def _json(values: Sequence[str]) -> str:
    return json.dumps(sorted(set(values)))


class SqliteKeywordIndex:
    """FTS5 keyword index in one SQLite file; thread-safe (one writer connection behind a
    lock, one reader connection per thread)."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = 30.0,
        arrays: bool = True,
        arrays_quiet_s: float = ARRAYS_QUIET_S,
        arrays_in_background: bool = True,
        arrays_max_postings: int = ARRAYS_MAX_POSTINGS,
    ) -> None:
        """``arrays``: answer queries from in-memory BM25 arrays of quiet chats (see
        :mod:`.arrays`), built in a background thread unless ``arrays_in_background`` is
        false (tests: then the first query after ``arrays_quiet_s`` builds them itself)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._timeout = busy_timeout_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._write() as db:
            for statement in SCHEMA:
                db.execute(statement)
            add_chunk_columns(db)
            move_legacy_table(db)
        # Reads use one connection per thread: WAL lets readers run in parallel with each
        # other and with the writer, so concurrent searches do not queue on one lock
        # (SQLite releases the GIL while it works).
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._arrays = (
            ArraysCache(
                state=lambda chat_id: self._version(self._reader(), chat_id),
                load=self._snapshot,
                quiet_s=arrays_quiet_s,
                in_background=arrays_in_background,
                max_postings=arrays_max_postings,
            )
            if arrays
            else None
        )

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "db", None)
        if reader is None:
            reader = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            reader.execute("PRAGMA query_only = ON")
            # Memory-mapped reads: a search reads ~50 chunks' rows (text, metadata, a 1.5 kB
            # vector each) at random; through read() calls that took 1.1-2.9 ms at 100k
            # chunks, mapped 0.5-0.6 ms (measured). Address space only, not memory.
            reader.execute(f"PRAGMA mmap_size = {READER_MMAP_BYTES}")
            self._local.db = reader
            with self._lock:
                self._readers.append(reader)
        return reader

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, docs: Sequence[KeywordDoc]) -> None:
        latest = {doc.id: doc for doc in docs}
        by_chat: dict[str, list[KeywordDoc]] = defaultdict(list)
        for doc in latest.values():
            by_chat[doc.chat_id].append(doc)
        with self._write() as db:
            _delete_ids(db, list(latest))  # replaced chunks, wherever they were
            for chat_id, chat_docs in by_chat.items():
                _bump(db, chat_id)
                table = table_name(chat_id)
                db.execute(CHAT_TABLE.format(table=table))
                db.executemany(
                    f"INSERT INTO {table} (body, scope, id) VALUES (?, ?, ?)",  # noqa: S608
                    [
                        (
                            " ".join(terms(doc.text)),
                            " ".join(
                                (
                                    scope_token("i", doc.id),
                                    scope_token("o", doc.owner_id),
                                    scope_token("f", doc.file_id),
                                )
                            ),
                            doc.id,
                        )
                        for doc in chat_docs
                    ],
                )
            db.executemany(
                "INSERT INTO chunk_text (id, chat_id, file_id, text, meta, vector)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        doc.id,
                        doc.chat_id,
                        doc.file_id,
                        doc.text,
                        pack_metadata(doc.metadata),
                        pack_vector(doc.vector),
                    )
                    for doc in latest.values()
                ],
            )

    def update_metadata(
        self, ids: Sequence[str], metadatas: Sequence[Mapping[str, Scalar]]
    ) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE chunk_text SET meta = ? WHERE id = ?",
                [(pack_metadata(m), i) for i, m in zip(ids, metadatas, strict=True)],
            )

    def delete_ids(self, ids: Sequence[str]) -> None:
        with self._write() as db:
            _delete_ids(db, ids)

    def delete_file(self, file_id: str) -> None:
        with self._write() as db:
            chats = db.execute(
                "SELECT DISTINCT chat_id FROM chunk_text WHERE file_id = ?", (file_id,)
            ).fetchall()
            for (chat_id,) in chats:
                _bump(db, chat_id)
                _delete_matching(db, table_name(chat_id), [scope_token("f", file_id)])
            db.execute("DELETE FROM chunk_text WHERE file_id = ?", (file_id,))

    def delete_chat(self, chat_id: str) -> None:
        """The chat's table, rows and version row: nothing of it is left (its arrays, held
        by any process, no longer match its version, now (0, 0), so are not used)."""
        with self._write() as db:
            db.execute("DELETE FROM chat_version WHERE chat_id = ?", (chat_id,))
            db.execute(f"DROP TABLE IF EXISTS {table_name(chat_id)}")
            db.execute("DELETE FROM chunk_text WHERE chat_id = ?", (chat_id,))

    def chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        rows = self._by_id("SELECT id, text, meta FROM chunk_text", ids)
        return {str(i): StoredChunk(str(text), unpack_metadata(meta)) for i, text, meta in rows}

    def vectors(self, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        rows = self._by_id("SELECT id, vector FROM chunk_text", ids, "vector IS NOT NULL")
        return {str(i): unpack_vector(blob) for i, blob in rows}

    def _by_id(self, select: str, ids: Sequence[str], *conditions: str) -> list[tuple[Any, ...]]:
        where = " AND ".join(("id IN (SELECT value FROM json_each(?))", *conditions))
        statement = f"{select} WHERE {where}"
        return self._reader().execute(statement, (_json(ids),)).fetchall()

    def count(self, *, file_id: str | None = None, chat_id: str | None = None) -> int:
        """FTS5 rows (not ``chunk_text`` rows), in every chat's table unless ``chat_id``."""
        with self._lock:
            tables = [table_name(chat_id)] if chat_id is not None else fts_tables(self._db)
            total = 0
            for table in tables:
                try:
                    if file_id is None:
                        row = self._db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                    else:
                        row = self._db.execute(
                            f"SELECT count(*) FROM {table} WHERE {table} MATCH ?",  # noqa: S608
                            (f"scope : {quote_tokens([scope_token('f', file_id)])[0]}",),
                        ).fetchone()
                except sqlite3.OperationalError as exc:
                    if not _no_table(exc):
                        raise
                    continue
                total += int(row[0])
        return total

    def file_chunks(self, *, file_id: str) -> dict[str, dict[str, Any] | None]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, meta FROM chunk_text WHERE file_id = ?", (file_id,)
            ).fetchall()
        return {str(i): unpack_metadata(meta) for i, meta in rows}

    def search(
        self,
        query: str,
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
        k: int = 10,
    ) -> list[Hit]:
        counts = term_counts(query)
        if not counts or (file_ids is not None and not file_ids):
            return []
        arrays = self._arrays.current(chat_id) if self._arrays is not None else None
        if arrays is not None:
            return arrays.search(counts, scope_token("o", owner_id), file_tokens(file_ids), k)
        expression = fts_expression(counts, owner_id, file_ids)
        table = table_name(chat_id)
        rows = self._read(
            f"SELECT id, bm25({table}, 1.0, 0.0) AS score FROM {table}"  # noqa: S608
            f" WHERE {table} MATCH ? ORDER BY score LIMIT ?",
            (expression, k),
        )
        # FTS5's bm25() is negated so that ascending order is best first.
        return [Hit(id=doc_id, score=-score) for doc_id, score in rows]

    def scores(
        self,
        query: str,
        ids: Sequence[str],
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
    ) -> dict[str, float]:
        # The ids are one more scope condition (their id tokens); bm25() takes its
        # statistics from the chat's whole table whatever the other conditions, so the
        # scores equal those of search().
        counts = term_counts(query)
        if not counts or (file_ids is not None and not file_ids) or not ids:
            return {}
        arrays = self._arrays.current(chat_id) if self._arrays is not None else None
        if arrays is not None:
            return arrays.scores(counts, ids, scope_token("o", owner_id), file_tokens(file_ids))
        expression = fts_expression(counts, owner_id, file_ids, ids=ids)
        table = table_name(chat_id)
        rows = self._read(
            f"SELECT id, bm25({table}, 1.0, 0.0) FROM {table} WHERE {table} MATCH ?",  # noqa: S608
            (expression,),
        )
        return {str(doc_id): -float(score) for doc_id, score in rows}

    def _read(self, statement: str, params: tuple[object, ...]) -> list[tuple[str, float]]:
        """Rows of a query on a chat's table; none when the chat has no table yet."""
        try:
            return self._reader().execute(statement, params).fetchall()
        except sqlite3.OperationalError as exc:
            if _no_table(exc):
                return []
            raise

    def arrays_version(self, chat_id: str) -> int | None:
        """The version of the chat's in-memory arrays, if it has any (diagnostics)."""
        return self._arrays.version_of(chat_id) if self._arrays is not None else None

    def version(self, chat_id: str) -> int:
        """The chat's current version: how many writes its table has had."""
        return self._version(self._reader(), chat_id)[0]

    def _version(self, db: sqlite3.Connection, chat_id: str) -> tuple[int, float]:
        """(version, unix time of the last write) of the chat; (0, 0) before any write."""
        row = db.execute(
            "SELECT version, changed_at FROM chat_version WHERE chat_id = ?", (chat_id,)
        ).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    def _snapshot(self, chat_id: str) -> tuple[int, list[tuple[str, str, str]]]:
        """The chat's version and its table's (id, body, scope) rows in rowid order, read
        in one transaction so that they agree."""
        db = self._reader()
        db.execute("BEGIN")
        try:
            version, _ = self._version(db, chat_id)
            table = table_name(chat_id)
            try:
                rows = db.execute(
                    f"SELECT id, body, scope FROM {table} ORDER BY rowid"  # noqa: S608
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if not _no_table(exc):
                    raise
                rows = []  # no table yet: nothing to find
            return version, rows
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        if self._arrays is not None:
            self._arrays.close()
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._db.close()


def _bump(db: sqlite3.Connection, chat_id: str) -> None:
    db.execute(
        "INSERT INTO chat_version (chat_id, version, changed_at) VALUES (?, 1, ?)"
        " ON CONFLICT (chat_id) DO UPDATE SET version = version + 1,"
        " changed_at = excluded.changed_at",
        (chat_id, time.time()),
    )


def _no_table(exc: sqlite3.OperationalError) -> bool:
    return str(exc).startswith("no such table")


def _delete_matching(db: sqlite3.Connection, table: str, scope_tokens: Sequence[str]) -> None:
    for start in range(0, len(scope_tokens), _BATCH):
        expression = " OR ".join(quote_tokens(scope_tokens[start : start + _BATCH]))
        db.execute(
            f"DELETE FROM {table} WHERE rowid IN"  # noqa: S608
            f" (SELECT rowid FROM {table} WHERE {table} MATCH ?)",
            (f"scope : ({expression})",),
        )


def _delete_ids(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Delete these chunks' FTS5 rows (found by their chat in ``chunk_text``) and text."""
    rows = db.execute(
        "SELECT chat_id, id FROM chunk_text WHERE id IN (SELECT value FROM json_each(?))",
        (_json(ids),),
    ).fetchall()
    by_chat: dict[str, list[str]] = defaultdict(list)
    for chat_id, doc_id in rows:
        by_chat[chat_id].append(scope_token("i", doc_id))
    for chat_id, tokens in by_chat.items():
        _bump(db, chat_id)
        _delete_matching(db, table_name(chat_id), tokens)
    db.executemany("DELETE FROM chunk_text WHERE id = ?", [(doc_id,) for _, doc_id in rows])
