"""Production keyword index: an inverted index in two PostgreSQL tables, BM25 in SQL.

PostgreSQL's own ranking (``ts_rank``) ignores how rare a term is, so the index keeps one
posting row per (chunk, term) and the query computes Okapi BM25 itself. Postings are keyed
by *scope* (a 64-bit hash of owner and chat) then term, so a query reads, from one covering
index, exactly the postings of its terms in its chat: the owner and chat filter is the
index key itself. The statistics (chunk count, mean length, each term's document frequency)
are those of the searched scope and are computed in the same query — scoring reads every
one of those postings anyway, so a document frequency costs one ``count`` more — and no
shared counter rows exist for concurrent writers to fight over or to drift. Writers touch
only their own chunks' rows under ordinary transactions: any number of processes on any
number of machines. The final join to the chunk rows re-checks owner and chat exactly.

Deleting a file removes its chunk rows and records their numbers as *dead* in one quick
transaction; queries skip dead postings (an anti-join against that small table), and each
``add`` purges a bounded batch of them. Deleting ~90 postings per chunk at once made a
3,000-chunk file take about a second at 100k chunks. Deleting a whole file or chat (the
purge job, in the background) then deletes the dead postings in such batches until none is
left, so nothing of a deleted file or assistant stays; stale chunks of a re-ingest
(``delete_ids``) are left to later adds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from psycopg import Connection, sql
from psycopg_pool import ConnectionPool

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
from ragline.rag.stores.keyword.tokenize import term_counts

K1 = 1.2
B = 0.75
_SCHEMA_LOCK = 0x6B77_6964  # advisory lock: concurrent first starts create tables once

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {chunks} (
    doc bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    owner_id text NOT NULL,
    chat_id text NOT NULL,
    file_id text NOT NULL,
    length integer NOT NULL,
    text text NOT NULL DEFAULT ''
);
ALTER TABLE {chunks} ADD COLUMN IF NOT EXISTS text text NOT NULL DEFAULT '';
ALTER TABLE {chunks} ADD COLUMN IF NOT EXISTS meta text;
ALTER TABLE {chunks} ADD COLUMN IF NOT EXISTS vector bytea;
CREATE INDEX IF NOT EXISTS {chunks_scope} ON {chunks} (owner_id, chat_id) INCLUDE (length);
CREATE INDEX IF NOT EXISTS {chunks_file} ON {chunks} (file_id);
CREATE INDEX IF NOT EXISTS {chunks_chat} ON {chunks} (chat_id);
CREATE TABLE IF NOT EXISTS {postings} (
    scope bigint NOT NULL,
    term integer NOT NULL,
    doc bigint NOT NULL,
    tf integer NOT NULL,
    length integer NOT NULL,
    PRIMARY KEY (scope, term, doc) INCLUDE (tf, length)
);
CREATE INDEX IF NOT EXISTS {postings_doc} ON {postings} (doc);
CREATE TABLE IF NOT EXISTS {dead} (doc bigint PRIMARY KEY);
"""

_UPSERT = """
INSERT INTO {chunks} (id, owner_id, chat_id, file_id, length, text, meta, vector)
SELECT * FROM unnest(
    %s::text[], %s::text[], %s::text[], %s::text[], %s::integer[], %s::text[], %s::text[],
    %s::bytea[]
)
ON CONFLICT (id) DO UPDATE SET
    owner_id = excluded.owner_id, chat_id = excluded.chat_id,
    file_id = excluded.file_id, length = excluded.length, text = excluded.text,
    meta = excluded.meta, vector = excluded.vector
RETURNING id, doc
"""

_DELETE = """
WITH gone AS (DELETE FROM {chunks} WHERE {column} = ANY(%s) RETURNING doc)
INSERT INTO {dead} (doc) SELECT doc FROM gone ON CONFLICT DO NOTHING
"""

_PURGE = """
WITH batch AS (
    DELETE FROM {dead} WHERE doc IN (
        SELECT doc FROM {dead} ORDER BY doc LIMIT %s FOR UPDATE SKIP LOCKED
    ) RETURNING doc
), gone AS (
    DELETE FROM {postings} WHERE doc IN (SELECT doc FROM batch)
)
SELECT count(*) FROM batch
"""
PURGE_BATCH = 1000
"""Dead chunks whose postings one ``add`` deletes (~90k rows, a few tenths of a second)."""

