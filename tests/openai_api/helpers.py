"""Helpers for the /v1 tests: ragline pointed at the loopback OpenAI model server, and a
reader for OpenAI's Server-Sent Events."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ragline.config import Provider, Settings
from tests.fake_providers import CHAT_MODEL, FakeProvider
from tests.helpers import as_user

ALICE = as_user("alice")


def unlimited(settings: Settings, **update: Any) -> Settings:
    """No chat rate limit: its counters live in the Redis that every test run shares."""
    return settings.model_copy(update={"rate_limit_chat": "", **update})


def via(settings: Settings, model: FakeProvider, **update: Any) -> Settings:
    """``LLM_PROVIDER=openai`` against the loopback model server ``model``."""
    provider = {
        "llm_provider": Provider.OPENAI,
        "ionos_base_url": f"{model.url}/v1",
        "ionos_model": CHAT_MODEL,
        "llm_max_tokens": 100,
    }
    return unlimited(settings, **(provider | update))


def data_lines(body: str) -> list[Any]:
    """The ``data:`` payloads of an OpenAI stream, JSON-decoded (``[DONE]`` as the string)."""
    payloads = []
    for block in body.strip().split("\n\n"):
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        payloads.append(data if data == "[DONE]" else json.loads(data))
    return payloads


def streamed_text(chunks: list[Any]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        if isinstance(chunk, dict) and "choices" in chunk
        for choice in chunk["choices"]
    )


async def stored_history(client: httpx.AsyncClient, chat_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/messages/{chat_id}", headers=ALICE)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]
