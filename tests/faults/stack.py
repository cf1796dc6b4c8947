"""A production-shaped ragline whose dependencies the fault tests stop and start again:
a private Redis (sessions, rate limits, the ingestion queue), a Chroma server, an Ollama
chat server and an OpenAI-compatible embedding server (loopback stand-ins speaking their
wire formats), a `ragline worker` process, and a database of its own on the machine's
PostgreSQL (whose backends a test may terminate, never the server itself).

The API runs in-process (``running_app``) with ``EMBEDDED_WORKER=false``, as behind a load
balancer; the worker is a separate process, as in production.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ragline.config import Settings
from ragline.db.migrate import upgrade
from tests.fake_providers import CHAT_MODEL, embedding_server, ollama_chat_server
from tests.health.test_readiness import Restartable, _chroma, _provider_port
from tests.services import RAGLINE, redis_server, stop_process

EMBED_MODEL = "fake-embedder"
USER = {"X-Ragline-Dev-User": "alice"}
SERVICES = ("redis", "chroma", "llm", "embeddings", "worker")


def _worker(env: dict[str, str], log: Path) -> Callable[[int | None], AbstractContextManager[int]]:
    """`ragline worker` as a restartable service (its "port" is unused)."""

    @contextmanager
    def start(_port: int | None) -> Iterator[int]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                [RAGLINE, "worker"], env=env, stdout=out, stderr=out, cwd=log.parent
            )
        try:
            yield 0
        finally:
            stop_process(process, timeout=30)

    return start


@dataclass
class FaultStack:
    """One ragline deployment; ``services[name].down()`` / ``.up()`` stop and restart."""

    settings: Settings
    database: str
    admin_dsn: str
    services: dict[str, Restartable] = field(default_factory=dict)

    def terminate_backends(self) -> int:
        """End every server process connected to this stack's database (as an operator's
        `pg_terminate_backend`, or a failover, does); returns how many were ended."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            ).fetchall()
        return sum(1 for (ended,) in rows if ended)

    def attempts(self, file_id: str) -> tuple[str, int]:
        """A file's status and its ``attempts`` counter (not in the API), read directly."""
        with psycopg.connect(self.admin_dsn.rsplit("/", 1)[0] + f"/{self.database}") as db:
            row = db.execute(
                "SELECT status, attempts FROM chat_files WHERE id = %s", (file_id,)
            ).fetchone()
        assert row is not None, file_id
        return str(row[0]), int(row[1])


@contextmanager
def fault_stack(
    root: Path, *, admin_dsn: str, database_url: str, **overrides: Any
) -> Iterator[FaultStack]:
    """Everything started; ``database_url`` is a fresh database (created by the caller),
    migrated here. ``overrides``: further settings for the API and the worker."""
    root.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(1) as thread:  # Alembic's env runs an event loop of its own
        thread.submit(upgrade, database_url).result()
    database = database_url.rsplit("/", 1)[1]
    with ExitStack() as running:
        services = {
            "redis": Restartable(lambda port: redis_server(root, port=port)),
            "chroma": Restartable(_chroma(root / "chroma")),
            "llm": Restartable(lambda port: _provider_port(ollama_chat_server(port=port or 0))),
            "embeddings": Restartable(
                lambda port: _provider_port(embedding_server(models=[EMBED_MODEL], port=port or 0))
            ),
        }
        for service in services.values():
            service.up()
            running.callback(service.down)

        def port(name: str) -> int:
            found = services[name].port
            assert found is not None
            return found

        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_host": "127.0.0.1",
            "redis_port": port("redis"),
            "ingest_queue": "redis",
            "chroma_host": "127.0.0.1",
            "chroma_port": port("chroma"),
            "chroma_collection_name": f"faults-{uuid.uuid4().hex[:8]}",
            "embedded_worker": False,
            "llm_provider": "ollama",
            "ollama_host": "127.0.0.1",
            "ollama_port": port("llm"),
            "ollama_model": CHAT_MODEL,
            "embed_provider": "ionos",
            "ionos_base_url": f"http://127.0.0.1:{port('embeddings')}/v1",
            "ionos_embed_model": EMBED_MODEL,
            "ragline_data_dir": root / "data",
            "ingest_warm_up": False,
            "llm_warm_up": False,
            # The probes ask far more often than a user may (limits: tests/auth).
            "rate_limit_chat": "",
            "rate_limit_upload": "",
            **overrides,
        }
        settings = Settings(_env_file=None, **values)
        env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
        env |= {name.upper(): str(value) for name, value in values.items()}
        services["worker"] = Restartable(_worker(env, root / "worker.log"))
        services["worker"].up()
        running.callback(services["worker"].down)
        yield FaultStack(
            settings=settings, database=database, admin_dsn=admin_dsn, services=services
        )


async def final_status(
    client: httpx.AsyncClient, chat_id: str, file_id: str, *, within: float
) -> dict[str, Any]:
    """Poll a file until ``indexed`` or ``failed`` (an outage's retries included)."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/chats/{chat_id}/files/{file_id}", headers=USER)
        if response.status_code == 200 and response.json()["status"] in ("indexed", "failed"):
            return response.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"not final after {within} s: {response.text}"
        await asyncio.sleep(0.5)
