"""Loopback HTTP servers that speak the wire formats of services that cannot run here:
Ollama (`POST /api/embed`, `POST /api/chat`) and an OpenAI-compatible provider such as
IONOS (`POST /v1/embeddings`, bearer key). Real sockets, real HTTP, documented request and
response shapes; vectors and answers are deterministic functions of the request."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import numpy as np


def fake_vector(text: str, dimension: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dimension)
    return (vector / np.linalg.norm(vector)).tolist()  # type: ignore[no-any-return]


@dataclass
class FakeProvider:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


class JsonHandler(BaseHTTPRequestHandler):
    """Quiet, with JSON answers; the fake servers (here and in tests/auth) extend it."""

    def log_message(self, *args: Any) -> None:
        return None

    def _receive(self, provider: FakeProvider) -> dict[str, Any]:
        """The JSON body, recorded with its path and bearer key."""
        length = int(self.headers.get("Content-Length", "0"))
        body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        provider.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        return body

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ChunkedHandler(JsonHandler):
    """Streamed answers: HTTP/1.1 chunked bodies, each connection closed after its answer
    (no idle keep-alive threads at shutdown)."""

    protocol_version = "HTTP/1.1"

    def end_headers(self) -> None:
        self.send_header("Connection", "close")
        super().end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _last_chunk(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


@contextmanager
def _serving(handler: type[JsonHandler], provider: FakeProvider, port: int = 0) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def ollama_tags(models: Collection[str]) -> dict[str, Any]:
    """Ollama's `GET /api/tags`: the pulled models, named with their tag."""
    names = [name if ":" in name else f"{name}:latest" for name in models]
    return {
        "models": [
            {"name": name, "model": name, "modified_at": "2026-01-01T00:00:00Z", "size": 1}
            for name in names
        ]
    }


def openai_models(models: Collection[str]) -> dict[str, Any]:
    """OpenAI's `GET /v1/models`."""
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]
    return {"object": "list", "data": data}


@contextmanager
def embedding_server(
    *,
    dimension: int = 64,
    api_key: str | None = None,
    models: Collection[str] = (),
    port: int = 0,
) -> Iterator[FakeProvider]:
    """Ollama's `POST /api/embed` and an OpenAI-compatible `POST /v1/embeddings`, any model
    name; ``models`` is what their model lists (`GET /api/tags`, `GET /v1/models`) show."""
    provider = FakeProvider(url="")

    class Handler(JsonHandler):
        def do_GET(self) -> None:  # http.server's naming
            if self.path == "/api/tags":
                self._answer(200, ollama_tags(models))
            elif self.path == "/v1/models":
                self._answer(200, openai_models(models))
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:  # http.server's naming
            body = self._receive(provider)
            if self.path == "/api/embed":  # Ollama: {"model", "input": str | [str]}
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                self._answer(
                    200,
                    {
                        "model": body["model"],
                        "embeddings": [fake_vector(t, dimension) for t in inputs],
                    },
                )
            elif self.path == "/v1/embeddings":  # OpenAI: {"model", "input"} → {"data": [...]}
                if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                    self._answer(
                        401,
                        {
                            "error": {
                                "message": "Incorrect API key provided",
                                "type": "invalid_request_error",
                            }
                        },
                    )
                    return
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [
                    {"object": "embedding", "index": i, "embedding": fake_vector(t, dimension)}
                    for i, t in enumerate(inputs)
                ]
                self._answer(
                    200,
                    {
                        "object": "list",
                        "data": data[::-1],
                        "model": body["model"],
                        "usage": {"prompt_tokens": 0, "total_tokens": 0},
                    },
                )
            else:
                self._answer(404, {"error": "not found"})

    with _serving(Handler, provider, port):
        yield provider


CHAT_MODEL = "llama3.2"


def fake_reply(messages: list[dict[str, Any]]) -> list[str]:
    """The fake chat model's answer, in pieces of one word: a fixed sentence around the
    last user message."""
    question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    first, *rest = f"You asked: {question} Here is my answer.".split()
    return [first, *(f" {word}" for word in rest)]


@contextmanager
def ollama_chat_server(
    *,
    models: Collection[str] = (CHAT_MODEL,),
    fault: Literal["drop", "truncate"] | None = None,
    port: int = 0,
) -> Iterator[FakeProvider]:
    """Ollama's streamed `POST /api/chat`: `{model, messages, stream, options}` in, one NDJSON
    line a piece out (chunked, as Ollama's Go server sends it), then a `done` line with the token
    counts: `prompt_eval_count` is the number of words in the messages, `eval_count` the
    number of pieces. `options.num_predict` cuts the answer (`done_reason: "length"`).

    ``fault="drop"`` closes the connection after the first piece, mid-body; ``"truncate"``
    ends the body cleanly but without the `done` line."""
    provider = FakeProvider(url="")

    class Handler(ChunkedHandler):
        def _line(self, part: dict[str, Any]) -> None:
            self._chunk(json.dumps(part).encode() + b"\n")

        def do_GET(self) -> None:  # http.server's naming
            if self.path == "/api/tags":
                self._answer(200, ollama_tags(models))
            else:
                self._answer(404, {"error": "404 page not found"})

        def do_POST(self) -> None:  # http.server's naming
            body = self._receive(provider)
            if self.path != "/api/chat":
                self._answer(404, {"error": "404 page not found"})
                return
            if body["model"] not in models:
                error = f'model "{body["model"]}" not found, try pulling it first'
                self._answer(404, {"error": error})
                return
            pieces, reason = fake_reply(body["messages"]), "stop"
            limit = body.get("options", {}).get("num_predict")
            if limit is not None and 0 <= limit < len(pieces):
                pieces, reason = pieces[:limit], "length"
            head = {"model": body["model"], "created_at": datetime.now(UTC).isoformat()}
            done = head | {
                "done": True,
                "done_reason": reason,
                "total_duration": 1_000_000,
                "load_duration": 1_000,
                "prompt_eval_count": sum(len(m["content"].split()) for m in body["messages"]),
                "prompt_eval_duration": 1_000,
                "eval_count": len(pieces),
                "eval_duration": 1_000,
            }
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in pieces:
                message = {"role": "assistant", "content": piece}
                self._line(head | {"message": message, "done": False})
                if fault == "drop":
                    return  # the server closes the socket without the last chunk
            if fault != "truncate":
                self._line(done | {"message": {"role": "assistant", "content": ""}})
            self._last_chunk()

    with _serving(Handler, provider, port):
        yield provider


