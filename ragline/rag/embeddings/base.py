"""The embedding provider interface. Implementations: local (offline), ollama, openai."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol


class EmbeddingError(RuntimeError):
    """The provider could not embed (down, refused, bad answer). Retried by the job."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors. Synchronous: it runs in ingestion workers
    (threads); async callers use ``asyncio.to_thread``."""

    @property
    def model_name(self) -> str:
        """Identifies the vectors' space, recorded per file (e.g. ``all-MiniLM-L6-v2``)."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Inputs longer than this (in ``tokenize`` tokens, i.e. without the model's special
        tokens) are truncated by the model."""
        ...

    def tokenize(self, text: str) -> list[int]:
        """Token ids without special tokens; used to size chunks in the model's tokens."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised vector per text, in order."""
        ...


Tokenizer = Callable[[str], list[int]]


class ForwardingEmbedder:
    """Base for embedders that wrap another (cache, lazy loading): everything but ``embed``
    is the inner embedder's."""

    @property
    def inner(self) -> Embedder:
        raise NotImplementedError

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def tokenize(self, text: str) -> list[int]:
        return self.inner.tokenize(text)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.inner.embed(texts)
