"""/readyz against ragline's real dependencies, each private to this module so that it can
be stopped: a PostgreSQL cluster, Redis (sessions and the ingestion queue), a Chroma server,
and loopback stand-ins for the model providers (Ollama for chat, an OpenAI-compatible
server for embeddings). Each dependency is stopped in turn, then started again on its port.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ragline.config import Settings
from ragline.db.migrate import upgrade
from tests.fake_providers import CHAT_MODEL, embedding_server, ollama_chat_server
from tests.helpers import running_app
from tests.private_postgres import PostgresCluster, postgres_cluster
from tests.services import chroma_server, redis_server

EMBED_MODEL = "BAAI/bge-m3"
LLM_MODEL = "SmolLM2-135M-Instruct"
DEPENDENCIES = {"database", "redis", "queue", "chroma"}
MODELS = {"llm", "embeddings"}
ADVISORY = MODELS | {"ingestion"}  # reported, never failing readiness


class Restartable:
    """A service that a test stops and starts again on the same port."""

    def __init__(self, start: Callable[[int | None], AbstractContextManager[int]]) -> None:
        self._start = start
        self._running: ExitStack | None = None
        self.port: int | None = None

    def up(self) -> None:
        if self._running is None:
            stack = ExitStack()
            self.port = stack.enter_context(self._start(self.port))
            self._running = stack

    def down(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None


class PostgresService:
    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster

    def up(self) -> None:
        if not self.cluster.running:
            self.cluster.start()

    def down(self) -> None:
        self.cluster.stop()


@dataclass
class Stack:
    settings: Settings
    services: dict[str, Restartable | PostgresService]


def _chroma(path: Path) -> Callable[[int | None], AbstractContextManager[int]]:
    @contextmanager
    def start(port: int | None) -> Iterator[int]:
        with chroma_server(path, port=port) as (_, started, _process):
            yield started

    return start


def _provider_port(server: AbstractContextManager[Any]) -> AbstractContextManager[int]:
    @contextmanager
    def started() -> Iterator[int]:
        with server as provider:
            yield int(provider.url.rsplit(":", 1)[1])

    return started()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("readyz")
    with ExitStack() as running:
        cluster = running.enter_context(postgres_cluster())
        with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("CREATE DATABASE ragline")
        upgrade(cluster.url("ragline"))
        services: dict[str, Restartable | PostgresService] = {
            "postgres": PostgresService(cluster),
            "redis": Restartable(lambda port: redis_server(root, port=port)),
            "chroma": Restartable(_chroma(root / "chroma")),
            "llm": Restartable(lambda port: _provider_port(ollama_chat_server(port=port or 0))),
            "embeddings": Restartable(
                lambda port: _provider_port(
                    embedding_server(models=[EMBED_MODEL, "other-model"], port=port or 0)
                )
            ),
        }
        for service in services.values():
            service.up()
            running.callback(service.down)

        def port(name: str) -> int:
            service = services[name]
            assert isinstance(service, Restartable) and service.port is not None
            return service.port

        settings = Settings(
            _env_file=None,
            database_url=cluster.url("ragline"),
            redis_host="127.0.0.1",
            redis_port=port("redis"),
            ingest_queue="redis",
            chroma_host="127.0.0.1",
            chroma_port=port("chroma"),
            chroma_collection_name=f"readyz-{uuid.uuid4().hex[:8]}",
            embedded_worker=False,
            llm_provider="ollama",
            ollama_host="127.0.0.1",
            ollama_port=port("llm"),
            ollama_model=CHAT_MODEL,
            embed_provider="ionos",
            ionos_base_url=f"http://127.0.0.1:{port('embeddings')}/v1",
            ionos_embed_model=EMBED_MODEL,
            ragline_data_dir=root / "data",
        )
        yield Stack(settings=settings, services=services)


async def _readyz(client: httpx.AsyncClient, status_code: int) -> dict[str, Any]:
    started = time.monotonic()
    response = await client.get("/readyz")
    assert time.monotonic() - started < 3.0  # every check is bounded (2 s)
    assert response.status_code == status_code, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == ("ready" if status_code == 200 else "not_ready")
    return body


def _not_ok(body: dict[str, Any]) -> dict[str, str]:
    return {name: c["status"] for name, c in body["checks"].items() if c["status"] != "ok"}


async def _until_ready(client: httpx.AsyncClient) -> None:
    for _ in range(75):  # 15 s
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("not ready again after the restart")


async def test_all_up_is_ready_and_says_what_it_checked(stack: Stack) -> None:
    async with running_app(stack.settings) as (client, _):
        body = await _readyz(client, 200)
    checks = body["checks"]
    assert set(checks) == DEPENDENCIES | ADVISORY
    assert all(check["status"] == "ok" and check["latency_ms"] >= 0 for check in checks.values())
    assert checks["queue"]["backend"] == "redis"
    assert checks["llm"] | {"latency_ms": 0} == {
        "status": "ok",
        "provider": "ollama",
        "model": CHAT_MODEL,
        "latency_ms": 0,
    }
    assert (checks["embeddings"]["provider"], checks["embeddings"]["model"]) == (
        "ionos",
        EMBED_MODEL,
    )


@pytest.mark.parametrize(
    ("service", "down"),
    [("postgres", {"database"}), ("redis", {"redis", "queue"}), ("chroma", {"chroma"})],
)
async def test_a_stopped_dependency_makes_it_not_ready(
    stack: Stack, service: str, down: set[str]
) -> None:
    async with running_app(stack.settings) as (client, _):
        await _readyz(client, 200)
        stack.services[service].down()
        try:
            body = await _readyz(client, 503)
        finally:
            stack.services[service].up()
        assert _not_ok(body) == dict.fromkeys(down, "down")  # models and the rest still ok
        assert all(body["checks"][name]["error"] for name in down)
        await _until_ready(client)  # and it recovers once the dependency is back


async def test_a_stopped_model_provider_is_degraded_but_ready(stack: Stack) -> None:
    async with running_app(stack.settings) as (client, _):
        for service in ("llm", "embeddings"):
            stack.services[service].down()
            try:
                body = await _readyz(client, 200)
            finally:
                stack.services[service].up()
            assert _not_ok(body) == {service: "degraded"}
            assert body["checks"][service]["error"] == "ConnectError"
        await _readyz(client, 200)


async def test_a_provider_without_the_configured_model_is_degraded(stack: Stack) -> None:
    missing = stack.settings.model_copy(
        update={"ollama_model": "not-pulled", "ionos_embed_model": "not-served"}
    )
    async with running_app(missing) as (client, _):
        body = await _readyz(client, 200)
    assert _not_ok(body) == {"llm": "degraded", "embeddings": "degraded"}
    assert body["checks"]["llm"]["error"] == "Ollama does not have not-pulled"
    assert body["checks"]["embeddings"]["error"] == "the provider does not list not-served"


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    """The embedded default: SQLite database and queue file, embedded Chroma, local models."""
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ragline.db'}",
        redis_host=None,
        chroma_host=None,
        ingest_queue="sqlite",
        llm_provider="local",
        embed_provider="local",
        ragline_data_dir=tmp_path / "data",
    )
    upgrade(settings.sqlalchemy_url)
    return settings


async def test_embedded_default_checks_its_queue_file_and_local_models(embedded: Settings) -> None:
    async with running_app(embedded) as (client, state):
        body = await _readyz(client, 200)
        queue_file = Path(state.documents.queue.huey.storage.filename)
        for suffix in ("", "-wal", "-shm"):  # the file is gone (a lost volume, say)
            queue_file.with_name(queue_file.name + suffix).unlink(missing_ok=True)
        gone = await _readyz(client, 503)
    assert set(body["checks"]) == {"database", "queue", "llm", "embeddings", "ingestion"}
    assert _not_ok(body) == {}
    assert body["checks"]["queue"]["backend"] == "sqlite"
    llm = body["checks"]["llm"]
    assert (llm["provider"], llm["model"], llm["loaded"]) == ("local", LLM_MODEL, False)
    assert body["checks"]["embeddings"]["model"] == "all-MiniLM-L6-v2"
    assert _not_ok(gone) == {"queue": "down"}
    assert gone["checks"]["queue"]["error"] == "OperationalError"


async def test_an_unprepared_local_embedder_is_degraded(embedded: Settings, tmp_path: Path) -> None:
    settings = embedded.model_copy(update={"ragline_model_cache": tmp_path / "no-models"})
    async with running_app(settings) as (client, _):
        body = await _readyz(client, 200)
    assert _not_ok(body) == {"embeddings": "degraded"}
    assert body["checks"]["embeddings"]["error"] == "LocalModelMissing"
