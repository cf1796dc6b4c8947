"""Loopback HTTP servers that speak the wire formats of services that cannot run here:
Ollama (`POST /api/embed`) and an OpenAI-compatible provider such as IONOS
(`POST /v1/embeddings`, bearer key). Real sockets, real HTTP, documented request and
response shapes; the vectors are deterministic functions of the text."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def fake_vector(text: str, dimension: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dimension)
    return (vector / np.linalg.norm(vector)).tolist()  # type: ignore[no-any-return]


@dataclass
class FakeProvider:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def embedding_server(*, dimension: int = 64, api_key: str | None = None) -> Iterator[FakeProvider]:
    provider = FakeProvider(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            provider.requests.append(
                {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
            )
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
