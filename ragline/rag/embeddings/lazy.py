"""Build an embedder on first use: start-up stays fast, and a process that never embeds
(an API that only lists files) never loads the model."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ragline.rag.embeddings.base import Embedder


class LazyEmbedder:
    def __init__(self, build: Callable[[], Embedder]) -> None:
        self._build = build
        self._inner: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def inner(self) -> Embedder:
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = self._build()
        return self._inner

    @property
    def loaded(self) -> bool:
        return self._inner is not None

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
