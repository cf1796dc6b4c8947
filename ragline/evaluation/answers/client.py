"""The HTTP calls of ``ragline eval answers``, as any client of ragline makes them.

A 429 (rate limit) is waited out (``Retry-After``) and the request sent again; times are
taken around the request that was answered. A call the evaluation cannot go on without
raises :class:`ragline.client.ClientError` (``ServerRefused`` for an error answer; wrap
calls in :func:`ragline.client.server_errors` for a server that does not answer); a
question whose answer fails is recorded in :attr:`Asked.error` instead.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ragline.client import ClientError, ServerRefused, refusal

RETRIES = 8
FINAL = frozenset({"indexed", "failed"})


@dataclass(frozen=True, slots=True)
class Assistant:
    chat_id: str
    documents: dict[str, str]
    """File id -> the document's path under the docs root."""


@dataclass(slots=True)
class Asked:
    """One streamed answer as the client saw it."""

    text: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] = field(default_factory=dict)
    ttft_s: float | None = None
    """Request sent -> first ``delta`` with text."""
    latency_s: float | None = None
    """Request sent -> ``done`` (or the end of the stream)."""
    error: str | None = None


class RaglineClient:
    def __init__(
        self, url: str, *, user: str | None = None, token: str | None = None, timeout: float = 600
    ) -> None:
        headers = {"X-Ragline-Dev-User": user} if user else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=httpx.Timeout(timeout, connect=10)
        )

    def close(self) -> None:
        self._http.close()

    def check(self) -> None:
        self._call("GET", "/healthz")

    # --- assistants and files -------------------------------------------------------------
    def create_assistant(self, title: str, description: str = "") -> str:
        body = {"title": title, "description": description}
        return str(self._json("POST", "/chats", json=body)["id"])

    def delete_assistant(self, chat_id: str) -> None:
        self._call("DELETE", f"/chats/{chat_id}", expect=(204, 404))

    def upload(self, chat_id: str, root: Path, paths: Sequence[str]) -> dict[str, str]:
        """Uploads ``paths`` (under ``root``) in one request; file id -> path."""
        with contextlib.ExitStack() as stack:
            parts = [
                ("files", (Path(path).name, stack.enter_context((root / path).open("rb"))))
                for path in paths
            ]
            body = self._json("POST", f"/chats/{chat_id}/upload", files=parts, expect=(202,))
        by_file: dict[str, str] = {}
        for path, result in zip(paths, body["files"], strict=True):
            if result["status"] == "rejected":
                raise ClientError(f"{path} was refused: {result['reason']}")
            if result["status"] == "accepted":
                by_file[str(result["file_id"])] = path
        return by_file

    def pending_files(self, chat_id: str) -> int:
        summary = self._json("GET", f"/chats/{chat_id}/ingestion")
        return int(summary["total"]) - sum(int(summary["files"].get(s, 0)) for s in FINAL)

    def failed_files(self, chat_id: str) -> list[str]:
        body = self._json("GET", f"/chats/{chat_id}/files", params={"size": 100})
        return [f"{f['name']}: {f['error']}" for f in body["items"] if f["status"] == "failed"]

    # --- questions ------------------------------------------------------------------------
    def search(self, chat_id: str, query: str, *, k: int) -> list[dict[str, Any]]:
        body = self._json("POST", f"/chats/{chat_id}/search", json={"query": query, "k": k})
        return list(body["results"])

    def ask(self, chat_id: str, question: str) -> Asked:
        """``POST /chats/{id}/chat/stream``, read to the end; failures are in ``error``."""
        request = self._http.build_request(
            "POST", f"/chats/{chat_id}/chat/stream", json={"text": question}
        )
        asked = Asked()
        pieces: list[str] = []
        try:
            started, response = self._send(lambda: self._http.send(request, stream=True))
            with contextlib.closing(response):
                if response.status_code != 200:
                    response.read()
                    asked.error = refusal(response)
                    return asked
                for event, data in sse_events(response.iter_lines()):
                    if event == "delta" and data.get("text"):
                        if asked.ttft_s is None:
                            asked.ttft_s = time.perf_counter() - started
                        pieces.append(str(data["text"]))
                    elif event == "sources":
                        asked.sources = list(data.get("sources") or [])
                    elif event == "done":
                        asked.latency_s = time.perf_counter() - started
                        asked.done = dict(data)
                    elif event == "error":
                        asked.error = f"{data.get('error')}: {data.get('detail')}"
            if asked.latency_s is None:
                asked.latency_s = time.perf_counter() - started
                asked.error = asked.error or "the stream ended without a done event"
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            asked.error = f"the answer broke off: {type(exc).__name__} {exc}"
        asked.text = "".join(pieces)
        return asked

    def usage(self, chat_id: str, message_id: str) -> dict[str, Any] | None:
        """The stored answer's token usage (the stream does not carry it)."""
        body = self._json("GET", f"/messages/{chat_id}", params={"order": "desc", "size": 4})
        for message in body["items"]:
            if message["id"] == message_id:
                return dict(message.get("usage") or {})
        return None

    # --- plumbing -------------------------------------------------------------------------
    def _send(self, send: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
        for _ in range(RETRIES):
            started = time.perf_counter()
            response = send()
            if response.status_code != 429:
                return started, response
            response.close()
            time.sleep(float(response.headers.get("Retry-After", "1")))
        raise ClientError(f"{self.url} still answers 429 after {RETRIES} attempts")

    def _call(
        self, method: str, path: str, *, expect: Sequence[int] = (200, 201), **kwargs: Any
    ) -> httpx.Response:
        _, response = self._send(lambda: self._http.request(method, path, **kwargs))
        if response.status_code not in expect:
            raise ServerRefused(refusal(response))
        return response

    def _json(
        self, method: str, path: str, *, expect: Sequence[int] = (200, 201), **kwargs: Any
    ) -> Any:
        return self._call(method, path, expect=expect, **kwargs).json()


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-Sent Events (``event:``/``data:`` lines, a blank line ends one) with JSON data."""
    event = "message"
    data: list[str] = []
    for line in itertools.chain(lines, [""]):  # a last blank line ends the last event
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
