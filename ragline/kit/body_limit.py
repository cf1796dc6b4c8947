"""Refuse request bodies over a size limit, before or while they stream in (413, JSON).

The bytes are counted as they arrive, whatever the Content-Length says (or without one:
chunked): the request is answered as soon as the count passes the limit, without reading
the rest. Without this, an endless upload would fill the disk first. The limit depends on
the path and names the setting that sets it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragline.errors import PayloadTooLarge, error_body, is_openai_path, openai_error


class BodyLimit(NamedTuple):
    max_bytes: int
    setting: str
    """What sets it, named in the 413's detail (``UPLOAD_MAX_REQUEST_BYTES``)."""


def _too_large(limit: BodyLimit) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit.max_bytes} bytes ({limit.setting}); "
        "the request was refused and nothing was stored."
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], BodyLimit]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit.max_bytes:
                await _reject(send, limit, openai=is_openai_path(scope["path"]))
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    # Raised inside the app's body parsing: rendered by the error handlers.
                    raise _too_large(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _reject(send: Send, limit: BodyLimit, *, openai: bool) -> None:
    error = _too_large(limit)
    shaped = openai_error(error) if openai else error_body(error.name, error.detail)
    body = json.dumps(shaped).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
