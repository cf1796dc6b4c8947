"""A delete wins over the writes in flight (issue 16, finding 4).

A batch of a file is held at the embedding provider (a real HTTP server that answers each
request only when the test lets it: the order is the test's, not timing's) while its file,
or its assistant, is deleted and the purge runs; then it is let through. Once that job has
ended and no purge is pending, the stores hold nothing of the deleted file or assistant,
and keep holding nothing for 30 s: no keyword rows, no vectors, no keyword table, no
collection, no bookkeeping row (``chat_version``, ``file_purges``). Before the fix the held
batch, and the next ones until the job noticed, were written after the purge (a deleted
file's keyword writes went on: the SQLite version 3 -> 12-26, PostgreSQL rows 8 -> 89),
and a deleted assistant's collection, FTS5 table and version row, or PostgreSQL postings
(107-2415), stayed forever.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select

from ragline.config import Provider, Settings
from ragline.documents import queue
from ragline.models import User
from ragline.rag.ingest.sink import IngestSink
from ragline.rag.ingest.store import Stores, counts
from ragline.rag.stores.keyword import SQLITE_FILE
from ragline.rag.stores.keyword.postgres import scope_key
from ragline.rag.stores.keyword.sqlite_schema import table_name
from tests.documents.helpers import accepted_ids, long_text, upload, wait_no_purges
from tests.fake_providers import FakeProvider, JsonHandler, _serving, fake_vector, ollama_tags
from tests.helpers import as_user, create_chat, running_app

ALICE = as_user("alice")
BATCH = 4
PROBE = ["dimension probe"]  # the remote embedder's own request: never held
pytestmark = pytest.mark.parametrize(
    ("database_url", "doc_settings"),
    [("sqlite", "embedded-chroma"), ("postgres", "chroma-server")],
    indirect=True,
)


@dataclass
class Gate:
    """An Ollama ``POST /api/embed`` that answers a batch only with a permit."""

    provider: FakeProvider
    permits: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    arrived: int = 0  # batches received (held or answered)


@contextmanager
def gated_embedder() -> Iterator[Gate]:
    gate = Gate(FakeProvider(url=""))

    class Handler(JsonHandler):
        def do_GET(self) -> None:  # http.server's naming
            self._answer(200, ollama_tags(["gated"]))

        def do_POST(self) -> None:  # http.server's naming
            texts = self._receive(gate.provider)["input"]
            if texts != PROBE:
                gate.arrived += 1
                if not gate.permits.acquire(timeout=120):
                    self._answer(503, {"error": "the test never let this batch through"})
                    return
            self._answer(200, {"embeddings": [fake_vector(t, 64) for t in texts]})

    with _serving(Handler, gate.provider):
        try:
            yield gate
        finally:
            gate.permits.release(100_000)  # nothing waits on the gate after the test


def _settings(doc_settings: Settings, gate: Gate) -> Settings:
    port = int(gate.provider.url.rsplit(":", 1)[1])
    return doc_settings.model_copy(
        update={
            "embed_provider": Provider.OLLAMA,
            "ollama_host": "127.0.0.1",
            "ollama_port": port,
            "ollama_embed_model": "gated",
            "embed_batch_size": BATCH,
        }
    )


async def until(condition: Callable[[], bool], what: str, *, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _sink() -> IngestSink:
    return queue._worker_context().sink  # the app's in-process worker


def _sink_idle() -> bool:
    started, ended = _sink().cycles
    return started == ended and _sink().pending == 0


@dataclass(frozen=True)
class Leftovers:
    """What the stores hold of one assistant (and one of its files), read directly."""

    settings: Settings
    stores: Stores
    owner_id: str
    chat_id: str
    file_id: str

    def of_file(self) -> dict[str, int]:
        return dict(counts(self.stores, chat_id=self.chat_id, file_id=self.file_id))

    def of_chat(self) -> dict[str, Any]:
        found: dict[str, Any] = dict(counts(self.stores, chat_id=self.chat_id))
        found["collection"] = self.chat_id in self.stores.vectors.chat_ids()
        if self.settings.sqlalchemy_url.startswith("sqlite"):
            found |= self._sqlite()
        else:
            found |= self._postgres()
        return found

    def writes(self) -> int | None:
        """A number every keyword write moves: SQLite, the chat's ``chat_version``; the
        PostgreSQL index, its chunk rows' identity (an upsert takes a number even when it
        replaces a row; no other test runs meanwhile)."""
        if self.settings.sqlalchemy_url.startswith("sqlite"):
            version: int | None = self._sqlite()["version"]
            return version
        with psycopg.connect(self._dsn()) as db:
            row = db.execute(
                "SELECT last_value FROM pg_sequences WHERE sequencename ="
                " pg_get_serial_sequence('keyword_chunks', 'doc')::regclass::name"
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def _dsn(self) -> str:
        return "postgresql://" + self.settings.sqlalchemy_url.split("://", 1)[1]

    def _sqlite(self) -> dict[str, Any]:
        path = self.settings.ragline_data_dir / SQLITE_FILE
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            table = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = ?", (table_name(self.chat_id),)
            ).fetchone()[0]
            version = db.execute(
                "SELECT version FROM chat_version WHERE chat_id = ?", (self.chat_id,)
            ).fetchone()
        return {"keyword_table": table, "version": version[0] if version else None}

    def _postgres(self) -> dict[str, Any]:
        """Postings of the chat's scope (those of deleted chunks included)."""
        with psycopg.connect(self._dsn()) as db:
            row = db.execute(
                "SELECT count(*) FROM keyword_postings WHERE scope = %s",
                (scope_key(self.owner_id, self.chat_id),),
            ).fetchone()
        return {"postings": row[0] if row else 0}


