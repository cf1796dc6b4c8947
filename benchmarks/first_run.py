"""What a new user meets: ``make run`` on a fresh clone with empty pip and ragline caches.

Clones the repository (a commit, default HEAD) into a scratch folder, points pip's cache
and ``XDG_CACHE_HOME`` (ragline's model and wheel caches) at empty folders, runs ``make
run`` on a free port and measures, from the start of ``make run``:

- time to ``/healthz`` answering 200, and whether a search answers then;
- the README walkthrough: create an assistant, upload a document, wait for ``indexed``,
  ask on the streaming endpoint; time to its first ``delta`` event (or to a 503
  ``ModelWarmingUp``, retried until the model is ready);
- the size of the virtual environment ``make run`` built and its number of distributions.

Standard library only: it runs before any virtual environment exists.

    python3 benchmarks/first_run.py [--runs 2] [--commit HEAD] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCUMENT = (
    "Ragline walkthrough note.\n\nThe Helios project was started in 2019 by Mara Lindqvist "
    "in Uppsala. Its budget for 2024 was 4.2 million euros, spent mostly on field sensors.\n"
)
QUESTION = "Who started the Helios project?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def post_json(url: str, body: object) -> tuple[int, dict[str, object]]:
    status, raw = request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    return status, (json.loads(raw) if raw else {})


def upload(url: str, name: str, content: bytes) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return request(
        url, data=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )


def first_delta(url: str, body: object, deadline: float) -> tuple[str, float]:
    """Ask until the stream yields a delta: ('delta', t) or ('failed: …', t)."""
    while time.monotonic() < deadline:
        req = urllib.request.Request(  # noqa: S310
            url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310
                for line in resp:
                    if line.startswith(b"event: delta"):
                        return "delta", time.monotonic()
                    if line.startswith(b"event: error"):
                        return f"failed: {resp.read(500)!r}", time.monotonic()
        except urllib.error.HTTPError as exc:
            detail = exc.read()
            if exc.code == 503 and b"ModelWarmingUp" in detail:
                time.sleep(2)
                continue
            return f"failed: {exc.code} {detail[:300]!r}", time.monotonic()
    return "failed: timed out", time.monotonic()


def venv_figures(venv: Path) -> tuple[float, int]:
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    site = next(venv.glob("lib/python*/site-packages"))
    count = len(list(site.glob("*.dist-info")))
    return size / 2**30, count


def one_run(commit: str, keep: Path | None) -> dict[str, object]:
    scratch = Path(tempfile.mkdtemp(prefix="ragline-first-run-"))
    clone = scratch / "ragline"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RAGLINE_", "PIP_"))},
        "PIP_CACHE_DIR": str(scratch / "pip-cache"),
        "XDG_CACHE_HOME": str(scratch / "cache"),
        "PORT": str(port),
        "RAGLINE_DATA_DIR": str(scratch / "data"),
    }
    base = f"http://127.0.0.1:{port}"
    log = (scratch / "make-run.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    result: dict[str, object] = {"commit": commit, "port": port, "log": str(log.name)}
    try:
        deadline = started + 3600
        while request(f"{base}/healthz")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                result["failed"] = "make run exited or timed out before /healthz"
                return result
            time.sleep(0.5)
        result["healthz_s"] = round(time.monotonic() - started, 1)
        status, chat = post_json(f"{base}/chats", {"title": "Walkthrough"})
        chat_id = str(chat.get("id"))
        status, _ = upload(f"{base}/chats/{chat_id}/upload", "helios.txt", DOCUMENT.encode())
        while True:
            _, raw = request(f"{base}/chats/{chat_id}/files")
            items = json.loads(raw).get("items", []) if raw else []
            if items and items[0].get("status") in ("indexed", "failed"):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.3)
        result["indexed_s"] = round(time.monotonic() - started, 1)
        status, _ = post_json(f"{base}/chats/{chat_id}/search", {"query": QUESTION})
        result["search_status"] = status
        outcome, at = first_delta(
            f"{base}/chats/{chat_id}/chat/stream", {"text": QUESTION}, deadline
        )
        result["first_delta"] = outcome
        result["first_delta_s"] = round(at - started, 1)
        size_gib, count = venv_figures(clone / ".venv")
        result["venv_gib"] = round(size_gib, 2)
        result["distributions"] = count
        return result
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(scratch / "make-run.log", keep / f"make-run-{port}.log")
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--keep", type=Path, help="Copy each run's make log here.")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", args.commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    runs = []
    for number in range(args.runs):
        run = one_run(commit, args.keep)
        print(f"run {number + 1}: {json.dumps(run)}", flush=True)
        runs.append(run)
    for key in ("healthz_s", "indexed_s", "first_delta_s", "venv_gib", "distributions"):
        values = [float(r[key]) for r in runs if isinstance(r.get(key), int | float)]
        if values:
            print(f"median {key}: {statistics.median(values)}")


if __name__ == "__main__":
    main()
