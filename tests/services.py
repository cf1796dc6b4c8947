"""Real service processes the tests start themselves: a Chroma server on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CHROMA = str(Path(sys.executable).parent / "chroma")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


@contextmanager
def chroma_server(path: Path) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    process = subprocess.Popen(
        [CHROMA, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", process=process)
        yield "127.0.0.1", port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


RAGLINE = str(Path(sys.executable).parent / "ragline")


def embedded_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """Only the embedded default: no database, Redis or provider variables at all."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "RAGLINE_MODEL_CACHE", "XDG_CACHE_HOME"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    return env | {"RAGLINE_DATA_DIR": str(data_dir), "PORT": str(port)} | extra


@contextmanager
def ragline_server(
    workdir: Path, env: dict[str, str], *, migrate: bool = True
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`ragline db upgrade` then `ragline serve`, as `make run` does; yields the base URL."""
    if migrate:
        subprocess.run([RAGLINE, "db", "upgrade"], env=env, cwd=workdir, check=True, timeout=120)
    log = (workdir / f"serve-{env['PORT']}.log").open("ab")
    process = subprocess.Popen([RAGLINE, "serve"], env=env, cwd=workdir, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_http(f"{base}/healthz", timeout=60, process=process)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