Reply = Callable[[list[dict[str, Any]]], list[str]]
"""A fake model's answer, in pieces, to the messages it was sent."""


def openai_reply(body: dict[str, Any], reply: Reply = fake_reply) -> tuple[list[str], str]:
    """The fake OpenAI model's answer to a request and its ``finish_reason``: ``reply``
    (`fake_reply`: one piece a word), at most ``max_completion_tokens`` / ``max_tokens``
    pieces ("length"), cut where the first of the ``stop`` sequences begins."""
    pieces, reason = reply(body["messages"]), "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None and limit < len(pieces):
        pieces, reason = pieces[:limit], "length"
    stops = body.get("stop") or []
    text = "".join(pieces)
    cut = min(
        (text.find(s) for s in ([stops] if isinstance(stops, str) else stops) if s in text),
        default=None,
    )
    if cut is not None:
        kept, used = [], 0
        for piece in pieces:
            kept.append(piece[: max(cut - used, 0)])
            used += len(piece)
        pieces, reason = [piece for piece in kept if piece], "stop"
    return pieces, reason


@contextmanager
def openai_chat_server(
    *,
    models: Collection[str] = (CHAT_MODEL,),
    fault: Literal["error"] | None = None,
    reply: Reply = fake_reply,
    before_piece: Callable[[int], None] | None = None,
) -> Iterator[FakeProvider]:
    """OpenAI's `POST /v1/chat/completions`, whole (`chat.completion`) or streamed (SSE
    `chat.completion.chunk`s, then `data: [DONE]`), answering `openai_reply` (``reply``
    chooses the words); usage counts the words of the messages and the pieces (streamed: in
    a last chunk without choices when `stream_options.include_usage`). Records every
    request; an unknown model answers 404 `model_not_found` as OpenAI does; `GET /v1/models`
    lists ``models``.

    ``fault="error"``: a stream sends its first piece, then an error object, as OpenAI
    does when generation fails mid-way. ``before_piece(n)`` is called before a stream's
    n-th piece (0: the role delta) is sent: a test holds the model there (a slow model)."""
    provider = FakeProvider(url="")

    class Handler(ChunkedHandler):
        def _event(self, payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self._chunk(f"data: {data}\n\n".encode())

        def _not_found(self, message: str, code: str | None = None) -> None:
            error = {"message": message, "type": "invalid_request_error", "code": code}
            self._answer(404, {"error": error | {"param": None}})

        def do_GET(self) -> None:  # http.server's naming
            if self.path == "/v1/models":
                self._answer(200, openai_models(models))
            else:
                self._not_found(f"Unknown path {self.path}")

        def do_POST(self) -> None:  # http.server's naming
            body = self._receive(provider)
            if self.path != "/v1/chat/completions":
                self._not_found(f"Unknown path {self.path}")
                return
            if body["model"] not in models:
                model = body["model"]
                self._not_found(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "model_not_found",
                )
                return
            pieces, reason = openai_reply(body, reply)
            usage = {
                "prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
                "completion_tokens": len(pieces),
            }
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            head = {"id": "chatcmpl-fake", "created": 1_700_000_000, "model": body["model"]}
            if not body.get("stream"):
                answer = {"role": "assistant", "content": "".join(pieces)}
                choice = {"index": 0, "message": answer, "finish_reason": reason}
                self._answer(
                    200, head | {"object": "chat.completion", "choices": [choice], "usage": usage}
                )
                return
            chunk = head | {"object": "chat.completion.chunk"}
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deltas = [{"role": "assistant", "content": ""}, *({"content": p} for p in pieces)]
            for n, delta in enumerate(deltas):
                if before_piece is not None:
                    before_piece(n)
                self._event(
                    chunk | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                )
                if fault == "error" and n == 1:
                    error = {"message": "The server had an error.", "type": "server_error"}
                    self._event({"error": error})
                    self._last_chunk()
                    return
            self._event(chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                self._event(chunk | {"choices": [], "usage": usage})
            self._event("[DONE]")
            self._last_chunk()

    with _serving(Handler, provider):
        yield provider
