"""The vector store: one Chroma collection, embedded (PersistentClient) or a Chroma server.

Chroma never embeds anything itself here (``embedding_function=None``): vectors come from
ragline's embedder. Every record carries ``owner_id``, ``chat_id`` and ``file_id`` metadata
so deletes and queries filter inside Chroma.

Chroma holds vectors and those filter keys only: the keyword index keeps the chunk text and
its citation metadata (records of earlier versions also carry it here).
Chroma indexes every document for its own full-text search, which ragline does not use;
measured on 16k chunks, leaving documents out cut the delete of a file from 10.4 s to 3.9 s
and its insert by about a quarter.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import chromadb
import chromadb.errors
import numpy as np
import numpy.typing as npt
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import GetResult
from chromadb.config import Settings as ChromaSettings

Metadata = Mapping[str, str | int | float | bool]
T = TypeVar("T")


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


SYNC_THRESHOLD = 100
"""Chroma's HNSW ``sync_threshold`` (default 1000): how many changes its index takes before
it persists them. Every write call (add, update, delete) of embedded Chroma costs CPU, with
the GIL held, in proportion to the changes not yet persisted (~10 µs each): measured on a
12.8k-vector collection, one-record updates took 2.9 ms right after a sync and 10-11 ms
with 800 changes pending; at 100 they take 2.5-3.0 ms, and bulk inserts take as long as
before (12.8k vectors 3.8-4.1 s, 50.7k 22.0 s against 22.5 s; Chroma persists only the
changed records). Existing collections are switched when first opened."""


def _retry_locked(call: Callable[[], T], *, attempts: int = 5) -> T:
    """``call()``, again after a short wait when embedded Chroma's SQLite says "database is
    locked": it says so at once, without waiting, when two of its own connections (a write
    and its background work) upgrade to writing together. Seen under load, rarely."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if "database is locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def _batches(items: Sequence[Any], size: int) -> Iterator[slice]:
    for start in range(0, len(items), size):
        yield slice(start, start + size)


