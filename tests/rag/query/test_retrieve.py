"""Hybrid retrieval on real stores (embedded Chroma, SQLite keyword index): the keyword
index's copies of each chunk's metadata and vector give the same answers as Chroma's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from llama_index.core.schema import TextNode

from ragline.rag.ingest.store import Stores, add_chunks, chunk_metadata
from ragline.rag.query.retrieve import HybridRetriever, Mode, Scope
from ragline.rag.stores.base import KeywordDoc
from ragline.rag.stores.keyword import SQLITE_FILE, SqliteKeywordIndex
from ragline.rag.stores.vector import ChromaVectorStore, chroma_client

WORDS = [
    "comet",
    "nebula",
    "quasar",
    "pulsar",
    "galaxy",
    "orbit",
    "plasma",
    "photon",
    "neutrino",
    "magnetar",
]


class QueryVectorsOnly:
    """The tests pass every query's vector to ``retrieve``: nothing may embed here."""

    model_name, dimension, max_tokens = "none", 8, 256

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError("retrieve was given the query vector")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    vectors = ChromaVectorStore(chroma_client(path=tmp_path / "chroma"), "t")
    keywords = SqliteKeywordIndex(tmp_path / SQLITE_FILE, arrays=False)
    yield Stores(vectors=vectors, keywords=keywords)
    keywords.close()


def _nodes(chat_id: str, count: int) -> list[TextNode]:
    rng = np.random.default_rng(5)
    nodes = []
    for i in range(count):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 12))))
        meta = {
            "owner_id": "alice",
            "chat_id": chat_id,
            "file_id": f"f{i % 3}",
            "file_name": f"notes-{i % 3}.pdf",
            "page": i % 7 + 1,
            "start_char": 10 * i,
            "end_char": 10 * i + len(text),
        }
        nodes.append(TextNode(id_=f"{chat_id}-n{i}", text=text, metadata=meta))
    return nodes


def _write_without_copies(stores: Stores, nodes: Sequence[TextNode], vectors: np.ndarray) -> None:
    """As earlier versions wrote: the keyword index kept the text only."""
    metadatas = [chunk_metadata(n) for n in nodes]
    stores.keywords.add(
        [
            KeywordDoc(
                id=n.id_,
                text=n.get_content(),
                owner_id="alice",
                chat_id=str(m["chat_id"]),
                file_id=str(m["file_id"]),
            )
            for n, m in zip(nodes, metadatas, strict=True)
        ]
    )
    stores.vectors.upsert([n.id_ for n in nodes], vectors.tolist(), metadatas)


def test_copies_in_the_keyword_index_answer_as_chroma_does(stores: Stores) -> None:
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    new, old = _nodes("new", 60), _nodes("old", 60)
    add_chunks(stores, new, vectors.tolist())
    _write_without_copies(stores, old, vectors)
    assert stores.keywords.chunks(["new-n0"])["new-n0"].metadata == chunk_metadata(new[0])
    assert stores.keywords.chunks(["old-n0"])["old-n0"].metadata is None
    retriever = HybridRetriever(embedder=QueryVectorsOnly(), stores=stores, candidates=10)
    try:
        for query in ("quasar photon", "comet orbit galaxy", "magnetar"):
            embedding = rng.normal(size=8).astype(np.float32).tolist()
            answers = {
                chat: retriever.retrieve(
                    query, Scope("alice", chat, None), k=8, mode=Mode.HYBRID, embedding=embedding
                )
                for chat in ("new", "old")
            }
            fresh, legacy = answers["new"], answers["old"]
            assert fresh, query
            assert [c.id.removeprefix("new-") for c in fresh] == [
                c.id.removeprefix("old-") for c in legacy
            ]
            for a, b in zip(fresh, legacy, strict=True):
                assert (a.file_name, a.page, a.start_char, a.end_char, a.text) == (
                    b.file_name,
                    b.page,
                    b.start_char,
                    b.end_char,
                    b.text,
                )
                assert a.score == pytest.approx(b.score, abs=1e-6)
                assert a.dense_score == pytest.approx(b.dense_score, abs=1e-5)
            # Every candidate's dense score is the cosine Chroma's own search gives it.
            searched = dict(stores.vectors.query("new", embedding, k=60))
            for chunk in fresh:
                assert chunk.dense_score == pytest.approx(searched[chunk.id], abs=1e-5)
                assert chunk.page == int(chunk.id.rsplit("n", 1)[1]) % 7 + 1
    finally:
        retriever.close()


def test_a_vector_of_another_dimension_is_read_from_chroma(stores: Stores) -> None:
    """After a model change and before `ragline reindex`, copies may differ in size."""
    nodes = _nodes("c", 5)
    vectors = np.eye(5, 8, dtype=np.float32)
    add_chunks(stores, nodes, vectors.tolist())
    retriever = HybridRetriever(embedder=QueryVectorsOnly(), stores=stores)
    try:
        similar = retriever._similarities(
            Scope("alice", "c", None), [1.0] + [0.0] * 7, [n.id_ for n in nodes]
        )
        assert similar == pytest.approx(
            {"c-n0": 1.0, "c-n1": 0.0, "c-n2": 0.0, "c-n3": 0.0, "c-n4": 0.0}
        )
        stores.keywords.add(
            [
                KeywordDoc(
                    id="c-n1",
                    text="x",
                    owner_id="alice",
                    chat_id="c",
                    file_id="f1",
                    vector=[1.0, 0.0],
                )
            ]
        )
        similar = retriever._similarities(
            Scope("alice", "c", None), [0.0, 1.0] + [0.0] * 6, ["c-n1"]
        )
        assert similar == pytest.approx({"c-n1": 1.0})  # Chroma's vector, not the 2-d copy
    finally:
        retriever.close()
