"""Which keyword index (not ``keyword.py``: that would shadow the standard library's
``keyword`` when run as a script):  quality on BEIR SciFact, then speed at 100k chunks.

    .venv/bin/python benchmarks/keyword_index.py [--chunks 100000] [--pg postgresql://...]

For each option: nDCG@10 on SciFact's 300 test queries (the corpus alone in one chat),
add throughput, then ~100k chunks (SciFact perturbed, 1,000 per chat, 10,000 per owner) to
time queries filtered to one 1,000-chunk chat and to the 5,183-chunk SciFact chat, and the
delete of one 3,000-chunk file. Ratios are against the embedded default (sqlite-fts5).
Each PostgreSQL option gets its own throwaway database on the server.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from ragline.rag.stores.base import Hit, KeywordDoc
from ragline.rag.stores.keyword import PostgresKeywordIndex, SqliteKeywordIndex
from ragline.rag.stores.keyword.tokenize import terms

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir-scifact"
SCI_OWNER, SCI_CHAT = "owner-scifact", "chat-scifact"
BIG_FILE = "file-big"
BATCH = 256


@dataclass
class SciFact:
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_scifact() -> SciFact:
    corpus = {}
    for line in (DATA / "corpus.jsonl").open():
        row = json.loads(line)
        corpus[row["_id"]] = f"{row['title']} {row['text']}"
    queries = {row["_id"]: row["text"] for row in map(json.loads, (DATA / "queries.jsonl").open())}
    qrels: dict[str, dict[str, int]] = {}
    for line in (DATA / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, grade = line.split("\t")
        qrels.setdefault(query_id, {})[doc_id] = int(grade)
    return SciFact(corpus, {q: queries[q] for q in qrels}, qrels)


def ndcg_at_10(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    scores = []
    for query_id, relevant in qrels.items():
        dcg = sum(
            relevant.get(doc_id, 0) / math.log2(rank + 2)
            for rank, doc_id in enumerate(run.get(query_id, [])[:10])
        )
        ideal = sorted(relevant.values(), reverse=True)[:10]
        scores.append(dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal)))
    return statistics.fmean(scores)


def synthetic(corpus: Sequence[str], n: int, seed: int = 7) -> list[KeywordDoc]:
    """``n`` chunks: SciFact texts with 15% of words dropped, 1,000 per chat, 10,000 per
    owner, 250 per file except one file of 3,000 chunks."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = [w for w in corpus[i % len(corpus)].split() if rng.random() > 0.15]
        file_id = BIG_FILE if i < 3000 else f"file-{i // 250}"
        docs.append(KeywordDoc(f"syn-{i}", " ".join(words), f"owner-{i // 10_000}",
                               f"chat-{i // 1000}", file_id))  # fmt: skip
    return docs


