"""Shared by the benchmarks: the shared data, a real `ragline serve` process, printing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ragline.rag.query.retrieve import RetrievedChunk

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SCIFACT = SHARED_DATA / "beir-scifact"
RAGLINE = str(Path(sys.executable).parent / "ragline")


def require(path: Path) -> None:
    if not path.exists():
        print(f"skipped: {path} is absent (the benchmark needs ../shared/data)")
        sys.exit(0)


def scifact_corpus(limit: int | None = None) -> list[dict[str, str]]:
    require(SCIFACT / "corpus.jsonl")
    docs = []
    with (SCIFACT / "corpus.jsonl").open() as stream:
        for line in stream:
            docs.append(json.loads(line))
            if limit and len(docs) >= limit:
                break
    return docs


def scifact_queries(limit: int | None = None) -> list[str]:
    """The SciFact claims (distinct texts), in file order."""
    require(SCIFACT / "queries.jsonl")
    queries: list[str] = []
    with (SCIFACT / "queries.jsonl").open() as stream:
        for line in stream:
            text = json.loads(line)["text"].strip()
            if text and text not in queries:
                queries.append(text)
            if limit and len(queries) >= limit:
                break
    return queries


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def ragline_server(data_dir: Path, **env_extra: str) -> Iterator[str]:
    """`ragline db upgrade` + `ragline serve` on the embedded default, in ``data_dir``."""
    with ragline_process(data_dir, **env_extra) as (base, _):
        yield base


@contextmanager
def ragline_process(
    data_dir: Path, **env_extra: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`ragline_server`, with the server's process (to read its memory)."""
    port = free_port()
    keep = {"PATH", "HOME", "LANG", "TMPDIR", "RAGLINE_MODEL_CACHE", "XDG_CACHE_HOME"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {"RAGLINE_DATA_DIR": str(data_dir), "PORT": str(port), "LOG_LEVEL": "WARNING"}
    # Benchmarks measure throughput: per-user rate limits off.
    env |= {"RATE_LIMIT_CHAT": "", "RATE_LIMIT_UPLOAD": ""}
    env |= env_extra
    subprocess.run([RAGLINE, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = (data_dir.parent / f"serve-{port}.log").open("ab")
    process = subprocess.Popen([RAGLINE, "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ragline serve did not start; see {log.name}")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def rss_mib(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def retrieved_chunk(hit: dict[str, Any]) -> RetrievedChunk:
    """A `/chats/{id}/search` result as the prompt builder takes it."""
    return RetrievedChunk(
        id=hit["chunk_id"],
        text=hit["text"],
        score=hit["score"],
        dense_score=hit["dense_score"],
        keyword_score=hit["keyword_score"],
        file_id=hit["file_id"],
        file_name=hit["file_name"],
        page=hit["page"],
        section=hit["section"],
        start_char=hit["start_char"],
        end_char=hit["end_char"],
    )
