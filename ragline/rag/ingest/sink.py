"""Embed and store chunks in large batches across files.

Per-file work is small (a SciFact abstract is one or two chunks) while the model and the
vector store are efficient only in batches: embedded Chroma pays ~30 ms per write call and
~0.9 ms per vector at 256 vectors; the int8 model wants length-bucketed batches. So job
threads only parse, chunk and diff; they hand each file's changes to this sink. One thread
embeds new chunks of whatever files are pending, in batches of up to ``max_batch`` that take
the files with the fewest chunks left first (``backlog.py``: a small file does not wait
behind a big one's hundreds); another applies a whole cycle's writes in one call per kind
(upserts, metadata refreshes, deletes) and reports back per file. The two threads overlap.
A write cycle takes whatever the embedding thread has produced meanwhile: embedded Chroma
holds the GIL for each write call (~10-40 ms), so fewer, larger calls leave the other
threads more of it.

A chunk counts as stored only when its vector is written (see ``store.py`` for the order):
a file's stale chunks are deleted in the cycle that stores its last new chunk, and its
callbacks run after the writes returned.

A delete wins over a write in flight. Each cycle asks ``obsolete`` (the file rows, one
query) which of its files were deleted or replaced, before it writes — those are not
written — and again after its writes returned, whether they succeeded or not: a file
deleted meanwhile is reported with :class:`WorkObsolete`, and its job removes what this
cycle wrote. Every write is thus followed by a removal: the delete's purge if the delete
committed after the second check (so after the write), this undo otherwise. Without the
second check, a batch written while the purge ran came back after it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from llama_index.core.schema import TextNode

from ragline.rag.embeddings.base import Embedder
from ragline.rag.ingest.backlog import Backlog
from ragline.rag.ingest.backlog import Slice as _Slice
from ragline.rag.ingest.store import Stores, add_chunks, refresh_metadata, remove_chunks

logger = logging.getLogger(__name__)
_STOP = object()


class WorkObsolete(Exception):
    """The work's file was deleted or replaced: what the sink wrote for it must go."""


@dataclass(eq=False)
class FileWork:
    """One file's changes, and what to tell the job as they are applied."""

    key: str
    chat_id: str
    new: Sequence[TextNode]
    on_progress: Callable[[int], None]  # new chunks of this work stored so far
    on_error: Callable[[BaseException], None]
    moved: Sequence[TextNode] = ()  # unchanged chunks whose metadata moved (new offsets)
    stale: Sequence[str] = ()  # ids to delete once the new chunks are stored
    payload: object = None  # the caller's own data, for the sink's ``finisher``
    stored: int = 0
    finished: bool = field(default=False)