@dataclass(frozen=True)
class Race:
    """The app with its worker, its embedding provider behind the gate."""

    client: httpx.AsyncClient
    state: Any
    gate: Gate

    async def delete_mid_ingestion(self, url: Callable[[str, str], str]) -> tuple[Leftovers, Any]:
        """Upload a big file; once 2 batches are stored and the 3rd is held at the provider,
        DELETE ``url(chat id, file id)`` and wait for its purge; then let every batch
        through and wait until that job has ended (nothing pending in the sink, no write
        cycle running) and no purge is pending. Returns what to read and ``writes()`` as
        the purge left it."""
        client, state, gate = self.client, self.state, self.gate
        chat = await create_chat(client, "alice", title="delete race")
        text = long_text(60, marker=uuid.uuid4().hex)  # unique: no embedding cache hit
        [file_id] = accepted_ids(await upload(client, chat["id"], [("big.txt", text.encode())]))
        stores = state.documents.stores
        gate.permits.release(2)
        await until(lambda: gate.arrived >= 3, "the third batch at the provider")
        await until(lambda: stores.vectors.count(chat["id"]) == 2 * BATCH, "2 batches stored")
        await until(lambda: len(set(_sink().cycles)) == 1, "the writer idle")
        async with state.sessionmaker() as session:
            owner = await session.scalar(select(User.id).where(User.subject == "alice"))
        leftovers = Leftovers(state.settings, stores, str(owner), chat["id"], file_id)
        assert leftovers.of_file()["vectors"] == 2 * BATCH  # a file mid-ingestion

        deleted = await client.delete(url(chat["id"], file_id), headers=ALICE)
        assert deleted.status_code == 204
        await wait_no_purges(state)  # the purge ran while the 3rd batch was held
        purged = leftovers.writes()
        gate.permits.release(10_000)
        await until(_sink_idle, "the deleted file's job to end")
        await wait_no_purges(state)
        return leftovers, purged


@pytest.fixture
async def race(doc_settings: Settings, db: Any) -> AsyncIterator[Race]:
    with gated_embedder() as gate:
        async with running_app(_settings(doc_settings, gate)) as (client, state):
            yield Race(client, state, gate)
            await wait_no_purges(state, within=0)


async def _stays(read: Callable[[], Any], expected: Any) -> None:
    """``read()`` equals ``expected`` every 0.5 s for 30 s."""
    for _ in range(60):
        assert read() == expected
        await asyncio.sleep(0.5)


async def test_deleted_assistant_leaves_nothing(race: Race) -> None:
    leftovers, _ = await race.delete_mid_ingestion(lambda chat, _: f"/chats/{chat}")
    nothing: dict[str, Any] = {"vectors": 0, "keywords": 0, "collection": False}
    if leftovers.settings.sqlalchemy_url.startswith("sqlite"):
        nothing |= {"keyword_table": 0, "version": None}
    else:
        nothing |= {"postings": 0}
    await _stays(leftovers.of_chat, nothing)


async def test_deleted_file_leaves_nothing(race: Race) -> None:
    leftovers, purged = await race.delete_mid_ingestion(
        lambda chat, file: f"/chats/{chat}/files/{file}"
    )
    # The held batch was never written, not even written and undone since.
    assert leftovers.writes() == purged
    nothing = {"vectors": 0, "keywords": 0}
    chat_nothing: dict[str, Any] = {**nothing, "collection": True}  # the chat still exists
    if leftovers.settings.sqlalchemy_url.startswith("sqlite"):
        chat_nothing |= {"keyword_table": 1, "version": purged}
    else:
        chat_nothing |= {"postings": 0}  # none of the deleted chunks' postings
    await _stays(lambda: (leftovers.of_file(), leftovers.of_chat()), (nothing, chat_nothing))