_SEARCH = """
WITH stats AS (
    SELECT count(*)::float8 AS n, greatest(avg(length), 1)::float8 AS avgdl
    FROM {chunks} WHERE owner_id = %(owner)s AND chat_id = %(chat)s {files}
), query AS (
    SELECT * FROM unnest(%(terms)s::integer[], %(qtfs)s::integer[]) AS q (term, qtf)
), postings AS (
    SELECT p.doc, p.term, p.tf, p.length, q.qtf
    FROM {postings} AS p JOIN query AS q USING (term)
    WHERE p.scope = %(scope)s {file_docs}
      AND NOT EXISTS (SELECT FROM {dead} AS d WHERE d.doc = p.doc)
), df AS (
    SELECT term, count(*)::float8 AS df FROM postings GROUP BY term
), top AS (
    SELECT p.doc, sum(
        p.qtf * ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5))
        * p.tf * (%(k1)s + 1) / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.length / s.avgdl))
    ) AS score
    FROM postings AS p JOIN df USING (term) CROSS JOIN stats AS s {only}
    GROUP BY p.doc ORDER BY score DESC LIMIT %(k)s
)
SELECT c.id, top.score FROM top JOIN {chunks} AS c USING (doc)
WHERE c.owner_id = %(owner)s AND c.chat_id = %(chat)s
ORDER BY top.score DESC, c.id
"""

_FILES = "AND file_id = ANY(%(files)s)"
_ONLY = "WHERE p.doc IN (SELECT doc FROM {chunks} WHERE id = ANY(%(ids)s))"
_FILE_DOCS = """AND p.doc IN (
        SELECT doc FROM {chunks}
        WHERE owner_id = %(owner)s AND chat_id = %(chat)s AND file_id = ANY(%(files)s))"""


def _hash(value: str, size: int) -> int:
    digest = hashlib.blake2b(value.encode(), digest_size=size).digest()
    return int.from_bytes(digest, signed=True)


def scope_key(owner_id: str, chat_id: str) -> int:
    """The postings' 64-bit key for one owner's chat."""
    return _hash(f"{len(owner_id)}:{owner_id}{chat_id}", 8)


def hashed_term_counts(text: str) -> dict[int, int]:
    """Term frequencies keyed by 32-bit term hash: compact postings, integer compares."""
    counts: dict[int, int] = {}
    for term, n in term_counts(text).items():
        key = _hash(term, 4)
        counts[key] = counts.get(key, 0) + n
    return counts


