"""Deleting a 10 MB file's chunks: vectors (embedded Chroma) and keyword rows (SQLite FTS5,
and PostgreSQL when reachable), through ragline's own store code.

    python benchmarks/delete.py [--megabytes 10]

The file is real text (the SciFact corpus, repeated until it reaches the size; skipped when
../shared/data is absent), chunked by ragline's chunker; vectors are random (their values do
not matter to a delete). The baseline is deleting the same number of ids one call per chunk
in the same run, i.e. what a per-chunk cleanup loop would cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from llama_index.core.schema import Document

from benchmarks.common import scifact_corpus, table
from ragline.rag.ingest.chunk import chunk_documents
from ragline.rag.ingest.ids import assign_chunk_ids
from ragline.rag.ingest.store import Stores, add_chunks, counts, remove_file
from ragline.rag.providers import minilm_tokenizer
from ragline.rag.stores.keyword import build_keyword_index
from ragline.rag.stores.vector import ChromaVectorStore, chroma_client

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LOOP_SAMPLE = 200  # the per-chunk baseline is timed on this many ids and extrapolated


def ten_megabytes(size: int) -> str:
    docs = scifact_corpus()
    parts, total = [], 0
    while total < size:
        for doc in docs:
            text = f"{doc['title']}\n\n{doc['text']}\n\n"
            parts.append(text)
            total += len(text.encode())
            if total >= size:
                break
    return "".join(parts)


def fill(stores: Stores, text: str, file_id: str) -> int:
    nodes = chunk_documents([Document(text=text)], tokenizer=minilm_tokenizer(), chunk_size=250)
    for node in nodes:
        node.metadata.update(owner_id="owner", chat_id="chat", file_id=file_id, file_name="big.txt")
    nodes = assign_chunk_ids(nodes, file_id=file_id)
    vectors = np.random.default_rng(0).random((len(nodes), 384), dtype=np.float32)
    for start in range(0, len(nodes), 1000):
        add_chunks(stores, nodes[start : start + 1000], vectors[start : start + 1000].tolist())
    return len(nodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=10.0)
    args = parser.parse_args()
    text = ten_megabytes(int(args.megabytes * 1024 * 1024))
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-delete-"))
    vectors = ChromaVectorStore(chroma_client(path=work / "chroma"), "bench-delete")
    backends = {"sqlite-fts5": build_keyword_index(data_dir=work)}
    database = f"ragline_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
        backends["postgres-bm25"] = build_keyword_index(
            database_url=f"postgresql://postgres@127.0.0.1:5432/{database}"
        )
    except psycopg.OperationalError:
        print("PostgreSQL not reachable: measuring SQLite FTS5 only")
    rows = [("keyword backend", "chunks", "delete file (ms)", "per-chunk loop (ms, est.)", "ratio")]
    try:
        for name, keywords in backends.items():
            stores = Stores(vectors=vectors, keywords=keywords)
            file_id = f"file-{name}"
            chunks = fill(stores, text, file_id)
            started = time.perf_counter()
            remove_file(stores, chat_id="chat", file_id=file_id)
            bulk = time.perf_counter() - started
            assert counts(stores, file_id=file_id) == {"vectors": 0, "keywords": 0}

            fill(stores, text, file_id)
            ids = sorted(vectors.ids("chat", file_id=file_id))
            sample = ids[:LOOP_SAMPLE]
            started = time.perf_counter()
            for chunk_id in sample:
                keywords.delete_ids([chunk_id])
                vectors.delete_ids("chat", [chunk_id])
            loop = (time.perf_counter() - started) * len(ids) / len(sample)  # extrapolated
            remove_file(stores, chat_id="chat", file_id=file_id)
            rows.append(
                (
                    name,
                    str(chunks),
                    f"{bulk * 1000:.0f}",
                    f"{loop * 1000:.0f}",
                    f"{loop / bulk:.0f}x",
                )
            )
            keywords.close()
    finally:
        if "postgres-bm25" in backends:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]
    print(f"a {args.megabytes:g} MB text file ({len(text.encode()):,} bytes)")
    print(table(rows))
    print("target: deleting a 10 MB file's vectors and keyword rows well under a second")


if __name__ == "__main__":
    main()
