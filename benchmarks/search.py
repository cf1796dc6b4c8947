"""Search latency and throughput through the real endpoint, at 100k chunks.

    python -m benchmarks.search [--chunks 100000] [--rate 50] [--seconds 20] [--clients 16]
                                [--work DIR]

The searched assistant holds the SciFact corpus (5,183 abstracts, ingested through
ragline's real path: upload, queue, embedder, stores); other users' assistants fill the
same stores up to ``--chunks`` (their vectors are the SciFact vectors with noise, written
with ragline's store code), so every query filters 100k chunks down to one assistant
inside Chroma and the keyword index. Every request carries a distinct query (no cache
hit), and its latency includes embedding the query.

* open loop: requests sent at a fixed rate (a schedule, not a reply, starts each one), so
  latency counts from the scheduled time (no coordinated omission); targets p50 ≤ 15 ms,
  p99 ≤ 60 ms at 50 requests/s.
* closed loop: ``wrk`` with 16 connections (Debian package; `make bench-deps` installs
  it), each sending the next request as soon as the last one answers; target ≥ 150/s.
* baseline, same run: the same retrieval in-process (embedder + Chroma + keyword index,
  no HTTP, no database), one query at a time: what the endpoint adds on top of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import SCIFACT, ragline_server, require, scifact_corpus, table
from benchmarks.ingest import DEV, encode_uploads, upload_all, wait_indexed, write_corpus

FILL_BATCH = 2000


def distinct_queries(count: int, seed: int = 7) -> list[str]:
    """SciFact's queries, then the same with one corpus word appended: all different."""
    require(SCIFACT / "queries.jsonl")
    base = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open()]
    words = sorted({w for d in scifact_corpus(500) for w in d["title"].split() if w.isalpha()})
    rng = random.Random(seed)
    out = list(dict.fromkeys(base))
    while len(out) < count:
        out.append(f"{rng.choice(base)} {rng.choice(words)} {rng.choice(words)}")
    out = list(dict.fromkeys(out))
    rng.shuffle(out)
    return out[:count]


def ingest_scifact(data: Path, work: Path, limit: int | None) -> str:
    paths = write_corpus(scifact_corpus(limit), work / "corpus")
    with ragline_server(data) as base:
        chat = httpx.post(f"{base}/chats", json={"title": "scifact"}, headers=DEV).json()
        started = time.perf_counter()
        upload_all(encode_uploads(base, chat["id"], paths))
        wait_indexed(base, chat["id"], len(paths))
        print(f"ingested {len(paths)} abstracts in {time.perf_counter() - started:.0f} s")
        return str(chat["id"])