class PostgresKeywordIndex:
    """BM25 keyword index in PostgreSQL, shared by every worker through the database.

    Takes ownership of ``pool``, whose connections must autocommit (each method runs its
    own transaction): ``close`` closes it.
    """

    def __init__(self, pool: ConnectionPool[Any], *, table: str = "keyword") -> None:
        self._pool = pool
        self._names = {
            "chunks": sql.Identifier(f"{table}_chunks"),
            "postings": sql.Identifier(f"{table}_postings"),
            **{
                f"chunks_{name}": sql.Identifier(f"{table}_chunks_{name}")
                for name in ("scope", "file", "chat")
            },
            "postings_doc": sql.Identifier(f"{table}_postings_doc"),
            "dead": sql.Identifier(f"{table}_dead"),
        }
        with self._pool.connection() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            db.execute(self._sql(_SCHEMA))

    def _sql(self, template: str, **extra: sql.Composable) -> sql.Composed:
        return sql.SQL(template).format(**self._names, **extra)

    def add(self, docs: Sequence[KeywordDoc]) -> None:
        latest = {doc.id: doc for doc in docs}
        ordered = [latest[doc_id] for doc_id in sorted(latest)]  # one lock order: no deadlock
        counts = [hashed_term_counts(doc.text) for doc in ordered]
        columns = [
            [doc.id for doc in ordered],
            [doc.owner_id for doc in ordered],
            [doc.chat_id for doc in ordered],
            [doc.file_id for doc in ordered],
            [sum(c.values()) for c in counts],
            [doc.text for doc in ordered],
            [pack_metadata(doc.metadata) for doc in ordered],
            [pack_vector(doc.vector) for doc in ordered],
        ]
        with self._pool.connection() as db, db.transaction():
            docs_by_id = dict(db.execute(self._sql(_UPSERT), columns).fetchall())
            numbers = [docs_by_id[doc.id] for doc in ordered]
            # A replaced chunk keeps its number; its old postings go first.
            db.execute(self._sql("DELETE FROM {postings} WHERE doc = ANY(%s)"), (numbers,))
            self._copy_postings(db, ordered, numbers, counts)
        self.purge(limit=PURGE_BATCH)

    def purge(self, *, limit: int) -> int:
        """Delete the postings of up to ``limit`` deleted chunks (``add`` calls this);
        returns how many chunks' postings it deleted."""
        with self._pool.connection() as db:
            row = db.execute(self._sql(_PURGE), (limit,)).fetchone()
        return int(row[0]) if row else 0

    def _drain(self) -> None:
        """Purge dead postings until none is left (those other purges hold are theirs)."""
        while self.purge(limit=PURGE_BATCH) == PURGE_BATCH:
            pass

    def _copy_postings(
        self,
        db: Connection[Any],
        docs: Sequence[KeywordDoc],
        numbers: Sequence[int],
        counts: Sequence[dict[int, int]],
    ) -> None:
        copy = "COPY {postings} (scope, term, doc, tf, length) FROM STDIN (FORMAT BINARY)"
        with db.cursor() as cursor, cursor.copy(self._sql(copy)) as out:
            out.set_types(["int8", "int4", "int8", "int4", "int4"])
            for doc, number, terms in zip(docs, numbers, counts, strict=True):
                scope, length = scope_key(doc.owner_id, doc.chat_id), sum(terms.values())
                for term, tf in terms.items():
                    out.write_row((scope, term, number, tf, length))

    def _delete(self, column: str, values: Sequence[str]) -> None:
        with self._pool.connection() as db:
            db.execute(self._sql(_DELETE, column=sql.Identifier(column)), (sorted(set(values)),))

    def delete_ids(self, ids: Sequence[str]) -> None:
        self._delete("id", ids)

    def delete_file(self, file_id: str) -> None:
        self._delete("file_id", [file_id])
        self._drain()

    def delete_chat(self, chat_id: str) -> None:
        self._delete("chat_id", [chat_id])
        self._drain()

    def count(self, *, file_id: str | None = None, chat_id: str | None = None) -> int:
        filters = {"file_id": file_id, "chat_id": chat_id}
        where = [
            sql.SQL("{} = %s").format(sql.Identifier(column))
            for column, value in filters.items()
            if value is not None
        ]
        query = self._sql(
            "SELECT count(*) FROM {chunks} WHERE {where}",
            where=sql.SQL(" AND ").join(where) if where else sql.SQL("true"),
        )
        with self._pool.connection() as db:
            row = db.execute(query, [v for v in filters.values() if v is not None]).fetchone()
        return int(row[0]) if row else 0

    def file_chunks(self, *, file_id: str) -> dict[str, dict[str, Any] | None]:
        query = "SELECT id, meta FROM {chunks} WHERE file_id = %s"
        with self._pool.connection() as db:
            rows = db.execute(self._sql(query), (file_id,))
            return {str(i): unpack_metadata(meta) for i, meta in rows}

    def chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        query = "SELECT id, text, meta FROM {chunks} WHERE id = ANY(%s)"
        with self._pool.connection() as db:
            rows = db.execute(self._sql(query), (list(ids),))
            return {str(i): StoredChunk(str(text), unpack_metadata(meta)) for i, text, meta in rows}

    def vectors(self, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        query = "SELECT id, vector FROM {chunks} WHERE id = ANY(%s) AND vector IS NOT NULL"
        with self._pool.connection() as db:
            rows = db.execute(self._sql(query), (list(ids),))
            return {str(i): unpack_vector(blob) for i, blob in rows}

    def update_metadata(
        self, ids: Sequence[str], metadatas: Sequence[Mapping[str, Scalar]]
    ) -> None:
        update = """UPDATE {chunks} AS c SET meta = u.meta
            FROM unnest(%s::text[], %s::text[]) AS u (id, meta) WHERE c.id = u.id"""
        with self._pool.connection() as db:
            db.execute(self._sql(update), (list(ids), [pack_metadata(m) for m in metadatas]))

    def search(
        self,
        query: str,
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
        k: int = 10,
    ) -> list[Hit]:
        return self._search(query, owner_id, chat_id, file_ids, k=k, ids=None)

    def scores(
        self,
        query: str,
        ids: Sequence[str],
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
    ) -> dict[str, float]:
        # Same statistics as search() (the scope's, and the files'); only the scored
        # chunks are restricted.
        if not ids:
            return {}
        hits = self._search(query, owner_id, chat_id, file_ids, k=len(ids), ids=ids)
        return {hit.id: hit.score for hit in hits}

    def _search(
        self,
        query: str,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None,
        *,
        k: int,
        ids: Sequence[str] | None,
    ) -> list[Hit]:
        counts = hashed_term_counts(query)
        if not counts or (file_ids is not None and not file_ids):
            return []
        statement = self._sql(
            _SEARCH,
            files=sql.SQL(_FILES if file_ids is not None else ""),
            file_docs=self._sql(_FILE_DOCS) if file_ids is not None else sql.SQL(""),
            only=self._sql(_ONLY) if ids is not None else sql.SQL(""),
        )
        params = {
            "terms": list(counts),
            "qtfs": list(counts.values()),
            "owner": owner_id,
            "chat": chat_id,
            "scope": scope_key(owner_id, chat_id),
            "files": list(file_ids or []),
            "ids": list(ids or []),
            "k1": K1,
            "b": B,
            "k": k,
        }
        with self._pool.connection() as db:
            rows = db.execute(statement, params).fetchall()
        return [Hit(id=str(doc_id), score=float(score)) for doc_id, score in rows]

    def close(self) -> None:
        self._pool.close()
