"""The chat-model interface every LLM provider implements.

A provider streams text pieces for a list of messages. It raises
:class:`LLMUnavailable` when it cannot be reached or refuses before the first piece
(the API answers 503 without opening a stream) and :class:`LLMError` for any failure
after that (the stream ends with an ``error`` event).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    temperature: float = 0.0
    max_tokens: int = 512
    model: str | None = None
    """A provider-specific model name; ``None`` means the provider's configured default."""
    top_p: float | None = None
    """Nucleus sampling; ``None`` leaves the provider's default (nothing is sent)."""
    stop: tuple[str, ...] = ()
    """Sequences that end the answer where they would begin (not included in it)."""


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Completion:
    text: str
    usage: Usage = field(default_factory=Usage)


class LLMUnavailable(Exception):
    """The provider could not be reached (or refused) before producing anything."""


class LLMError(Exception):
    """The provider failed after it had started answering."""


class LLMContextExceeded(LLMError):
    """The provider refused the prompt: with the answer's room it exceeds the model's
    context window (the prompt budget's estimate was short of the real tokenizer)."""


class LLM(Protocol):
    name: str
    """Provider and model, e.g. ``local:SmolLM2-135M-Instruct``."""

    def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, usage: Usage
    ) -> AsyncIterator[str]:
        """Text pieces as they are generated; fills ``usage`` by the end."""
        ...

    async def aclose(self) -> None: ...


async def complete(
    llm: LLM, messages: Sequence[ChatMessage], params: GenerationParams
) -> Completion:
    """The whole answer at once (the non-streaming endpoints)."""
    usage = Usage()
    pieces = [piece async for piece in llm.stream(messages, params, usage)]
    return Completion(text="".join(pieces), usage=usage)
