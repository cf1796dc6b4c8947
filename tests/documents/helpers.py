from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import chromadb
import httpx
from sqlalchemy import func, select

from ragline.models import FilePurge
from ragline.rag.ingest.store import Stores, counts
from tests.helpers import as_user

FINAL = {"indexed", "failed"}


async def upload(
    client: httpx.AsyncClient, chat_id: str, files: list[tuple[str, bytes]], user: str = "alice"
) -> httpx.Response:
    return await client.post(
        f"/chats/{chat_id}/upload",
        files=[("files", (name, content, "application/octet-stream")) for name, content in files],
        headers=as_user(user),
    )


async def wait_final(
    client: httpx.AsyncClient, chat_id: str, file_id: str, user: str = "alice", limit_s: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        response = await client.get(f"/chats/{chat_id}/files/{file_id}", headers=as_user(user))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in FINAL:
            return body
        assert time.monotonic() < deadline, f"file stuck in {body['status']}: {body}"
        await asyncio.sleep(0.1)


def accepted_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 202, response.text
    results = response.json()["files"]
    assert all(r["status"] == "accepted" for r in results), results
    return [r["file_id"] for r in results]


def long_text(paragraphs: int, *, marker: str = "") -> str:
    """Distinct, sentence-rich paragraphs (enough for ~1 chunk per paragraph or two)."""
    topics = ["rivers", "glaciers", "deserts", "forests", "coasts", "mountains", "valleys"]
    out = []
    for i in range(paragraphs):
        topic = topics[i % len(topics)]
        out.append(
            f"Section {i} is about {topic} {marker}. "
            + " ".join(
                f"Observation {i}.{j}: the {topic} near station {i * 7 + j} changed by {j * 3 + i} "
                f"units over {2000 + i} and {2001 + j}, as the survey team recorded carefully."
                for j in range(6)
            )
        )
    return "\n\n".join(out)


async def wait_purged(stores: Stores, *, within: float = 60.0, **where: str) -> None:
    """Deletes answer at once and a queued job purges the stores: wait until it has."""
    deadline = time.monotonic() + within
    while (found := _counts_now(stores, where)) != {"vectors": 0, "keywords": 0}:
        assert time.monotonic() < deadline, f"still stored after {within} s: {found}"
        await asyncio.sleep(0.05)


def _counts_now(stores: Stores, where: dict[str, str]) -> Mapping[str, int] | str:
    """The counts, or the error of a Chroma server caught mid-deletion (ask again)."""
    try:
        return counts(stores, **where)
    except chromadb.errors.ChromaError as exc:
        return f"Chroma busy deleting: {exc}"


async def wait_no_purges(state: Any, *, within: float = 60.0) -> None:
    """Until every purge (stores and stored bytes) has finished and its row is gone."""
    deadline = time.monotonic() + within
    while True:
        async with state.sessionmaker() as session:
            pending = await session.scalar(select(func.count()).select_from(FilePurge))
        if not pending:
            return
        assert time.monotonic() < deadline, f"{pending} purge(s) pending after {within} s"
        await asyncio.sleep(0.05)
