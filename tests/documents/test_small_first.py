"""A small file does not wait for a big one's chunks (issue 15, item 5): uploaded while
the big one is embedding, it is indexed in the next embedding batch; uploaded with it, in
the first. The embedder is the real one behind a gate, so the order is not left to timing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from ragline.config import Settings
from ragline.documents import runtime
from ragline.rag.embeddings.base import Embedder, ForwardingEmbedder
from ragline.rag.ingest.backlog import OLDEST_SHARE
from ragline.rag.ingest.sink import FileWork, IngestSink
from tests.documents.helpers import accepted_ids, upload, wait_final
from tests.helpers import as_user, create_chat, running_app

ALICE = as_user("alice")
BATCH = 64
pytestmark = [
    pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


class GatedEmbedder(ForwardingEmbedder):
    """The real embedder, one batch per permit: the test, not timing, decides how far the
    sink gets. Records each batch's texts."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.permits = threading.Semaphore(0)
        self.batches: list[list[str]] = []

    @property
    def inner(self) -> Embedder:
        return self._inner

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.batches.append(list(texts))
        if not self.permits.acquire(timeout=60):
            raise TimeoutError("the test never let this batch through")
        return self._inner.embed(texts)


def one_chunk_paragraphs(count: int, *, tag: str) -> str:
    """``count`` paragraphs of ~100 tokens: over the chunker's 64-token minimum and under
    CHUNK_SIZE (250), so each paragraph is one chunk."""
    return "\n\n".join(
        f"{tag} section {i}. "
        + " ".join(
            f"Reading {i}.{j} at gauge {i * 3 + j} rose by {j + 2} centimetres in {1990 + i}, "
            "as the river survey noted in its yearly report."
            for j in range(3)
        )
        for i in range(count)
    )


async def until(condition: Any, what: str, *, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


class Gate:
    """The worker's embedder behind a gate, and the files whose chunks reached the sink."""

    def __init__(self) -> None:
        self.embedders: list[GatedEmbedder] = []
        self.submitted: list[str] = []

    @property
    def embedder(self) -> GatedEmbedder:
        [embedder] = self.embedders  # one app, one worker embedder
        return embedder

    def batches(self) -> list[list[str]]:
        return self.embedders[0].batches if self.embedders else []


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    build_embedder = runtime.build_embedder
    submit = IngestSink.submit

    def gated(settings: Settings, **kwargs: Any) -> Embedder:
        gate.embedders.append(GatedEmbedder(build_embedder(settings, **kwargs)))
        return gate.embedders[-1]

    def recording_submit(self: IngestSink, work: FileWork) -> None:
        submit(self, work)
        gate.submitted.append(work.key)  # the file's chunks are in the sink's backlog

    monkeypatch.setattr(runtime, "build_embedder", gated)
    monkeypatch.setattr(IngestSink, "submit", recording_submit)
    return gate


@pytest.fixture
async def app(doc_settings: Settings, db: Any, gate: Gate) -> AsyncIterator[Chat]:
    """The embedded default app (batches of BATCH chunks, the gated embedder) and a chat."""
    settings = doc_settings.model_copy(update={"embed_batch_size": BATCH})
    async with running_app(settings) as (client, _):
        chat = await create_chat(client, "alice", title="small first")
        yield Chat(client, chat["id"])


@dataclass(frozen=True)
class Chat:
    client: httpx.AsyncClient
    id: str

    async def upload(self, *files: tuple[str, str]) -> list[str]:
        named = [(name, text.encode()) for name, text in files]
        return accepted_ids(await upload(self.client, self.id, named))

    async def file(self, file_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/chats/{self.id}/files/{file_id}", headers=ALICE)
        body: dict[str, Any] = response.json()
        return body

    async def final(self, file_id: str, limit_s: float = 90) -> dict[str, Any]:
        return await wait_final(self.client, self.id, file_id, limit_s=limit_s)


async def test_small_file_is_indexed_while_a_big_one_embeds(app: Chat, gate: Gate) -> None:
    [big] = await app.upload(("big.txt", one_chunk_paragraphs(500, tag="Big")))
    # The first batch (the big file's first 64 chunks) is held at the gate.
    await until(lambda: big in gate.submitted and gate.batches(), "the first batch")
    assert (await app.file(big))["status"] == "embedding"

    [small] = await app.upload(("small.txt", one_chunk_paragraphs(3, tag="Small")))
    await until(lambda: small in gate.submitted, "the small file's chunks in the sink")
    gate.embedder.permits.release(2)  # the held batch, and the next one only
    small_done = await app.final(small, limit_s=60)
    big_now = await app.file(big)

    assert small_done["status"] == "indexed", small_done
    assert small_done["progress"] == {"done": 3, "total": 3}
    assert big_now["status"] == "embedding", big_now
    assert big_now["progress"]["total"] == 500
    assert big_now["progress"]["done"] <= BATCH + BATCH // OLDEST_SHARE
    first, second = gate.batches()[:2]
    assert len(first) == BATCH and all(text.startswith("Big") for text in first)
    # The whole small file, beside the big file's guaranteed share only (no filler).
    assert (
        sorted(text.split()[0] for text in second)
        == ["Big"] * (BATCH // OLDEST_SHARE) + ["Small"] * 3
    )

    gate.embedder.permits.release(1000)
    big_done = await app.final(big)
    assert big_done["status"] == "indexed", big_done
    assert big_done["progress"] == {"done": 500, "total": 500}
    assert datetime.fromisoformat(small_done["indexed_at"]) < datetime.fromisoformat(
        big_done["indexed_at"]
    )


async def test_small_file_uploaded_with_a_big_one_goes_first(app: Chat, gate: Gate) -> None:
    big, small = await app.upload(
        ("big.txt", one_chunk_paragraphs(200, tag="Big")),
        ("small.txt", one_chunk_paragraphs(3, tag="Small")),
    )
    await until(lambda: {big, small} <= set(gate.submitted), "both files in the sink")
    gate.embedder.permits.release(1)  # the first batch only
    small_done = await app.final(small, limit_s=60)
    big_now = await app.file(big)
    assert small_done["status"] == "indexed", small_done
    assert big_now["status"] == "embedding" and big_now["progress"]["done"] == 0, big_now
    # The job submits an upload's smallest file first; it completes in the first batch.
    assert [text.split()[0] for text in gate.batches()[0]] == ["Small"] * 3
    gate.embedder.permits.release(1000)
    big_done = await app.final(big)
    assert big_done["status"] == "indexed"
    assert big_done["progress"] == {"done": 200, "total": 200}
