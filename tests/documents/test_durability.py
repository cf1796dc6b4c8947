"""The real server process: SIGKILL mid-job and restart; ingestion with no network at all;
`ragline ingest` against a running server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from ragline.config import Settings
from ragline.rag.ingest.store import get_chunks
from ragline.rag.providers import build_stores
from tests.documents.helpers import long_text
from tests.services import RAGLINE, embedded_env, free_port, ragline_server

DEV = {"X-Ragline-Dev-User": "alice"}


def _poll(client: httpx.Client, chat_id: str, file_id: str) -> dict[str, object]:
    response = client.get(f"/chats/{chat_id}/files/{file_id}", headers=DEV)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def _stored_chunks(data_dir: Path, chat_id: str, file_id: str) -> list[dict[str, object]]:
    stores = build_stores(Settings(_env_file=None, ragline_data_dir=data_dir))  # type: ignore[call-arg]
    try:
        ids = sorted(stores.vectors.ids(chat_id, file_id=file_id))
        assert stores.keywords.count(file_id=file_id) == len(ids)
        return [chunk["metadata"] for chunk in get_chunks(stores, chat_id, ids).values()]
    finally:
        stores.keywords.close()


def test_sigkill_mid_job_then_restart_finishes_without_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = embedded_env(data, free_port(), EMBED_BATCH_SIZE="4")
    content = long_text(400).encode()
    with (
        ragline_server(tmp_path, env) as (base, process),
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        chat = client.post("/chats", json={"title": "durable"}, headers=DEV).json()
        response = client.post(
            f"/chats/{chat['id']}/upload", files={"files": ("big.txt", content)}, headers=DEV
        )
        file_id = response.json()["files"][0]["file_id"]
        deadline = time.monotonic() + 120
        while True:
            status = _poll(client, chat["id"], file_id)
            progress = status["progress"]
            assert isinstance(progress, dict)
            if status["status"] == "embedding" and progress["done"] >= 8:
                break
            assert status["status"] not in ("indexed", "failed"), (
                f"job ended before the kill: {status}"
            )
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    killed_at = int(progress["done"])
    total = int(progress["total"])
    assert 8 <= killed_at < total

    with (
        ragline_server(tmp_path, env, migrate=False) as (base, _),
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        deadline = time.monotonic() + 180
        while (status := _poll(client, chat["id"], file_id))["status"] not in ("indexed", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["status"] == "indexed", status
    chunks = _stored_chunks(data, chat["id"], file_id)
    assert len(chunks) == total
    assert sorted(int(c["ordinal"]) for c in chunks) == list(range(total))  # each chunk once


def test_ingest_path_works_without_network(tmp_path: Path) -> None:
    """The local embedder and the whole ingest path inside a network namespace that has
    nothing but loopback (`unshare -n`)."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.fail("unshare -n is not available: cannot prove the no-network property here")
    script = tmp_path / "offline.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, json, socket, sys
            import httpx
            from asgi_lifespan import LifespanManager
            from ragline.config import Settings
            from ragline.db.migrate import upgrade
            from ragline.main import create_app

            try:
                socket.create_connection(("pypi.org", 443), timeout=3)
                sys.exit("network is reachable: the test proves nothing")
            except OSError:
                pass
            settings = Settings(_env_file=None, ragline_data_dir={str(tmp_path / "data")!r})
            upgrade(settings.sqlalchemy_url)

            async def main():
                app = create_app(settings)
                async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
                    transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 1))
                    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                        chat = (await c.post("/chats", json={{"title": "offline"}})).json()
                        text = b"# Offline\\n\\nEmbedding with no network at all."
                        files = [("files", ("a.md", text))]
                        url = f"/chats/{{chat['id']}}"
                        upload = (await c.post(f"{{url}}/upload", files=files)).json()
                        file_id = upload["files"][0]["file_id"]
                        for _ in range(600):
                            body = (await c.get(f"{{url}}/files/{{file_id}}")).json()
                            if body["status"] in ("indexed", "failed"):
                                break
                            await asyncio.sleep(0.1)
                        print(json.dumps(body))

            asyncio.run(main())
            """
        )
    )
    env = embedded_env(tmp_path / "data", 4000) | {"HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["status"] == "indexed", body
    assert body["progress"]["done"] >= 1


def test_cli_ingest_through_running_server(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one.md").write_text("# One\n\nThe first file talks about lighthouses.")
    (docs / "two.txt").write_text(long_text(5))
    (docs / "empty.txt").write_text("")
    (docs / "large.txt").write_text("Lighthouses are tall. " * 2000)  # 44 kB
    limits = {"UPLOAD_MAX_BYTES": "32768", "UPLOAD_MAX_REQUEST_BYTES": "262144"}
    assert (docs / "two.txt").stat().st_size < 32768
    env = embedded_env(tmp_path / "data", free_port(), **limits)
    with ragline_server(tmp_path, env) as (base, _), httpx.Client(base_url=base) as client:
        chat = client.post("/chats", json={"title": "cli"}, headers=DEV).json()
        result = subprocess.run(
            [RAGLINE, "ingest", str(docs), "--chat", chat["id"], "--url", base, "--user", "alice"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 1, result.stderr  # empty.txt and large.txt are rejected
        assert "empty.txt: rejected" in result.stderr
        assert "large.txt: rejected" in result.stderr and "UPLOAD_MAX_BYTES" in result.stderr
        files = client.get(f"/chats/{chat['id']}/files", headers=DEV).json()["items"]
        assert sorted(f["name"] for f in files) == ["one.md", "two.txt"]
        assert all(f["status"] == "indexed" for f in files)
        assert "chunks/s" in result.stderr
