"""Helpers for answer tests: seeded assistants and a Server-Sent Events reader."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ragline.config import Provider, Settings
from tests.documents.helpers import accepted_ids, upload, wait_final
from tests.helpers import create_chat
from tests.rag.ingest import builders
from tests.services import LLAMA_MODEL_ALIAS, free_port

FACT = "The Zephyrine valve was invented by Marta Kowalczyk in 1931 in Gdansk."
QUESTION = "Who invented the Zephyrine valve?"
DISTRACTORS = {
    "gardening.txt": "Tomatoes need full sun and regular watering. Mulch keeps the soil moist.\n\n"
    "Prune basil often so that it grows bushy rather than tall.",
    "sailing.txt": "A sloop has one mast and two sails. Reefing reduces sail area in strong "
    "wind.\n\nAlways check the weather forecast before leaving the harbour.",
}


def parse_sse(body: str) -> list[tuple[str, Any]]:
    """``(event, data)`` pairs of a whole SSE body."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def seeded_chat(client: httpx.AsyncClient, user: str) -> tuple[str, dict[str, str]]:
    """An assistant (temperature 0) with a two-page PDF holding FACT on page 2 and two
    distractor files, all indexed; returns (chat id, file ids by name)."""
    chat = await create_chat(client, user, title="valves", temperature=0.0)
    files = [
        (
            "history.pdf",
            builders.pdf_bytes(["Industrial history of pumps and pipes in Europe.", FACT]),
        ),
        *((name, text.encode()) for name, text in DISTRACTORS.items()),
    ]
    response = await upload(client, chat["id"], files, user=user)
    ids = dict(zip([name for name, _ in files], accepted_ids(response), strict=True))
    for file_id in ids.values():
        assert (await wait_final(client, chat["id"], file_id, user=user))["status"] == "indexed"
    return chat["id"], ids


def with_llm_down(settings: Settings) -> Settings:
    """The OpenAI-compatible provider pointed at a loopback port where nothing listens."""
    return settings.model_copy(
        update={
            "llm_provider": Provider.OPENAI,
            "ionos_base_url": f"http://127.0.0.1:{free_port()}/v1",
            "ionos_model": LLAMA_MODEL_ALIAS,
            "llm_connect_timeout_seconds": 1.0,
        }
    )
