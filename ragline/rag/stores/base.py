"""Store interfaces shared by the ingestion and query pipelines.

Every chunk is identified by a string id that is the same in the vector store and in the
keyword index, and carries ``owner_id``, ``chat_id`` and ``file_id`` so that filters are
applied inside each store's query, never after.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class KeywordDoc:
    """A chunk for the keyword index, which is also the chunk store: besides the indexed
    text it keeps the chunk's citation metadata and a copy of its vector, so that a search
    reads them for its candidates in one local query instead of from Chroma (see
    :mod:`ragline.rag.query.retrieve`)."""

    id: str
    text: str
    owner_id: str
    chat_id: str
    file_id: str
    metadata: Mapping[str, Scalar] = field(default_factory=dict)
    vector: Sequence[float] | None = None


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk's text and citation metadata as the keyword index keeps them; ``metadata``
    is None for chunks written before the index kept it (read it from the vector store)."""

    text: str
    metadata: dict[str, Any] | None


def pack_vector(vector: Sequence[float] | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype="<f4").tobytes()


def unpack_vector(blob: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, dtype="<f4")


def pack_metadata(metadata: Mapping[str, Scalar]) -> str | None:
    return json.dumps(dict(metadata), separators=(",", ":")) if metadata else None


def unpack_metadata(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float


class KeywordIndex(Protocol):
    """Persistent BM25-ranked keyword index, updated incrementally, safe with several
    worker processes."""

    def add(self, docs: Sequence[KeywordDoc]) -> None:
        """Insert or replace (same id) these chunks."""
        ...

    def delete_ids(self, ids: Sequence[str]) -> None: ...

    def delete_file(self, file_id: str) -> None: ...

    def delete_chat(self, chat_id: str) -> None: ...

    def count(self, *, file_id: str | None = None, chat_id: str | None = None) -> int: ...

    def file_chunks(self, *, file_id: str) -> dict[str, dict[str, Any] | None]:
        """The file's chunks: metadata by id (None for rows written before the index kept
        it). Read to diff a re-ingest and to sweep rows left by a crashed job."""
        ...

    def chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The original text and the metadata of these chunks (those that exist), by id."""
        ...

    def vectors(self, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """The copies of these chunks' vectors (those that exist and have one), by id."""
        ...

    def update_metadata(
        self, ids: Sequence[str], metadatas: Sequence[Mapping[str, Scalar]]
    ) -> None:
        """New citation metadata (page, offsets) for chunks whose text did not change."""
        ...

    def search(
        self,
        query: str,
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
        k: int = 10,
    ) -> list[Hit]:
        """Best ``k`` chunks of that owner's chat (and files, when given), best first."""
        ...

    def scores(
        self,
        query: str,
        ids: Sequence[str],
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """BM25 of these chunks for ``query``, on :meth:`search`'s scale (same statistics,
        same scope), for those of them in the scope that match it (others score 0)."""
        ...

    def close(self) -> None: ...