class PgTsRank:
    """The naive PostgreSQL option: ``english`` tsvector, GIN, ``ts_rank_cd`` (no rarity)."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool
        with pool.connection() as db:
            db.execute(
                "CREATE TABLE ts_chunks (id text PRIMARY KEY, owner_id text, chat_id text,"
                " file_id text, tsv tsvector);"
                "CREATE INDEX ON ts_chunks USING gin (tsv);"
                "CREATE INDEX ON ts_chunks (owner_id, chat_id); CREATE INDEX ON ts_chunks (file_id)"
            )

    def add(self, docs: Sequence[KeywordDoc]) -> None:
        with self._pool.connection() as db, db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ts_chunks VALUES (%s, %s, %s, %s, to_tsvector('english', %s))"
                " ON CONFLICT (id) DO UPDATE SET tsv = excluded.tsv",
                [(d.id, d.owner_id, d.chat_id, d.file_id, d.text) for d in docs],
            )

    def delete_file(self, file_id: str) -> None:
        with self._pool.connection() as db:
            db.execute("DELETE FROM ts_chunks WHERE file_id = %s", (file_id,))

    def count(self, *, file_id: str | None = None, chat_id: str | None = None) -> int:
        with self._pool.connection() as db:
            row = db.execute(
                "SELECT count(*) FROM ts_chunks WHERE file_id = coalesce(%s, file_id)", (file_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def search(
        self,
        query: str,
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
        k: int = 10,
    ) -> list[Hit]:
        with self._pool.connection() as db:
            rows = db.execute(
                "WITH q AS (SELECT replace(plainto_tsquery('english', %s)::text, '&', '|')"
                "::tsquery AS q) SELECT id, ts_rank_cd(tsv, q.q) AS score FROM ts_chunks, q"
                " WHERE owner_id = %s AND chat_id = %s AND tsv @@ q.q"
                " ORDER BY score DESC LIMIT %s",
                (query, owner_id, chat_id, k),
            ).fetchall()
        return [Hit(id=str(doc_id), score=float(score)) for doc_id, score in rows]

    def close(self) -> None:
        self._pool.close()


class MemoryBm25:
    """Quality reference only (in memory, built once): Okapi BM25 over the same terms, to
    tell tokenisation effects from backend effects."""

    def __init__(self, corpus: dict[str, str], k1: float = 1.2, b: float = 0.75) -> None:
        counts = {doc_id: Counter(terms(text)) for doc_id, text in corpus.items()}
        self.length = {doc_id: sum(c.values()) for doc_id, c in counts.items()}
        self.postings: dict[str, dict[str, int]] = {}
        for doc_id, c in counts.items():
            for term, tf in c.items():
                self.postings.setdefault(term, {})[doc_id] = tf
        self.avgdl = statistics.fmean(self.length.values())
        self.k1, self.b, self.n = k1, b, len(counts)

    def search(self, query: str, k: int = 10) -> list[str]:
        scores: dict[str, float] = {}
        for term in terms(query):
            postings = self.postings.get(term, {})
            idf = math.log(1 + (self.n - len(postings) + 0.5) / (len(postings) + 0.5))
            for doc_id, tf in postings.items():
                norm = self.k1 * (1 - self.b + self.b * self.length[doc_id] / self.avgdl)
                gain = idf * tf * (self.k1 + 1) / (tf + norm)
                scores[doc_id] = scores.get(doc_id, 0.0) + gain
        return sorted(scores, key=scores.__getitem__, reverse=True)[:k]


@dataclass
class Result:
    name: str
    figures: dict[str, float] = field(default_factory=dict)


@contextmanager
def throwaway_database(admin_dsn: str) -> Iterator[str]:
    name = f"ragline_bench_kw_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pool(dsn: str) -> ConnectionPool[Any]:
    return ConnectionPool(dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True)


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, round(q * (len(values) - 1)))]


def add_all(index: Any, docs: Sequence[KeywordDoc]) -> float:
    start = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        index.add(docs[i : i + BATCH])
    return len(docs) / (time.perf_counter() - start)


def run_option(name: str, index: Any, data: SciFact, extra: list[KeywordDoc]) -> Result:
    result = Result(name)
    sci = [KeywordDoc(d, t, SCI_OWNER, SCI_CHAT, f"sci-{n // 100}")
           for n, (d, t) in enumerate(data.corpus.items())]  # fmt: skip

    def evaluate() -> float:
        run = {
            q: [h.id for h in index.search(text, owner_id=SCI_OWNER, chat_id=SCI_CHAT, k=10)]
            for q, text in data.queries.items()
        }
        return ndcg_at_10(run, data.qrels)

    result.figures["add/s"] = add_all(index, sci)
    result.figures["nDCG@10"] = evaluate()
    sci_rate, extra_rate = result.figures["add/s"], add_all(index, extra)
    total = len(sci) + len(extra)
    result.figures["add/s"] = total / (len(sci) / sci_rate + len(extra) / extra_rate)
    result.figures["nDCG@10 full"] = evaluate()
    rng = random.Random(1)
    chats = sorted({d.chat_id for d in extra})
    for label, scope in (("chat 1k", None), ("chat 5k", SCI_CHAT)):
        times = []
        for text in data.queries.values():
            chat = scope or rng.choice(chats)
            owner = SCI_OWNER if scope else f"owner-{int(chat.split('-')[1]) // 10}"
            start = time.perf_counter()
            index.search(text, owner_id=owner, chat_id=chat, k=10)
            times.append((time.perf_counter() - start) * 1000)
        result.figures[f"p50 ms {label}"] = statistics.median(times)
        result.figures[f"p99 ms {label}"] = percentile(times, 0.99)
    start = time.perf_counter()
    index.delete_file(BIG_FILE)
    result.figures["delete 3k ms"] = (time.perf_counter() - start) * 1000
    assert index.count(file_id=BIG_FILE) == 0
    index.close()
    return result


def chroma_sparse_bm25() -> str:
    """Whether Chroma's BM25 sparse index can be created here (embedded; ``chroma run``
    answers the same, see the report)."""
    try:
        import chromadb
        from chromadb import Schema, SparseVectorIndexConfig
        from chromadb.execution.expression import K
        from chromadb.utils.embedding_functions import ChromaBm25EmbeddingFunction
    except ImportError as error:
        return f"not installed ({error})"
    schema = Schema()
    config = SparseVectorIndexConfig(
        source_key=K.DOCUMENT, embedding_function=ChromaBm25EmbeddingFunction(), bm25=True
    )
    schema.create_index(key="sparse", config=config)
    with tempfile.TemporaryDirectory() as path:
        client = chromadb.PersistentClient(path=path)
        try:
            client.create_collection("probe", schema=schema, embedding_function=None)
        except Exception as error:
            return f"unavailable: {error}"
    return "available: add it to this benchmark"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--options", default="sqlite-fts5,sqlite-arrays,pg-bm25,pg-tsrank")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent")
        return
    data = load_scifact()
    extra = synthetic(list(data.corpus.values()), args.chunks - len(data.corpus))
    reference = MemoryBm25(data.corpus)
    run = {q: reference.search(text) for q, text in data.queries.items()}
    print(f"in-memory BM25, same terms: nDCG@10 {ndcg_at_10(run, data.qrels):.3f}", flush=True)
    print(f"chroma-sparse-bm25: {chroma_sparse_bm25()}", flush=True)

    options: list[tuple[str, Callable[[str, Path], Any]]] = [
        (
            "sqlite-fts5",  # FTS5 alone
            lambda dsn, tmp: SqliteKeywordIndex(tmp / "keyword.sqlite3", arrays=False),
        ),
        (
            # The embedded default once a chat is quiet: in-memory arrays from FTS5's table
            # (here built by the first query after each write, in the caller's thread).
            "sqlite-arrays",
            lambda dsn, tmp: SqliteKeywordIndex(
                tmp / "keyword.sqlite3", arrays_quiet_s=0, arrays_in_background=False
            ),
        ),
        ("pg-bm25", lambda dsn, tmp: PostgresKeywordIndex(pool(dsn))),
        ("pg-tsrank", lambda dsn, tmp: PgTsRank(pool(dsn))),
    ]
    results = []
    for name, build in options:
        if name not in args.options.split(","):
            continue
        with throwaway_database(args.pg) as dsn, tempfile.TemporaryDirectory() as tmp:
            results.append(run_option(name, build(dsn, Path(tmp)), data, extra))
        print(f"{name}: done", flush=True)

    columns = list(results[0].figures)
    print(f"\n{len(data.corpus) + len(extra)} chunks; ratios against {results[0].name}")
    print(f"{'option':<12}" + "".join(f"{c:>22}" for c in columns))
    for result in results:
        cells = [
            f"{result.figures[c]:.3f} ({result.figures[c] / results[0].figures[c]:.2f}x)"
            for c in columns
        ]
        print(f"{result.name:<12}" + "".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
