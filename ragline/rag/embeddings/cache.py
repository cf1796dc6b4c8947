"""Embedding cache keyed by model + text hash: Redis when configured, else in-process LRU.

Vectors are stored as float32 bytes. The cache only saves model time: the ingestion diff is
decided by chunk ids in the stores, never by the cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from redis import Redis
from redis.exceptions import RedisError

from ragline.rag.embeddings.base import Embedder, ForwardingEmbedder

logger = logging.getLogger(__name__)


def cache_key(model: str, text: str) -> str:
    return f"ragline:emb:{model}:{hashlib.sha256(text.encode()).hexdigest()}"


class EmbeddingCache(Protocol):
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def set_many(self, items: dict[str, bytes]) -> None: ...


class MemoryCache:
    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            found = []
            for key in keys:
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                found.append(value)
            return found

    def set_many(self, items: dict[str, bytes]) -> None:
        with self._lock:
            self._items.update(items)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


class RedisCache:
    """Fails open: with Redis down every text is a miss and nothing is stored (a search
    or an ingestion embeds as if the cache were empty, rather than failing)."""

    def __init__(self, client: Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            return list(self.client.mget(list(keys)))  # type: ignore[arg-type]
        except RedisError as exc:
            logger.warning("embedding cache unavailable, embedding without it: %s", exc)
            return [None] * len(keys)

    def set_many(self, items: dict[str, bytes]) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=self.ttl)
                pipe.execute()
        except RedisError as exc:
            logger.warning("embedding cache unavailable, vectors not cached: %s", exc)


class CachedEmbedder(ForwardingEmbedder):
    """An ``Embedder`` that asks the cache first and embeds only the misses."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self._inner = inner
        self.cache = cache

    @property
    def inner(self) -> Embedder:
        return self._inner

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [cache_key(self.model_name, text) for text in texts]
        cached = self.cache.get_many(keys)
        missing = [i for i, value in enumerate(cached) if value is None]
        fresh = self.inner.embed([texts[i] for i in missing]) if missing else []
        if fresh:
            self.cache.set_many(
                {
                    keys[i]: np.asarray(vector, dtype=np.float32).tobytes()
                    for i, vector in zip(missing, fresh, strict=True)
                }
            )
        out: list[list[float]] = []
        fresh_iter = iter(fresh)
        for value in cached:
            if value is None:
                out.append(list(next(fresh_iter)))
            else:
                out.append(np.frombuffer(value, dtype=np.float32).tolist())
        return out