class ChromaVectorStore:
    """One Chroma collection per assistant, named ``{prefix}-{chat_id}``.

    The collection *is* the owner-and-chat filter, applied inside Chroma: a query reads only
    that assistant's vectors. Chroma's local metadata filter costs about 4 µs per matching
    record (measured: 60-70 ms for a 12.8k-chunk assistant among 100k chunks, against
    2 ms for an unfiltered query of a collection of that size), so filtering one shared
    collection by owner and chat could not serve interactive search. Deleting an assistant
    drops its collection. Records still carry owner, chat and file ids as metadata.
    """

    def __init__(self, client: ClientAPI, collection_prefix: str) -> None:
        self.client = client
        self.prefix = collection_prefix
        self._collections: dict[str, Collection] = {}
        self._lock = threading.Lock()
        self._max_batch = max(1, min(client.get_max_batch_size(), 5000))

    def collection_name(self, chat_id: str) -> str:
        return f"{self.prefix}-{chat_id}"

    def _collection(self, chat_id: str, *, create: bool) -> Collection | None:
        with self._lock:
            found = self._collections.get(chat_id)
        if found is not None:
            return found
        name = self.collection_name(chat_id)
        if create:
            collection = _retry_locked(
                lambda: self.client.get_or_create_collection(
                    name,
                    configuration={"hnsw": {"space": "cosine", "sync_threshold": SYNC_THRESHOLD}},
                    embedding_function=None,
                )
            )
        else:
            try:
                collection = self.client.get_collection(name, embedding_function=None)
            except (chromadb.errors.NotFoundError, ValueError):
                return None
        hnsw = (collection.configuration_json or {}).get("hnsw") or {}
        if hnsw.get("sync_threshold") != SYNC_THRESHOLD:  # made by an earlier version
            configuration: Any = {"hnsw": {"sync_threshold": SYNC_THRESHOLD}}
            _retry_locked(functools.partial(collection.modify, configuration=configuration))
        with self._lock:
            self._collections[chat_id] = collection
        return collection

    def _forget(self, chat_id: str) -> None:
        """Drop a cached collection that no longer exists (another process, e.g. a purge
        job or a second worker, deleted it since it was cached)."""
        with self._lock:
            self._collections.pop(chat_id, None)

    def _writing(self, chat_id: str, write: Callable[[Collection], Any], *, create: bool) -> None:
        """``write`` on the assistant's collection (created if ``create``; none: nothing to
        do). A cached collection another process dropped since raises NotFound: looked up
        again (a write that re-creates a deleted assistant's collection is undone by its
        job, see :mod:`ragline.rag.ingest.sink`), and written once more."""
        for attempt in range(2):
            collection = self._collection(chat_id, create=create)
            if collection is None:
                return
            try:
                write(collection)
                return
            except chromadb.errors.NotFoundError:
                self._forget(chat_id)
                if attempt:
                    raise

    def chat_ids(self) -> list[str]:
        """Assistants that have a collection."""
        start = len(self.prefix) + 1
        return [
            c.name[start:]
            for c in self.client.list_collections()
            if c.name.startswith(self.prefix + "-")
        ]

    def reset(self) -> None:
        """Drop every assistant's collection, e.g. for a model of another dimension."""
        for chat_id in self.chat_ids():
            self.delete_chat(chat_id)

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Metadata],
    ) -> None:
        """Records go to the collection of their ``chat_id`` metadata."""
        for chat_id, rows in _by_chat(metadatas).items():

            def write(collection: Collection, rows: list[int] = rows) -> None:
                for part in _batches(rows, self._max_batch):
                    chosen = rows[part]
                    _retry_locked(
                        functools.partial(
                            collection.upsert,
                            ids=[ids[i] for i in chosen],
                            embeddings=np.asarray(
                                [embeddings[i] for i in chosen], dtype=np.float32
                            ),
                            metadatas=[dict(metadatas[i]) for i in chosen],
                        )
                    )

            self._writing(chat_id, write, create=True)

    @contextlib.contextmanager
    def _reading(self, chat_id: str) -> Iterator[Collection | None]:
        """The assistant's collection for a read (None if it has none). A cached collection
        that another process dropped since (e.g. a purge) raises NotFound inside the block:
        it is forgotten and the read finds nothing."""
        try:
            yield self._collection(chat_id, create=False)
        except chromadb.errors.NotFoundError:
            self._forget(chat_id)

    def ids(self, chat_id: str, **where: str) -> set[str]:
        """Ids of the assistant's records whose metadata equals ``where`` (all if empty)."""
        with self._reading(chat_id) as collection:
            if collection is not None:
                result = collection.get(where=_where(where) if where else None, include=[])
                return set(result["ids"])
        return set()

    def metadata_where(self, chat_id: str, **where: str) -> dict[str, dict[str, Any]]:
        """Metadata by id of the assistant's records whose metadata equals ``where``."""
        with self._reading(chat_id) as collection:
            if collection is not None:
                result = collection.get(where=_where(where), include=["metadatas"])
                return _metadata_by_id(result)
        return {}

    def metadata(self, chat_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Metadata by id, for the ids that exist."""
        with self._reading(chat_id) as collection:
            if ids and collection is not None:
                result = collection.get(ids=list(ids), include=["metadatas"])
                return _metadata_by_id(result)
        return {}

    def query(
        self,
        chat_id: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: Mapping[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest of the assistant's records (matching ``where``, Chroma's filter
        syntax, applied inside Chroma), as (id, cosine similarity), best first. Without
        metadata: callers read it for the few they keep."""
        with self._reading(chat_id) as collection:
            if collection is not None:
                result = collection.query(
                    query_embeddings=np.asarray([embedding], dtype=np.float32),
                    n_results=k,
                    where=cast(Any, where) if where else None,
                    include=["distances"],
                )
                distances = (result["distances"] or [[]])[0]
                return [
                    (id_, 1.0 - float(distance))
                    for id_, distance in zip(result["ids"][0], distances, strict=True)
                ]
        return []

    def vectors(self, chat_id: str, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """The stored vectors of these records (those that exist), by id."""
        with self._reading(chat_id) as collection:
            if ids and collection is not None:
                result = collection.get(ids=list(ids), include=["embeddings"])
                stored = result["embeddings"]
                if stored is None or len(result["ids"]) == 0:
                    return {}
                vectors = np.asarray(stored, dtype=np.float32)
                return dict(zip(result["ids"], vectors, strict=True))
        return {}

    def count(self, chat_id: str | None = None, **where: str) -> int:
        """Records of one assistant (matching ``where``), or of all (a scan: tests, tools)."""
        chats = [chat_id] if chat_id is not None else self.chat_ids()
        total = 0
        for chat in chats:
            collection = self._collection(chat, create=False)
            if collection is None:
                continue
            try:
                total += len(self.ids(chat, **where)) if where else collection.count()
            except chromadb.errors.ChromaError:
                # Deleted since it was cached (NotFound), or being deleted right now (a Chroma
                # server then answers "Missing metadata segment"): no records once it is gone.
                self._forget(chat)
                if self._collection(chat, create=False) is not None:
                    raise
        return total

    def delete_ids(self, chat_id: str, ids: Sequence[str]) -> None:
        def write(collection: Collection) -> None:
            for part in _batches(ids, self._max_batch):
                collection.delete(ids=list(ids[part]))

        self._writing(chat_id, write, create=False)

    def delete_where(self, chat_id: str, **where: str) -> None:
        condition = _where(where)
        self._writing(chat_id, lambda c: c.delete(where=condition), create=False)

    def delete_chat(self, chat_id: str) -> None:
        with self._lock:
            self._collections.pop(chat_id, None)
        with contextlib.suppress(chromadb.errors.NotFoundError, ValueError):
            self.client.delete_collection(self.collection_name(chat_id))


def _metadata_by_id(result: GetResult) -> dict[str, dict[str, Any]]:
    metadatas = result["metadatas"] or []
    return {id_: dict(meta or {}) for id_, meta in zip(result["ids"], metadatas, strict=True)}


def _by_chat(metadatas: Sequence[Metadata]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, meta in enumerate(metadatas):
        groups.setdefault(str(meta["chat_id"]), []).append(i)
    return groups


def _where(conditions: Mapping[str, str]) -> Any:
    if not conditions:
        raise ValueError("refusing an unfiltered selection")
    clauses = [{key: {"$eq": value}} for key, value in conditions.items()]
    return cast(Any, clauses[0] if len(clauses) == 1 else {"$and": clauses})
