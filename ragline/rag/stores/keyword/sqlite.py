"""Embedded keyword index: one SQLite FTS5 table under the data dir, ranked by FTS5's
``bm25()``.

Text is stored already tokenized by :mod:`.tokenize` (so it ranks like the PostgreSQL
backend), and each row also carries *scope tokens* (hashes of its id, owner, chat and file)
in a second indexed column. Filters are then part of the FTS5 query itself —
``scope : ("o…" AND "c…") AND body : ("t1" OR "t2")`` — so FTS5 intersects the posting
lists instead of ranking every match and filtering afterwards; ``bm25()`` gives the scope
column weight 0. Several processes on one machine share the file (WAL, ``BEGIN IMMEDIATE``
for writes, a busy timeout); several machines cannot: use PostgreSQL there.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ragline.rag.stores.base import Hit, KeywordDoc
from ragline.rag.stores.keyword.tokenize import term_counts, terms

_SCHEMA = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS keyword_fts USING fts5(
        body, scope, id UNINDEXED, tokenize = 'unicode61 remove_diacritics 0'
    )""",
    # The chunks' original text (FTS5 holds it tokenized), for citations and prompts.
    """CREATE TABLE IF NOT EXISTS chunk_text (
        id TEXT PRIMARY KEY, chat_id TEXT NOT NULL, file_id TEXT NOT NULL, text TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS chunk_text_file ON chunk_text (file_id)",
    "CREATE INDEX IF NOT EXISTS chunk_text_chat ON chunk_text (chat_id)",
)
_BATCH = 500
"""Ids per ``OR`` query when deleting many ids."""


def _token(kind: str, value: str) -> str:
    """A single FTS5 token standing for an id, owner, chat or file (128-bit hash)."""
    return kind + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()


def _quoted(tokens: Sequence[str]) -> list[str]:
    return ['"' + token.replace('"', '""') + '"' for token in tokens]


class SqliteKeywordIndex:
    """FTS5 keyword index in one SQLite file; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
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
            for statement in _SCHEMA:
                db.execute(statement)
        # Reads use one connection per thread: WAL lets readers run in parallel with each
        # other and with the writer, so concurrent searches do not queue on one lock
        # (SQLite releases the GIL while it works).
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "db", None)
        if reader is None:
            reader = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            reader.execute("PRAGMA query_only = ON")
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

    def _delete_matching(self, db: sqlite3.Connection, scope_tokens: Sequence[str]) -> None:
        for start in range(0, len(scope_tokens), _BATCH):
            expression = " OR ".join(_quoted(scope_tokens[start : start + _BATCH]))
            db.execute(
                "DELETE FROM keyword_fts WHERE rowid IN"
                " (SELECT rowid FROM keyword_fts WHERE keyword_fts MATCH ?)",
                (f"scope : ({expression})",),
            )

    def add(self, docs: Sequence[KeywordDoc]) -> None:
        latest = {doc.id: doc for doc in docs}
        rows = [
            (
                " ".join(terms(doc.text)),
                " ".join(
                    (
                        _token("i", doc.id),
                        _token("o", doc.owner_id),
                        _token("c", doc.chat_id),
                        _token("f", doc.file_id),
                    )
                ),
                doc.id,
            )
            for doc in latest.values()
        ]
        with self._write() as db:
            self._delete_matching(db, [_token("i", doc_id) for doc_id in latest])
            db.executemany("INSERT INTO keyword_fts (body, scope, id) VALUES (?, ?, ?)", rows)
            db.executemany(
                "INSERT OR REPLACE INTO chunk_text (id, chat_id, file_id, text)"
                " VALUES (?, ?, ?, ?)",
                [(doc.id, doc.chat_id, doc.file_id, doc.text) for doc in latest.values()],
            )

    def delete_ids(self, ids: Sequence[str]) -> None:
        unique = sorted(set(ids))
        with self._write() as db:
            self._delete_matching(db, [_token("i", doc_id) for doc_id in unique])
            db.executemany("DELETE FROM chunk_text WHERE id = ?", [(i,) for i in unique])

    def delete_file(self, file_id: str) -> None:
        with self._write() as db:
            self._delete_matching(db, [_token("f", file_id)])
            db.execute("DELETE FROM chunk_text WHERE file_id = ?", (file_id,))

    def delete_chat(self, chat_id: str) -> None:
        with self._write() as db:
            self._delete_matching(db, [_token("c", chat_id)])
            db.execute("DELETE FROM chunk_text WHERE chat_id = ?", (chat_id,))

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        rows = (
            self._reader()
            .execute(
                "SELECT id, text FROM chunk_text WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(set(ids))),),
            )
            .fetchall()
        )
        return {str(doc_id): str(text) for doc_id, text in rows}

    def count(self, *, file_id: str | None = None, chat_id: str | None = None) -> int:
        scope = [_token("f", file_id)] if file_id is not None else []
        scope += [_token("c", chat_id)] if chat_id is not None else []
        with self._lock:
            if not scope:
                row = self._db.execute("SELECT count(*) FROM keyword_fts").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM keyword_fts WHERE keyword_fts MATCH ?",
                    (f"scope : ({' AND '.join(_quoted(scope))})",),
                ).fetchone()
        return int(row[0])

    def ids(self, *, file_id: str) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM keyword_fts WHERE keyword_fts MATCH ?",
                (f"scope : {_quoted([_token('f', file_id)])[0]}",),
            ).fetchall()
        return {str(row[0]) for row in rows}

    def search(
        self,
        query: str,
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
        k: int = 10,
    ) -> list[Hit]:
        expression = _expression(query, owner_id, chat_id, file_ids)
        if expression is None:
            return []
        rows = (
            self._reader()
            .execute(
                "SELECT id, bm25(keyword_fts, 1.0, 0.0) AS score FROM keyword_fts"
                " WHERE keyword_fts MATCH ? ORDER BY score LIMIT ?",
                (expression, k),
            )
            .fetchall()
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
        # statistics from the whole table whatever the other conditions, so the scores
        # equal those of search().
        expression = _expression(query, owner_id, chat_id, file_ids, ids=ids)
        if expression is None or not ids:
            return {}
        rows = (
            self._reader()
            .execute(
                "SELECT id, bm25(keyword_fts, 1.0, 0.0) FROM keyword_fts WHERE keyword_fts MATCH ?",
                (expression,),
            )
            .fetchall()
        )
        return {str(doc_id): -float(score) for doc_id, score in rows}

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._db.close()


def _any_of(tokens: Sequence[str]) -> str:
    return "(" + " OR ".join(_quoted(tokens)) + ")"


def _expression(
    query: str,
    owner_id: str,
    chat_id: str,
    file_ids: Sequence[str] | None,
    *,
    ids: Sequence[str] | None = None,
) -> str | None:
    """The FTS5 query: scope tokens AND any query term; None when nothing can match."""
    counts = term_counts(query)
    if not counts or (file_ids is not None and not file_ids):
        return None
    scope = " AND ".join(_quoted([_token("o", owner_id), _token("c", chat_id)]))
    if file_ids is not None:
        scope += " AND " + _any_of([_token("f", f) for f in file_ids])
    if ids is not None:
        scope += " AND " + _any_of([_token("i", i) for i in ids])
    # A term repeated in the query is repeated in the expression, so bm25() counts it
    # once per occurrence, as BM25's query term frequency does.
    body = " OR ".join(_quoted([term for term, n in counts.items() for _ in range(n)]))
    return f"scope : ({scope}) AND body : ({body})"
