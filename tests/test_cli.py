"""The real server process: `ragline db upgrade` then `ragline serve`, as `make run` does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

RAGLINE = str(Path(sys.executable).parent / "ragline")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _embedded_env(data_dir: Path, port: int) -> dict[str, str]:
    """Only the embedded default: no database, Redis or provider variables at all."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    return env | {"RAGLINE_DATA_DIR": str(data_dir), "PORT": str(port)}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = _embedded_env(tmp_path / "data", port)
    subprocess.run([RAGLINE, "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=120)
    process = subprocess.Popen(
        [RAGLINE, "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"server did not start:\n{output}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_embedded_default(served: str, tmp_path: Path) -> None:
    assert (tmp_path / "data" / "ragline.db").is_file()
    with httpx.Client(base_url=served, timeout=10) as client:
        assert client.get("/readyz").json()["checks"].keys() == {"database"}
        docs = client.get("/docs")
        assert docs.status_code == 200 and "/static/docs/swagger-ui-bundle.js" in docs.text
        assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
        created = client.post("/chats", json={"title": "over the wire"})
        assert created.status_code == 201
        assert client.get("/chats").json()["total"] == 1


def test_serve_refuses_public_bind_in_development(tmp_path: Path) -> None:
    env = _embedded_env(tmp_path / "data", _free_port())
    result = subprocess.run(
        [RAGLINE, "serve", "--host", "0.0.0.0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to bind" in result.stderr


def test_production_without_identity_refuses_to_start(tmp_path: Path) -> None:
    env = _embedded_env(tmp_path / "data", _free_port()) | {"RAGLINE_ENV": "production"}
    result = subprocess.run(
        [RAGLINE, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no identity provider" in result.stderr
