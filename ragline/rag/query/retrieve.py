"""Hybrid retrieval for one assistant: dense search in Chroma and BM25 in the keyword
index, each restricted *inside its own query* to the owner, the chat and the given files,
fused by :mod:`.fusion`. Text comes from the keyword index, metadata from Chroma.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ragline.rag.embeddings.base import Embedder
from ragline.rag.ingest.store import Stores
from ragline.rag.query.fusion import Fused, convex_fusion
from ragline.rag.stores.base import Hit


class Mode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    KEYWORD = "keyword"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose chunks may be returned: the owner's chat, and of it only ``file_ids``, or every
    file when ``None``. The caller decides from the database, so deleted (still purging) or
    unfinished files never count: it passes ``None`` only when every chunk of the chat in
    the stores belongs to an indexed file, else the indexed files' ids."""

    owner_id: str
    chat_id: str
    file_ids: Sequence[str] | None


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    id: str
    text: str
    score: float
    dense_score: float | None
    keyword_score: float | None
    file_id: str
    file_name: str
    page: int | None
    section: str | None
    start_char: int | None
    end_char: int | None


class StoreUnavailable(Exception):
    """A store (e.g. the Chroma server) could not answer."""


class HybridRetriever:
    def __init__(
        self,
        *,
        embedder: Embedder,
        stores: Stores,
        candidates: int = 50,
        alpha: float = 0.5,
    ) -> None:
        self._embedder = embedder
        self._stores = stores
        self._candidates = candidates
        self._alpha = alpha
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="retrieve")

    def embed_query(self, query: str) -> list[float]:
        """The query's embedding; callers may compute it early (e.g. while the database
        answers) and pass it to :meth:`retrieve`."""
        [embedding] = self._embedder.embed([query])
        return embedding

    def retrieve(
        self,
        query: str,
        scope: Scope,
        *,
        k: int,
        mode: Mode = Mode.HYBRID,
        embedding: Sequence[float] | None = None,
    ) -> list[RetrievedChunk]:
        if (scope.file_ids is not None and not scope.file_ids) or not query.strip():
            return []
        n = max(k, self._candidates)
        keyword = (
            self._pool.submit(self._keyword, query, scope, n) if mode is not Mode.DENSE else None
        )
        dense_hits = [] if mode is Mode.KEYWORD else self._dense(query, scope, n, embedding)
        keyword_hits = keyword.result() if keyword is not None else []
        fused = convex_fusion(dense_hits, keyword_hits, alpha=self._alpha)[:k]
        return self._load(scope, fused)

    def _dense(
        self, query: str, scope: Scope, n: int, embedding: Sequence[float] | None
    ) -> list[Hit]:
        vector = embedding if embedding is not None else self.embed_query(query)
        try:
            found = self._stores.vectors.query(scope.chat_id, vector, k=n, where=_where(scope))
        except Exception as exc:  # Chroma raises many types; all mean "cannot search"
            raise StoreUnavailable(f"the vector store could not be searched: {exc}") from exc
        return [Hit(id=i, score=s) for i, s in found]

    def _keyword(self, query: str, scope: Scope, n: int) -> list[Hit]:
        try:
            return self._stores.keywords.search(
                query,
                owner_id=scope.owner_id,
                chat_id=scope.chat_id,
                file_ids=None if scope.file_ids is None else list(scope.file_ids),
                k=n,
            )
        except Exception as exc:
            raise StoreUnavailable(f"the keyword index could not be searched: {exc}") from exc

    def _load(self, scope: Scope, fused: Sequence[Fused]) -> list[RetrievedChunk]:
        ids = [f.id for f in fused]
        try:
            metadata = self._stores.vectors.metadata(scope.chat_id, ids)
            texts = self._stores.keywords.texts(ids)
        except Exception as exc:
            raise StoreUnavailable(f"the stores could not be read: {exc}") from exc
        return [
            _chunk(f, metadata[f.id], texts.get(f.id, ""))
            for f in fused
            if f.id in metadata  # a chunk deleted between search and read is skipped
        ]

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _where(scope: Scope) -> dict[str, Any] | None:
    """Owner and chat are the collection itself (see ``ChromaVectorStore``); files, when
    restricted, are a filter inside the same query."""
    if scope.file_ids is None:
        return None
    return {"file_id": {"$in": list(scope.file_ids)}}


def _chunk(fused: Fused, meta: dict[str, Any], text: str) -> RetrievedChunk:
    def opt_int(key: str) -> int | None:
        value = meta.get(key)
        return int(value) if isinstance(value, int | float) else None

    section = meta.get("section")
    return RetrievedChunk(
        id=fused.id,
        text=text,
        score=fused.score,
        dense_score=fused.dense,
        keyword_score=fused.keyword,
        file_id=str(meta.get("file_id", "")),
        file_name=str(meta.get("file_name", "")),
        page=opt_int("page"),
        section=str(section) if section is not None else None,
        start_char=opt_int("start_char"),
        end_char=opt_int("end_char"),
    )
