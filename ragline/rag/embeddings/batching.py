"""Queries that arrive together are embedded together.

A search embeds one short query; under concurrent load, queries wait for the model one
after another, each paying a whole inference. This wrapper hands every waiting query to
one inference instead (dynamic batching, as inference servers do): a single thread takes
whatever queries are queued when the model becomes free, so a query arriving alone is
embedded at once (no added wait) and queries arriving during an inference share the next.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from ragline.rag.embeddings.base import Embedder, ForwardingEmbedder

_STOP = object()


class QueryBatcher(ForwardingEmbedder):
    def __init__(self, inner: Embedder, *, max_batch: int = 16) -> None:
        self._inner = inner
        self._max_batch = max_batch
        self._waiting: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="query-embed", daemon=True)
        self._thread.start()

    @property
    def inner(self) -> Embedder:
        return self._inner

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if len(texts) != 1:
            return self._inner.embed(texts)
        future: Future[list[float]] = Future()
        self._waiting.put((texts[0], future))
        return [future.result()]

    def close(self) -> None:
        self._waiting.put(_STOP)
        self._thread.join()
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    def _run(self) -> None:
        while True:
            item = self._waiting.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self._max_batch:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._waiting.put(_STOP)  # after this batch
                    break
                batch.append(item)
            pairs: list[tuple[str, Future[list[float]]]] = batch  # type: ignore[assignment]
            try:
                vectors = self._inner.embed([text for text, _ in pairs])
            except BaseException as exc:
                for _, future in pairs:
                    future.set_exception(exc)
            else:
                for (_, future), vector in zip(pairs, vectors, strict=True):
                    future.set_result(vector)