class IngestSink:
    def __init__(
        self,
        embedder: Embedder,
        stores: Stores,
        *,
        finisher: Callable[[list[FileWork]], None],
        max_batch: int = 256,
        max_wait_s: float = 0.05,
        max_pending_chunks: int = 4096,
        progress_interval_s: float = 0.5,
        obsolete: Callable[[Sequence[FileWork]], Collection[FileWork]] | None = None,
    ) -> None:
        """``finisher`` receives the works completed in a write cycle, all at once, so their
        bookkeeping can share a transaction. ``obsolete`` says which of the works given are
        no longer wanted (file deleted or replaced), in one call (see the module doc)."""
        self.embedder = embedder
        self.finisher = finisher
        self.obsolete = obsolete
        self._cycles = [0, 0]  # write cycles started, ended
        self.stores = stores
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.progress_interval_s = progress_interval_s
        self._backlog = Backlog(max_pending_chunks=max_pending_chunks)
        self._outbox: queue.Queue[object] = queue.Queue(maxsize=2)
        self._last_progress: dict[int, float] = {}
        self._threads = [
            threading.Thread(target=self._embed_loop, name="ingest-embed", daemon=True),
            threading.Thread(target=self._write_loop, name="ingest-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, work: FileWork) -> None:
        """Queue a file's changes; blocks while too many chunks are pending (backpressure)."""
        self._backlog.submit(work)

    @property
    def cycles(self) -> tuple[int, int]:
        """Write cycles (started, ended) so far: a point to wait for (every cycle started
        before some moment has ended once ``ended`` reaches that moment's ``started``)."""
        return self._cycles[0], self._cycles[1]

    @property
    def pending(self) -> int:
        """Chunks submitted and not yet stored, failed or dropped."""
        return self._backlog.pending

    def close(self, timeout: float = 30.0) -> None:
        """Embed and store what is pending, then stop the threads."""
        self._backlog.close()
        for thread in self._threads:
            thread.join(timeout)

    # --- embedding thread -------------------------------------------------------------
    def _embed_loop(self) -> None:
        stopping = False
        while not stopping:
            batch, dropped, stopping = self._backlog.take(self.max_batch, self.max_wait_s)
            self._backlog.release(dropped)  # files that failed or vanished meanwhile
            if not batch:
                continue
            texts = [node.get_content() for piece in batch for node in piece.nodes]
            try:
                vectors = self.embedder.embed(texts) if texts else []
            except BaseException as exc:  # the provider failed: every file in the batch
                self._fail(batch, exc)
                self._backlog.release(batch)
                continue
            self._outbox.put((batch, vectors))
        self._outbox.put(_STOP)

    # --- writer thread ----------------------------------------------------------------
    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            cycle = [self._outbox.get()]
            # Whatever else is embedded by now joins this cycle: fewer, larger write calls.
            while cycle[-1] is not _STOP:
                try:
                    cycle.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            if cycle[-1] is _STOP:
                stopping = True
                cycle.pop()
            slices: list[_Slice] = []
            vectors: list[list[float]] = []
            for item in cycle:
                item_slices: list[_Slice]
                item_vectors: list[list[float]]
                item_slices, item_vectors = item  # type: ignore[misc]
                slices.extend(item_slices)
                vectors.extend(item_vectors)
            if slices:
                self._cycles[0] += 1
                try:
                    self._write(slices, vectors)
                finally:
                    self._cycles[1] += 1

    def _write(self, slices: list[_Slice], vectors: list[list[float]]) -> None:
        try:
            # Files that failed, vanished or were deleted since embedding are skipped.
            live = self._drop_obsolete([piece for piece in slices if not piece.work.finished])
            error = self._store(live, _vectors_of(slices, vectors, live))
            live = self._drop_obsolete(live)  # deleted while we wrote: undone by its job
            if error is not None:
                self._fail(live, error)
            else:
                self._report(live)
        finally:
            self._backlog.release(slices)

    def _store(self, live: list[_Slice], vectors: list[list[float]]) -> BaseException | None:
        completing = _completing(live)
        stale: dict[str, list[str]] = {}
        for work in completing:
            stale.setdefault(work.chat_id, []).extend(work.stale)
        try:
            nodes = [node for piece in live for node in piece.nodes]
            if nodes:
                add_chunks(self.stores, nodes, vectors)
            refresh_metadata(self.stores, [n for work in completing for n in work.moved])
            remove_chunks(self.stores, stale)
        except BaseException as exc:
            return exc
        return None

    def _drop_obsolete(self, slices: list[_Slice]) -> list[_Slice]:
        """``slices`` without those of works no longer wanted, which are told so."""
        works = list({id(s.work): s.work for s in slices}.values())
        if self.obsolete is None or not works:
            return slices
        try:
            gone = set(map(id, self.obsolete(works)))
        except Exception as exc:  # cannot tell: as if the write had failed
            self._fail(slices, exc)
            return []
        if gone:
            self._fail([s for s in slices if id(s.work) in gone], WorkObsolete())
        return [s for s in slices if id(s.work) not in gone]

    def _report(self, slices: list[_Slice]) -> None:
        now = time.monotonic()
        completed: list[FileWork] = []
        for piece in slices:
            work = piece.work
            if work.finished:
                continue
            work.stored += len(piece.nodes)
            try:
                if work.stored == len(work.new):  # its last new chunks were in this cycle
                    work.finished = True
                    self._last_progress.pop(id(work), None)
                    completed.append(work)
                elif now - self._last_progress.get(id(work), 0.0) >= self.progress_interval_s:
                    self._last_progress[id(work)] = now
                    work.on_progress(work.stored)
            except BaseException as exc:
                work.finished = True
                self._last_progress.pop(id(work), None)
                work.on_error(exc)
        if completed:
            try:
                self.finisher(completed)
            except BaseException as exc:
                for work in completed:
                    work.on_error(exc)

    def _fail(self, slices: list[_Slice], exc: BaseException) -> None:
        for work in {id(s.work): s.work for s in slices}.values():
            if not work.finished:
                work.finished = True
                self._last_progress.pop(id(work), None)
                try:
                    work.on_error(exc)
                except Exception:
                    logger.exception("error handler of %s failed", work.key)


def _vectors_of(
    slices: Sequence[_Slice], vectors: Sequence[list[float]], chosen: Sequence[_Slice]
) -> list[list[float]]:
    """The vectors of the ``chosen`` slices (in order) among those of all ``slices``."""
    wanted = set(map(id, chosen))
    out: list[list[float]] = []
    offset = 0
    for piece in slices:
        count = len(piece.nodes)
        if id(piece) in wanted:
            out.extend(vectors[offset : offset + count])
        offset += count
    return out


def _completing(slices: Sequence[_Slice]) -> list[FileWork]:
    """The works whose last new chunks are among ``slices`` (each work once)."""
    pending: dict[FileWork, int] = {}  # FileWork hashes by identity (eq=False)
    for piece in slices:
        pending[piece.work] = pending.get(piece.work, 0) + len(piece.nodes)
    return [work for work, count in pending.items() if work.stored + count == len(work.new)]
