"""The vector store: one Chroma collection, embedded (PersistentClient) or a Chroma server.

Chroma never embeds anything itself here (``embedding_function=None``): vectors come from
ragline's embedder. Every record carries ``owner_id``, ``chat_id`` and ``file_id`` metadata
so deletes and queries filter inside Chroma.

Chroma holds vectors and metadata but not the chunk text: the keyword index keeps it.
Chroma indexes every document for its own full-text search, which ragline does not use;
measured on 16k chunks, leaving documents out cut the delete of a file from 10.4 s to 3.9 s
and its insert by about a quarter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings

Metadata = Mapping[str, str | int | float | bool]


def chroma_client(
    *, path: Path | None = None, host: str | None = None, port: int = 8000
) -> ClientAPI:
    """Embedded client on ``path``, or an HTTP client for a Chroma server at ``host``."""
    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if host:
        return chromadb.HttpClient(host=host, port=port, settings=settings)
    if path is None:
        raise ValueError("embedded Chroma needs a path")
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _batches(items: Sequence[Any], size: int) -> Iterator[slice]:
    for start in range(0, len(items), size):
        yield slice(start, start + size)


class ChromaVectorStore:
    def __init__(self, client: ClientAPI, collection_name: str) -> None:
        self.client = client
        self.name = collection_name
        self.collection = self._open()
        self._max_batch = max(1, min(client.get_max_batch_size(), 5000))

    def _open(self) -> Collection:
        return self.client.get_or_create_collection(
            self.name,
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    def reset(self) -> None:
        """Drop and recreate the (empty) collection, e.g. for a model of another dimension."""
        self.client.delete_collection(self.name)
        self.collection = self._open()

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Metadata],
    ) -> None:
        for part in _batches(ids, self._max_batch):
            self.collection.upsert(
                ids=list(ids[part]),
                embeddings=np.asarray(embeddings[part], dtype=np.float32),
                metadatas=[dict(m) for m in metadatas[part]],
            )

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[Metadata]) -> None:
        for part in _batches(ids, self._max_batch):
            self.collection.update(
                ids=list(ids[part]), metadatas=[dict(m) for m in metadatas[part]]
            )

    def ids(self, **where: str) -> set[str]:
        """Ids of the records whose metadata equals ``where`` (e.g. ``file_id=...``)."""
        result = self.collection.get(where=_where(where), include=[])
        return set(result["ids"])

    def metadata(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Metadata by id, for the ids that exist."""
        if not ids:
            return {}
        result = self.collection.get(ids=list(ids), include=["metadatas"])
        metadatas = result["metadatas"] or []
        return {id_: dict(meta or {}) for id_, meta in zip(result["ids"], metadatas, strict=True)}

    def query(
        self, embedding: Sequence[float], *, k: int, where: Mapping[str, Any]
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest records matching ``where`` (Chroma's filter syntax, applied
        inside Chroma), as (id, cosine similarity), best first. Without metadata: reading
        it for every candidate doubled the query's time; callers read the few they keep."""
        result = self.collection.query(
            query_embeddings=np.asarray([embedding], dtype=np.float32),
            n_results=k,
            where=cast(Any, where),
            include=["distances"],
        )
        distances = (result["distances"] or [[]])[0]
        return [
            (id_, 1.0 - float(distance))
            for id_, distance in zip(result["ids"][0], distances, strict=True)
        ]

    def count(self, **where: str) -> int:
        return len(self.ids(**where)) if where else self.collection.count()

    def delete_ids(self, ids: Sequence[str]) -> None:
        for part in _batches(ids, self._max_batch):
            self.collection.delete(ids=list(ids[part]))

    def delete_where(self, **where: str) -> None:
        self.collection.delete(where=_where(where))


def _where(conditions: Mapping[str, str]) -> Any:
    if not conditions:
        raise ValueError("refusing an unfiltered selection")
    clauses = [{key: {"$eq": value}} for key, value in conditions.items()]
    return cast(Any, clauses[0] if len(clauses) == 1 else {"$and": clauses})
