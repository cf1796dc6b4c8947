"""Build an embedder on first use: start-up stays fast, and a process that never embeds
(an API that only lists files) never loads the model."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ragline.rag.embeddings.base import Embedder, ForwardingEmbedder


class LazyEmbedder(ForwardingEmbedder):
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
