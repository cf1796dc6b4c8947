"""``ragline ingest``: upload through a running server (which owns the stores) and follow
the files to ``indexed`` with a progress bar (files, chunks/s).

Returns 0, or 1 when a file was rejected or failed; a server that does not answer or
answers with an error raises :class:`ragline.client.ClientError` (one sentence)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragline.client import json_body, server_errors

FINAL = {"indexed", "failed"}
POLL_S = 0.5
REQUEST_BYTES = 64 * 1024 * 1024
"""Files per request stop here (the server refuses a request over UPLOAD_MAX_REQUEST_BYTES,
256 MiB by default, with 413); a larger file goes alone."""
TIMEOUT = httpx.Timeout(300.0, connect=5.0)  # uploads of large files take a while


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            out.append(path)
    return out


def _batches(items: list[Path], size: int) -> Iterator[list[Path]]:
    """At most ``size`` files and :data:`REQUEST_BYTES` a request (unless one file is more)."""
    group: list[Path] = []
    total = 0
    for path in items:
        length = path.stat().st_size
        if group and (len(group) >= size or total + length > REQUEST_BYTES):
            yield group
            group, total = [], 0
        group.append(path)
        total += length
    if group:
        yield group


def _upload(client: httpx.Client, chat_id: str, group: list[Path]) -> list[dict[str, Any]]:
    """Each file's outcome. A request the server finds too large (413: a file over
    UPLOAD_MAX_BYTES, or the whole request) is sent again a file at a time, so only the
    file over the limit is rejected."""
    with contextlib.ExitStack() as stack:
        parts = [("files", (path.name, stack.enter_context(path.open("rb")))) for path in group]
        response = client.post(f"/chats/{chat_id}/upload", files=parts)
    if response.status_code != 413:
        return _upload_results(response)
    if len(group) > 1:
        return [result for path in group for result in _upload(client, chat_id, [path])]
    return [{"name": group[0].name, "status": "rejected", "reason": _detail(response)}]


def _detail(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return str(body["detail"])
    return f"{response.status_code} {response.reason_phrase}"


def _statuses(client: httpx.Client, chat_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        body = json_body(client.get(f"/chats/{chat_id}/files", params={"page": page, "size": 100}))
        found.update({item["id"]: item for item in body["items"]})
        if page >= body["pages"]:
            return found
        page += 1


def _summary(client: httpx.Client, chat_id: str) -> dict[str, Any]:
    return json_body(client.get(f"/chats/{chat_id}/ingestion"))  # type: ignore[no-any-return]


def ingest_paths(
    paths: list[Path], *, chat_id: str, url: str, user: str | None, token: str | None, batch: int
) -> int:
    console = Console(stderr=True)
    headers = {"X-Ragline-Dev-User": user} if user else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    files = _files(paths)
    waiting: set[str] = set()
    failures = 0
    client = httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT)
    with server_errors(url), client:
        for group in _batches(files, batch):
            for result in _upload(client, chat_id, group):
                if result["status"] == "accepted":
                    waiting.add(result["file_id"])
                elif result["status"] == "duplicate":
                    console.print(f"{result['name']}: duplicate of {result['duplicate_of']}")
                else:
                    failures += 1
                    console.print(f"[red]{result['name']}: rejected: {result['reason']}")
        failures += _follow(client, chat_id, waiting, console)
    return 1 if failures else 0


def _upload_results(response: httpx.Response) -> list[dict[str, Any]]:
    """Each file's outcome: 202 when some were accepted, 422 ``NoFileAccepted`` when none
    was (each reason listed); any other answer is the server refusing the request."""
    if response.status_code == 422:
        with contextlib.suppress(ValueError):
            body = response.json()
            if isinstance(body, dict) and body.get("error") == "NoFileAccepted":
                return body["detail"]  # type: ignore[no-any-return]
    return json_body(response)["files"]  # type: ignore[no-any-return]


def _follow(client: httpx.Client, chat_id: str, waiting: set[str], console: Console) -> int:
    """Progress from the cheap summary; per-file statuses when it shows nothing active."""
    columns = (
        TextColumn("[bold]ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[rate]:.1f} chunks/s"),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    first = _summary(client, chat_id)["chunks_done"]
    statuses: dict[str, dict[str, Any]] = {}
    checked = 0.0
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("files", total=len(waiting), chunks=0, rate=0.0)
        while waiting:
            summary = _summary(client, chat_id)
            active = summary["total"] - sum(summary["files"][s] for s in FINAL)
            if not active or time.monotonic() - checked > 2:
                checked = time.monotonic()
                statuses = {k: v for k, v in _statuses(client, chat_id).items() if k in waiting}
            done = sum(1 for s in statuses.values() if s["status"] in FINAL)
            chunks = summary["chunks_done"] - first
            rate = chunks / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, chunks=chunks, rate=rate)
            if done == len(waiting):
                break
            time.sleep(POLL_S)
    failures = 0
    for status in statuses.values():
        if status["status"] == "failed":
            failures += 1
            console.print(f"[red]{status['name']}: failed: {status['error']}")
    return failures