def fill_other_assistants(data: Path, total: int) -> int:
    """Copies of the searched assistant's chunks under other owners and chats, up to
    ``total`` chunks in the stores (each assistant has its own Chroma collection and its
    own FTS5 table; the stores' files hold them all)."""
    from ragline.config import Settings
    from ragline.rag.providers import build_stores
    from ragline.rag.stores.base import KeywordDoc

    stores = build_stores(Settings(_env_file=None, ragline_data_dir=data))  # type: ignore[call-arg]
    try:
        [chat_id] = stores.vectors.chat_ids()
        collection = stores.vectors.client.get_collection(stores.vectors.collection_name(chat_id))
        got = collection.get(include=["embeddings", "metadatas"])
        ids, metas = got["ids"], got["metadatas"] or []
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
        texts = {i: c.text for i, c in stores.keywords.chunks(ids).items()}
        rng = np.random.default_rng(0)
        stored, copy = len(ids), 0
        while stored < total:
            owner, chat = str(uuid.uuid4()), str(uuid.uuid4())
            n = min(len(ids), total - stored)
            noisy = vectors[:n] + rng.normal(0, 0.02, vectors[:n].shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            for start in range(0, n, FILL_BATCH):
                part = range(start, min(n, start + FILL_BATCH))
                new_ids = [f"fill{copy}-{ids[i]}" for i in part]
                new_meta = [{**(metas[i] or {}), "owner_id": owner, "chat_id": chat} for i in part]
                stores.keywords.add(
                    [
                        KeywordDoc(
                            id=new_id,
                            text=texts.get(ids[i], ""),
                            owner_id=owner,
                            chat_id=chat,
                            file_id=str(meta["file_id"]),
                            metadata=meta,
                            vector=vector,
                        )
                        for new_id, i, meta, vector in zip(
                            new_ids, part, new_meta, noisy[start : start + len(part)], strict=True
                        )
                    ]
                )
                stores.vectors.upsert(new_ids, noisy[start : start + len(part)], new_meta)
            stored += n
            copy += 1
        return stores.vectors.count()
    finally:
        stores.keywords.close()


def prepared_stores(data: Path, work: Path, docs: int | None, chunks: int) -> str:
    """The searched assistant's id, after ingesting and filling ``data`` unless a previous
    run with the same sizes left it there."""
    marker = work / f"prepared-{docs or 'all'}-{chunks}.txt"
    if marker.exists() and data.exists():
        print(f"reusing the stores in {data}")
        return marker.read_text().strip()
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    chat_id = ingest_scifact(data, work, docs)
    total = fill_other_assistants(data, chunks)
    print(f"stores hold {total:,} chunks; the searched assistant holds SciFact's")
    marker.write_text(chat_id)
    return chat_id


def in_process_baseline(data: Path, chat_id: str, queries: list[str]) -> list[float]:
    """The same retrieval without HTTP or database, one query at a time (ms)."""
    import sqlite3

    from ragline.config import Settings
    from ragline.rag.providers import build_embedder, build_stores
    from ragline.rag.query.retrieve import HybridRetriever, Scope

    settings = Settings(_env_file=None, ragline_data_dir=data)  # type: ignore[call-arg]
    with sqlite3.connect(data / "ragline.db") as db:
        owner = db.execute("SELECT owner_id FROM chats").fetchone()[0]
    owner_id = str(uuid.UUID(owner)) if len(owner) == 32 else owner
    stores = build_stores(settings)
    retriever = HybridRetriever(embedder=build_embedder(settings), stores=stores)
    scope = Scope(owner_id=owner_id, chat_id=chat_id, file_ids=None)
    try:
        assert retriever.retrieve(queries[0], scope, k=5), "baseline finds nothing"
        latencies = []
        for query in queries[1:]:
            started = time.perf_counter()
            retriever.retrieve(query, scope, k=5)
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies
    finally:
        retriever.close()
        stores.keywords.close()


async def open_loop(base: str, chat_id: str, queries: list[str], rate: float) -> list[float]:
    """Latency (ms) from each request's scheduled start; raises on any non-200."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, headers=DEV, limits=limits, timeout=30) as client:

        async def one(query: str, scheduled: float) -> None:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            response = await client.post(f"/chats/{chat_id}/search", json={"query": query})
            response.raise_for_status()
            latencies.append((time.perf_counter() - scheduled) * 1000)

        start = time.perf_counter() + 0.5
        await asyncio.gather(*(one(q, start + i / rate) for i, q in enumerate(queries)))
    return latencies


WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  local body = bodies[(counter %% #bodies) + 1]
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json",
    ["X-Ragline-Dev-User"] = "%s"}, body)
end
"""


def closed_loop(
    base: str, chat_id: str, queries: list[str], clients: int, seconds: int, work: Path
) -> dict[str, float] | None:
    if shutil.which("wrk") is None:
        print("closed loop skipped: wrk is not installed (make bench-deps installs it)")
        return None
    bodies = work / "bodies.txt"
    bodies.write_text("\n".join(json.dumps({"query": q}) for q in queries) + "\n")
    script = work / "search.lua"  # one wrk thread: one counter, no query repeats
    # The assistant's owner: another user would get 404 for every request.
    script.write_text(WRK_SCRIPT % (bodies, f"/chats/{chat_id}/search", DEV["X-Ragline-Dev-User"]))
    result = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, float] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            out["rps"] = float(parts[1])
        elif parts and parts[0] in ("50%", "99%"):
            out[parts[0]] = _ms(parts[1])
        elif "Non-2xx" in line:
            out["non2xx"] = float(parts[-1])
    return out


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--docs", type=int, default=None, help="abstracts in the searched assistant (all)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the ingested stores in this directory and reuse them on the next run"
        " (default: a temporary directory, removed at the end)",
    )
    args = parser.parse_args()

    require(SCIFACT / "corpus.jsonl")
    needed = int(args.rate * args.seconds) + 400 * args.seconds + 300
    queries = distinct_queries(needed)
    warm, baseline_q = queries[:50], queries[50:250]
    open_q = queries[250 : 250 + int(args.rate * args.seconds)]
    closed_q = queries[250 + len(open_q) :]
    with tempfile.TemporaryDirectory(prefix="ragline-search-") as tmp:
        work = args.work or Path(tmp)
        data = work / "data"
        chat_id = prepared_stores(data, work, args.docs, args.chunks)
        baseline = in_process_baseline(data, chat_id, baseline_q)
        with ragline_server(data) as base:
            with httpx.Client(base_url=base, headers=DEV, timeout=30) as client:
                for query in warm:
                    client.post(
                        f"/chats/{chat_id}/search", json={"query": query}
                    ).raise_for_status()
            opened = asyncio.run(open_loop(base, chat_id, open_q, args.rate))
            closed = closed_loop(base, chat_id, closed_q, args.clients, args.seconds, work)

    rows = [("measure", "p50 ms", "p99 ms", "requests/s", "target")]
    rows.append(
        (
            "in-process retrieval (baseline, one at a time)",
            f"{pct(baseline, 50):.1f}",
            f"{pct(baseline, 99):.1f}",
            f"{1000 / statistics.mean(baseline):.0f}",
            "",
        )
    )
    rows.append(
        (
            f"endpoint, open loop at {args.rate:.0f}/s",
            f"{pct(opened, 50):.1f}",
            f"{pct(opened, 99):.1f}",
            f"{args.rate:.0f}",
            "p50 ≤ 15, p99 ≤ 60",
        )
    )
    if closed:
        rows.append(
            (
                f"endpoint, closed loop, {args.clients} clients (wrk)",
                f"{closed.get('50%', float('nan')):.1f}",
                f"{closed.get('99%', float('nan')):.1f}",
                f"{closed['rps']:.0f}"
                if not closed.get("non2xx")
                else f"invalid: {closed['non2xx']:.0f} non-2xx",
                "≥ 150/s",
            )
        )
    print(table(rows))
    print(f"endpoint p50 ÷ in-process p50: {pct(opened, 50) / pct(baseline, 50):.2f}")
    if closed and closed.get("non2xx"):
        print(f"closed loop: {closed['non2xx']:.0f} non-2xx answers")


if __name__ == "__main__":
    main()
