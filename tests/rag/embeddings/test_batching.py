"""Queries embedded together by the QueryBatcher, on the real query model (one thread,
rows padded to a power of two): each gets the vector it gets alone, whatever it is batched
with; a failing model fails every query of its batch and the next ones still work."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ragline.rag.embeddings.base import EmbeddingError
from ragline.rag.embeddings.batching import QueryBatcher
from ragline.rag.embeddings.local import LocalEmbedder, rows_for
from ragline.rag.embeddings.prepare import default_cache_dir, prepare_local_model

QUERIES = [
    "statins and mortality",
    "does microglia pruning depend on complement",
    "interest rates inflation small business late payments cash flow",
    "cat on a mat",
    "what lowers LDL cholesterol",
    "vitamin D supplementation fracture risk in elderly women",
    "kitten",
    "how do tides depend on the moon and the sun",
    "effect of exercise on depression",
    "BRCA1",
    "antibiotic resistance in hospital-acquired infections",
]


class Recording:
    """The real model, recording the batches it is given and failing on demand."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    model_name = "all-MiniLM-L6-v2"
    dimension = 384
    max_tokens = 254

    def tokenize(self, text: str) -> list[int]:
        return self.inner.tokenize(text)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.entered.set()
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        self.batches.append(len(texts))
        if self.fail:
            raise EmbeddingError("model down")
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def query_model() -> LocalEmbedder:
    model = LocalEmbedder(
        prepare_local_model(default_cache_dir()),
        batch_size=8,
        streams=1,
        threads=1,
        pad_multiple=8,
        pad_rows=True,
    )
    yield model  # type: ignore[misc]
    model.close()


def test_rows_are_padded_to_a_power_of_two() -> None:
    assert [rows_for(n) for n in (1, 2, 3, 4, 5, 8)] == [1, 2, 4, 4, 8, 8]


def test_batched_queries_get_the_vectors_they_get_alone(query_model: LocalEmbedder) -> None:
    alone = np.asarray([query_model.embed([q])[0] for q in QUERIES], dtype=np.float32)
    recording = Recording(query_model)
    batcher = QueryBatcher(recording, max_batch=8)  # type: ignore[arg-type]
    recording.gate.clear()
    with ThreadPoolExecutor(max_workers=len(QUERIES)) as pool:
        futures = [pool.submit(batcher.embed, [QUERIES[0]])]
        # the model is busy with the first query alone: the others pile up behind it
        assert recording.entered.wait(timeout=60)
        futures += [pool.submit(batcher.embed, [q]) for q in QUERIES[1:]]
        deadline = time.monotonic() + 60
        while batcher._waiting.qsize() < len(QUERIES) - 1:
            assert time.monotonic() < deadline, "queries never reached the batcher"
            time.sleep(0.01)
        recording.gate.set()
        batched = np.asarray([f.result(timeout=60)[0] for f in futures], dtype=np.float32)
    batcher.close()

    assert recording.batches == [1, 8, 2]  # one alone, then 8, then the 2 left
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-4)
    assert np.min(np.sum(batched * alone, axis=1)) > 0.9999


def test_a_failed_batch_fails_its_queries_only(query_model: LocalEmbedder) -> None:
    recording = Recording(query_model)
    batcher = QueryBatcher(recording, max_batch=8)  # type: ignore[arg-type]
    recording.fail = True
    with pytest.raises(EmbeddingError, match="model down"):
        batcher.embed(["statins"])
    recording.fail = False
    assert len(batcher.embed(["statins"])[0]) == 384
    assert batcher.embed([]) == []  # anything but one query goes straight through
    assert len(batcher.embed(QUERIES[:3])) == 3
    batcher.close()
