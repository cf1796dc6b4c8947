"""Writing chunks to both stores in an order that survives a crash at any point.

The vector store is the commit marker: a chunk counts as stored when its vector exists.
Adds go keyword index first, then vectors; deletes go vectors first, then keyword index.
So every vector has its keyword row, always; a job killed between two writes leaves at
worst a keyword row without a vector, whose chunk the next run sees as missing (and
rewrites under the same id) or sweeps (keyword rows of the file not in its final id set).
Once a job has finished, the file's keyword rows are exactly its stored chunks: the next
re-ingest reads them there (``settled``) instead of asking the vector store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.schema import TextNode

from ragline.rag.stores.base import KeywordDoc, KeywordIndex
from ragline.rag.stores.vector import ChromaVectorStore

CHUNK_METADATA_KEYS = (
    "owner_id",
    "chat_id",
    "file_id",
    "file_name",
    "page",
    "section",
    "start_char",
    "end_char",
    "ordinal",
)


VECTOR_METADATA_KEYS = ("owner_id", "chat_id", "file_id")
"""What Chroma keeps beside a vector: the keys its queries and deletes filter on. Citation
metadata (page, section, offsets, ordinal) lives in the keyword index with the text, so an
edit that moves chunks rewrites one store, not two (each embedded Chroma write call costs
~3 ms of GIL-held CPU). Records written by earlier versions keep their full metadata in
Chroma, read when their keyword row has none."""


@dataclass(frozen=True, slots=True)
class Stores:
    vectors: ChromaVectorStore
    keywords: KeywordIndex


def chunk_metadata(node: TextNode) -> dict[str, str | int | float | bool]:
    """Chroma accepts scalars only; absent page/section are left out, not stored as null."""
    out: dict[str, str | int | float | bool] = {}
    for key in CHUNK_METADATA_KEYS:
        value: Any = node.metadata.get(key)
        if isinstance(value, str | int | float | bool):
            out[key] = value
    return out


def stored_chunks(
    stores: Stores, *, chat_id: str, file_id: str, settled: bool = False
) -> dict[str, dict[str, Any]]:
    """The file's stored chunks: metadata by id. The vector store is the truth; when the
    last job that wrote the file finished (``settled``), the keyword index holds the same
    chunks and is read instead (an indexed lookup, ~0.2 ms, against ~2 ms for Chroma's
    metadata filter), unless rows written before it kept metadata are among them."""
    rows = stores.keywords.file_chunks(file_id=file_id)
    if settled and all(meta is not None for meta in rows.values()):
        return {i: meta for i, meta in rows.items() if meta is not None}
    present = stores.vectors.metadata_where(chat_id, file_id=file_id)
    # A vector without its keyword row (left by a version that deleted keyword rows first)
    # gets empty metadata: the diff then rewrites it if the file still has that chunk.
    return {i: (rows.get(i) or meta) if i in rows else {} for i, meta in present.items()}


def add_chunks(
    stores: Stores, nodes: Sequence[TextNode], vectors: Sequence[Sequence[float]]
) -> None:
    metadatas = [chunk_metadata(node) for node in nodes]
    stores.keywords.add(
        [
            KeywordDoc(
                id=node.id_,
                text=node.get_content(),
                owner_id=str(meta["owner_id"]),
                chat_id=str(meta["chat_id"]),
                file_id=str(meta["file_id"]),
                metadata=meta,
                vector=vector,
            )
            for node, meta, vector in zip(nodes, metadatas, vectors, strict=True)
        ]
    )
    stores.vectors.upsert(
        ids=[node.id_ for node in nodes],
        embeddings=vectors,
        metadatas=[{key: meta[key] for key in VECTOR_METADATA_KEYS} for meta in metadatas],
    )


def refresh_metadata(stores: Stores, nodes: Sequence[TextNode]) -> None:
    """Unchanged chunks keep id and vector; only where they sit (page, offsets) may move.
    The keyword index keeps that (see ``VECTOR_METADATA_KEYS``)."""
    if nodes:
        ids, metadatas = [n.id_ for n in nodes], [chunk_metadata(n) for n in nodes]
        stores.keywords.update_metadata(ids, metadatas)


def remove_chunks(stores: Stores, ids_by_chat: Mapping[str, Sequence[str]]) -> None:
    """One call per store (and per assistant's collection), however many files the ids
    come from: embedded Chroma holds the GIL for each write call (~10-40 ms)."""
    ids = [i for chat_ids in ids_by_chat.values() for i in chat_ids]
    if ids:
        for chat_id, chat_ids in ids_by_chat.items():
            if chat_ids:
                stores.vectors.delete_ids(chat_id, chat_ids)
        stores.keywords.delete_ids(ids)


def remove_file(stores: Stores, *, chat_id: str, file_id: str) -> None:
    stores.vectors.delete_where(chat_id, file_id=file_id)
    stores.keywords.delete_file(file_id)


def remove_chat(stores: Stores, *, chat_id: str) -> None:
    stores.vectors.delete_chat(chat_id)
    stores.keywords.delete_chat(chat_id)


def get_chunks(stores: Stores, chat_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Metadata and text (keyword index; metadata of older records from Chroma) of the
    chat's stored chunks (those with a vector) among ``ids``."""
    present = stores.vectors.metadata(chat_id, ids)
    stored = stores.keywords.chunks(list(present))
    out: dict[str, dict[str, Any]] = {}
    for i, meta in present.items():
        chunk = stored.get(i)
        text = chunk.text if chunk is not None else ""
        out[i] = {"metadata": (chunk.metadata if chunk else None) or meta, "text": text}
    return out


def counts(stores: Stores, **where: str) -> Mapping[str, int]:
    return {
        "vectors": stores.vectors.count(**where),  # chat_id picks the collection
        "keywords": stores.keywords.count(**where),
    }
