"""The worker loads what ingestion needs in the background right after start-up."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ragline.documents.jobs import WorkerContext
from ragline.documents.queue import warm_up
from ragline.rag.embeddings.lazy import LazyEmbedder


class Probe:
    """An embedder that must be built but never asked to embed."""

    model_name = "probe"
    dimension = 3
    max_tokens = 10

    def tokenize(self, text: str) -> list[int]:
        return [len(text)]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        pytest.fail("warm-up must not send an embedding request")


def test_warm_up_builds_the_embedder_without_a_request() -> None:
    built: list[Probe] = []

    def build() -> Any:
        built.append(Probe())
        return built[-1]

    embedder = LazyEmbedder(build)
    warm_up(cast(WorkerContext, SimpleNamespace(embedder=embedder)))
    assert len(built) == 1
    assert embedder.model_name == "probe" and len(built) == 1  # built once, kept


def test_a_failed_warm_up_is_logged_and_retried_on_first_use(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    def build() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("model store not mounted yet")
        return Probe()

    embedder = LazyEmbedder(build)
    warm_up(cast(WorkerContext, SimpleNamespace(embedder=embedder)))  # does not raise
    assert "warm-up failed" in caplog.text
    assert embedder.dimension == 3 and len(attempts) == 2
