"""Server-Sent Events framing of an answer's events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from ragline.chat.answer import Delta, Finished
from ragline.errors import RaglineError, error_body

logger = logging.getLogger(__name__)


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def event_stream(
    first: Delta | Finished, events: AsyncIterator[Delta | Finished]
) -> AsyncIterator[str]:
    event: Delta | Finished | None = first
    try:
        while event is not None:
            if isinstance(event, Delta):
                yield sse("delta", {"text": event.text})
            else:
                sources = [source.model_dump() for source in event.sources]
                yield sse("sources", {"sources": sources})
                yield sse(
                    "done",
                    {
                        "message_id": str(event.message_id),
                        "supported": event.claims.supported,
                        "unsupported": [asdict(span) for span in event.claims.unsupported],
                    },
                )
            event = await anext(events, None)
    except RaglineError as exc:
        yield sse("error", error_body(exc.name, exc.detail))
    except Exception:
        logger.exception("answer stream failed")
        yield sse("error", error_body("InternalServerError", "Internal server error."))
