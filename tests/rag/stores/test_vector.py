"""The Chroma vector store against embedded Chroma and a real Chroma server."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from ragline.rag.query.retrieve import cosines
from ragline.rag.stores.vector import SYNC_THRESHOLD, ChromaVectorStore, chroma_client


@pytest.fixture(params=["embedded", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ChromaVectorStore:
    if request.param == "server":
        host, port = request.getfixturevalue("chroma")
        client = chroma_client(host=host, port=port)
    else:
        client = chroma_client(path=tmp_path / "chroma")
    return ChromaVectorStore(client, f"test-{uuid.uuid4().hex[:12]}")


def test_cosines_of_stored_vectors_equal_the_query_scores(store: ChromaVectorStore) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    ids = [f"v{i}" for i in range(40)]
    meta = {"owner_id": "alice", "chat_id": "c1", "file_id": "f1"}
    store.upsert(ids, vectors.tolist(), [meta] * 40)
    query = rng.normal(size=16).astype(np.float32).tolist()

    searched = dict(store.query("c1", query, k=40))
    stored = store.vectors("c1", ["v3", "v17", "v39", "missing"])
    computed = cosines(np.asarray(query, dtype=np.float32), stored)

    assert computed == pytest.approx({i: searched[i] for i in ("v3", "v17", "v39")}, abs=1e-5)
    assert store.vectors("c1", []) == {}
    assert store.vectors("no-such-chat", ["v3"]) == {}


def test_reads_of_a_collection_dropped_elsewhere_find_nothing(store: ChromaVectorStore) -> None:
    meta = {"owner_id": "alice", "chat_id": "c9", "file_id": "f1"}
    store.upsert(["a", "b"], [[1.0, 0.0], [0.0, 1.0]], [meta, meta])
    assert store.count("c9") == 2  # the collection is now cached by this store
    other = ChromaVectorStore(store.client, store.prefix)  # e.g. the purge job's process
    other.delete_chat("c9")

    assert store.count("c9") == 0
    assert store.count(file_id="f1") == 0
    assert store.ids("c9") == set()
    assert store.query("c9", [1.0, 0.0], k=2) == []
    assert store.metadata("c9", ["a"]) == {}
    assert store.vectors("c9", ["a"]) == {}


def test_collections_persist_their_index_every_sync_threshold_changes(
    store: ChromaVectorStore,
) -> None:
    """New collections are made with, and collections of earlier versions switched to,
    ``SYNC_THRESHOLD`` (write calls cost CPU per change not yet persisted)."""
    older = store.client.create_collection(
        store.collection_name("old"),
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )
    assert older.configuration_json["hnsw"]["sync_threshold"] == 1000  # Chroma's default
    meta = {"owner_id": "alice", "file_id": "f1"}
    store.upsert(["a", "b"], [[1.0, 0.0], [0.0, 1.0]], [meta | {"chat_id": "old"}] * 2)
    store.upsert(["c"], [[1.0, 1.0]], [meta | {"chat_id": "new"}])

    for chat_id in ("old", "new"):
        collection = store.client.get_collection(
            store.collection_name(chat_id), embedding_function=None
        )
        assert collection.configuration_json["hnsw"]["sync_threshold"] == SYNC_THRESHOLD
        assert collection.configuration_json["hnsw"]["space"] == "cosine"
