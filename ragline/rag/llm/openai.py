"""Any OpenAI-compatible chat server (IONOS, vLLM, llama.cpp's server, OpenAI itself),
through the official ``openai`` client: streaming, timeouts, retries on connect errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import openai

from ragline.rag.llm.base import (
    ChatMessage,
    GenerationParams,
    LLMContextExceeded,
    LLMError,
    LLMUnavailable,
    Usage,
)


class OpenAILLM:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            timeout=openai.Timeout(timeout, connect=connect_timeout),
            max_retries=max_retries,
        )

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, usage: Usage
    ) -> AsyncIterator[str]:
        request: dict[str, Any] = {
            "model": params.model or self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.top_p is not None:
            request["top_p"] = params.top_p
        if params.stop:
            request["stop"] = list(params.stop)
        try:
            response = await self._client.chat.completions.create(**request)
        except openai.APIStatusError as exc:
            if exc.status_code == 400 and _exceeds_context(_message(exc)):
                raise LLMContextExceeded(_message(exc)) from exc
            raise LLMUnavailable(
                f"the language model server answered {exc.status_code}: {_message(exc)}"
            ) from exc
        except openai.APIError as exc:
            raise LLMUnavailable(f"the language model server is unreachable: {exc}") from exc
        reported = False
        try:
            async for chunk in response:
                if chunk.usage is not None:
                    reported = True
                    usage.prompt_tokens = chunk.usage.prompt_tokens
                    usage.completion_tokens = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    if choice.delta.content:
                        if not reported:
                            # Servers that ignore `stream_options` (llama.cpp's Python
                            # server) report no usage: count pieces, one token each.
                            usage.completion_tokens += 1
                        yield choice.delta.content
        except (openai.APIError, httpx.HTTPError) as exc:
            # A server that dies mid-answer cuts the chunked body: httpx raises that itself.
            raise LLMError(f"the language model stream broke off: {exc}") from exc
        finally:
            await response.close()

    async def aclose(self) -> None:
        await self._client.close()


CONTEXT_ERRORS = ("context window", "context length", "context size", "maximum context")


def _exceeds_context(message: str) -> bool:
    """llama.cpp ("exceeds the available context size", "exceed context window"), OpenAI
    and vLLM ("maximum context length") word it differently."""
    lowered = message.lower()
    return any(words in lowered for words in CONTEXT_ERRORS)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
    return exc.message
