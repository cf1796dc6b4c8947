"""Ollama's native chat API (``POST /api/chat``, streamed NDJSON) through the official
``ollama`` client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, cast

import httpx
import ollama

from ragline.rag.llm.base import ChatMessage, GenerationParams, LLMError, LLMUnavailable, Usage

_CONNECT_ERRORS = (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)
_STREAM_ERRORS = (ollama.ResponseError, httpx.HTTPError, ConnectionError, ValueError)


class OllamaLLM:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        connect_attempts: int = 3,
        retry_delay_s: float = 0.2,
    ) -> None:
        self.model = model
        self.name = f"ollama:{model}"
        self._attempts = connect_attempts
        self._delay = retry_delay_s
        self._client = ollama.AsyncClient(
            host=base_url, timeout=httpx.Timeout(timeout, connect=connect_timeout)
        )

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, usage: Usage
    ) -> AsyncIterator[str]:
        parts, part = await self._start(messages, params)
        try:
            while part is not None:
                if part.message.content:
                    yield part.message.content
                if part.done:
                    usage.prompt_tokens = part.prompt_eval_count or 0
                    usage.completion_tokens = part.eval_count or 0
                    return
                part = await anext(parts, None)
        except _STREAM_ERRORS as exc:
            raise LLMError(f"the Ollama stream broke off: {exc}") from exc
        finally:
            await parts.aclose()
        # A body that ends cleanly without its `done` line is a cut-off answer, not a short one.
        raise LLMError("the Ollama stream ended before the answer was complete")

    async def _start(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> tuple[AsyncGenerator[ollama.ChatResponse], ollama.ChatResponse | None]:
        """Open the stream and read its first part (the client connects lazily), retrying
        connect errors with backoff."""
        for attempt in range(1, self._attempts + 1):
            parts = cast(
                AsyncGenerator[ollama.ChatResponse],
                await self._client.chat(
                    model=params.model or self.model,
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    options=_options(params),
                    stream=True,
                ),
            )
            try:
                return parts, await anext(parts, None)
            except _CONNECT_ERRORS as exc:
                if attempt == self._attempts:
                    raise LLMUnavailable(f"Ollama is unreachable: {exc}") from exc
            except _STREAM_ERRORS as exc:
                raise LLMUnavailable(f"Ollama refused the request: {exc}") from exc
            await asyncio.sleep(self._delay * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._client._client.aclose()


def _options(params: GenerationParams) -> dict[str, Any]:
    """Ollama's sampling options; ``top_p`` and ``stop`` only when given (else the
    model's own defaults apply)."""
    options: dict[str, Any] = {"temperature": params.temperature, "num_predict": params.max_tokens}
    if params.top_p is not None:
        options["top_p"] = params.top_p
    if params.stop:
        options["stop"] = list(params.stop)
    return options
