"""Production shape: the API without in-process workers, `ragline worker` processes taking
jobs from Redis, a Chroma server, PostgreSQL; and `ragline reindex` after a model change."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ragline.config import QueueBackend, Settings
from ragline.db.engine import build_engine
from ragline.db.migrate import upgrade
from ragline.documents.queue import build_queue
from ragline.documents.reindex import reindex_stale
from ragline.models import Base
from tests.conftest import REDIS_HOST, REDIS_PORT, ThrowawayPostgres
from tests.documents.helpers import accepted_ids, long_text, upload, wait_final
from tests.fake_providers import embedding_server
from tests.helpers import create_chat, running_app
from tests.services import RAGLINE


@pytest.fixture
def production(
    throwaway_postgres: ThrowawayPostgres, chroma: tuple[str, int], tmp_path: Path
) -> Iterator[Settings]:
    url = throwaway_postgres.create("prod")
    upgrade(url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        redis_host=REDIS_HOST,
        redis_port=REDIS_PORT,
        chroma_host=chroma[0],
        chroma_port=chroma[1],
        chroma_collection_name=f"prod-{uuid.uuid4().hex[:12]}",
        ingest_queue=QueueBackend.REDIS,
        embedded_worker=False,
        ragline_data_dir=tmp_path / "shared-data",  # a shared mount in a real deployment
        embed_batch_size=8,
    )
    yield settings
    build_queue(settings).huey.flush()  # this run's queue keys in the shared Redis


def _worker_env(settings: Settings) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "TMPDIR", "RAGLINE_MODEL_CACHE", "XDG_CACHE_HOME"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    return env | {
        "DATABASE_URL": settings.sqlalchemy_url,
        "REDIS_HOST": str(settings.redis_host),
        "REDIS_PORT": str(settings.redis_port),
        "CHROMA_HOST": str(settings.chroma_host),
        "CHROMA_PORT": str(settings.chroma_port),
        "CHROMA_COLLECTION_NAME": settings.chroma_collection_name,
        "INGEST_QUEUE": "redis",
        "EMBEDDED_WORKER": "false",
        "RAGLINE_DATA_DIR": str(settings.ragline_data_dir),
        "EMBED_BATCH_SIZE": "8",
    }


@pytest.fixture
def worker_logs(production: Settings, tmp_path: Path) -> Iterator[list[Path]]:
    """Two `ragline worker` processes; stopped with SIGTERM, which must end them cleanly."""
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(
            [RAGLINE, "worker"],
            env=_worker_env(production),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    yield logs
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]


async def test_worker_processes_take_jobs_from_redis(
    production: Settings, worker_logs: list[Path]
) -> None:
    engine = build_engine(production.sqlalchemy_url)
    try:
        async with running_app(production) as (client, state):
            assert state.documents.consumer is None  # no in-process worker
            chat = await create_chat(client, "alice", title="production")
            ids = []
            for i in range(6):  # one upload request, hence one queue message, each
                content = long_text(8, marker=f"doc{i}").encode()
                ids += accepted_ids(await upload(client, chat["id"], [(f"doc{i}.txt", content)]))
            bodies = [await wait_final(client, chat["id"], file_id, limit_s=120) for file_id in ids]
            vectors = state.documents.stores.vectors
            for body in bodies:
                assert body["status"] == "indexed", body
                assert vectors.count(file_id=body["id"]) == body["progress"]["total"]
    finally:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
        await engine.dispose()
    logs = "".join(log.read_text() for log in worker_logs)
    assert logs.count("Huey consumer started") == 2
    # Which worker takes which message is the queue's business, and a message may arrive
    # twice (start-up recovery re-sends unfinished files): each file is ingested once.
    for file_id in ids:
        assert logs.count(f"ingest {file_id} v1:") == 1, file_id


async def test_reindex_after_model_change(
    settings: Settings, db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    local = settings.model_copy(update={"chroma_collection_name": f"re-{uuid.uuid4().hex[:8]}"})
    async with running_app(local) as (client, state):
        chat = await create_chat(client, "alice", title="models")
        [file_id] = accepted_ids(
            await upload(client, chat["id"], [("a.txt", long_text(4).encode())])
        )
        before = await wait_final(client, chat["id"], file_id)
    assert (before["embedding_model"], before["embedding_dimension"]) == ("all-MiniLM-L6-v2", 384)

    with embedding_server(dimension=64) as server:
        other = local.model_copy(
            update={
                "embed_provider": "openai",
                "ionos_base_url": f"{server.url}/v1",
                "ionos_embed_model": "fake-embed-64",
            }
        )
        caplog.set_level(logging.WARNING)
        async with running_app(other):
            pass
        assert "run `ragline reindex`" in caplog.text
        assert await asyncio.to_thread(reindex_stale, other) == 1

        async with running_app(other) as (client, state):
            after = await wait_final(client, chat["id"], file_id)
            vectors = state.documents.stores.vectors
            collection = vectors.client.get_collection(vectors.collection_name(chat["id"]))
            stored = collection.get(where={"file_id": file_id}, include=["embeddings"])
    assert after["status"] == "indexed"
    assert (after["embedding_model"], after["embedding_dimension"]) == ("fake-embed-64", 64)
    assert after["version"] == before["version"] + 1
    assert len(stored["ids"]) == after["progress"]["total"]
    assert all(len(vector) == 64 for vector in stored["embeddings"])
