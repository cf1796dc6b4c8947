"""The chunks handed to the sink and not yet stored: how many may wait (backpressure), and
which of them the next embedding batch takes.

Batches used to be cut from one first-in, first-out queue, so a small file waited behind
every chunk of the files submitted before it (a 4-chunk PDF showed 0/4 while a 551-chunk CSV
uploaded with it embedded). Now each batch takes the files with the fewest chunks left to
embed first (shortest remaining first: it also minimises the mean time to ``indexed``),
whole where they fit, and fills what is left from the next ones, so batches stay full and a
big file alone goes as fast as before. Two refinements:

- A batch is cut short for the files that complete in it when they hold at most a quarter
  of it: filler would make them wait for a whole batch's embedding, and the rest follows in
  the next batch at once (embedding time is nearly linear in the chunks: 4 calls of 64 took
  ~4% longer than one of 256). A small file then waits for the batch in flight and a short
  one of its own.
- The oldest waiting file is guaranteed a quarter of every batch (cut or not), so a stream
  of small uploads slows a big file down but never stalls it (its lease is extended as
  its chunks are stored).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llama_index.core.schema import TextNode

if TYPE_CHECKING:
    from ragline.rag.ingest.sink import FileWork

OLDEST_SHARE = 4  # the oldest waiting file gets at least 1/OLDEST_SHARE of a batch
ALONE_SHARE = 4  # files completing in a batch go alone if they hold ≤ 1/ALONE_SHARE of it
SUBMIT_PIECE = 64  # a file's chunks join the backlog this many at a time (backpressure)


@dataclass(frozen=True, slots=True)
class Waiting:
    """One file in the backlog: chunks it still has to embed (submitted or not), and how
    many of them are submitted and waiting."""

    remaining: int
    waiting: int


def plan_batch(files: Sequence[Waiting], capacity: int) -> list[int]:
    """How many waiting chunks the next batch takes from each file (``files`` in arrival
    order): up to ``capacity // OLDEST_SHARE`` from the oldest file with waiting chunks,
    then the files with the fewest chunks remaining first (ties: the older first); then,
    if the files that complete in the batch hold at most ``capacity // ALONE_SHARE`` of
    it, only they and the oldest file's share."""
    takes = [0] * len(files)
    oldest = next((i for i, file in enumerate(files) if file.waiting), None)
    if oldest is None:
        return takes
    share = min(files[oldest].waiting, max(1, capacity // OLDEST_SHARE), capacity)
    takes[oldest] = share
    left = capacity - share
    for i in sorted(range(len(files)), key=lambda i: (files[i].remaining, i)):
        if left == 0:
            break
        more = min(files[i].waiting - takes[i], left)
        takes[i] += more
        left -= more
    completing = {i for i, take in enumerate(takes) if take and take == files[i].remaining}
    if 0 < sum(takes[i] for i in completing) <= capacity // ALONE_SHARE:
        for i in range(len(takes)):
            if i not in completing:
                takes[i] = share if i == oldest else 0
    return takes


@dataclass
class Slice:
    """Chunks of one file that travel together (a work without new chunks: none)."""

    work: FileWork
    nodes: Sequence[TextNode]
    units: int  # room held in the backlog: its chunks, or 1 for a work without new chunks


@dataclass(eq=False)
class _Entry:
    work: FileWork
    waiting: list[TextNode] = field(default_factory=list)
    taken: int = 0
    ready: bool = False  # a work without new chunks, to hand over once


class Backlog:
    """Thread-safe: job threads ``submit``, the embedding thread ``take``s, whoever is done
    with a slice (written, failed, dropped) ``release``s it."""

    def __init__(self, *, max_pending_chunks: int) -> None:
        self.max_pending = max_pending_chunks
        self._changed = threading.Condition()
        self._entries: dict[FileWork, _Entry] = {}  # arrival order; FileWork hashes by id
        self._pending = 0  # chunks submitted and not yet released
        self._ready = 0  # waiting chunks + works without new chunks not yet handed over
        self._closed = False

    @property
    def pending(self) -> int:
        """Chunks submitted and not yet released."""
        with self._changed:
            return self._pending

    def submit(self, work: FileWork) -> None:
        """Add a file's new chunks, a piece at a time; blocks while the backlog is full.
        Stops early if the work finishes meanwhile (failed, deleted)."""
        entry = _Entry(work)
        with self._changed:
            self._entries[work] = entry
            if not work.new and self._admit(entry, 1):
                entry.ready = True
                self._ready += 1
                self._changed.notify_all()
        for start in range(0, len(work.new), SUBMIT_PIECE):
            piece = work.new[start : start + SUBMIT_PIECE]
            with self._changed:
                if not self._admit(entry, len(piece)):
                    return
                entry.waiting.extend(piece)
                self._ready += len(piece)
                self._changed.notify_all()

    def _admit(self, entry: _Entry, count: int) -> bool:
        """Wait for room for ``count`` chunks; False if the entry was dropped meanwhile."""
        self._changed.wait_for(
            lambda: self._pending == 0 or self._pending + count <= self.max_pending
        )
        if entry.work.finished or self._entries.get(entry.work) is not entry:
            return False
        self._pending += count
        return True

    def take(self, capacity: int, max_wait_s: float) -> tuple[list[Slice], list[Slice], bool]:
        """Wait for chunks, then up to ``max_wait_s`` for a full batch; returns the batch,
        the slices of works finished meanwhile (failed, deleted: to release unembedded),
        and whether the backlog is closed and now empty."""
        with self._changed:
            self._changed.wait_for(lambda: self._ready > 0 or self._closed)
            deadline = time.monotonic() + max_wait_s
            while self._ready < capacity and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._changed.wait(remaining):
                    break
            dropped = [
                self._drop(entry) for entry in list(self._entries.values()) if entry.work.finished
            ]
            dropped = [piece for piece in dropped if piece.units]
            batch = [
                self._hand_over(entry) for entry in list(self._entries.values()) if entry.ready
            ]
            entries = list(self._entries.values())
            takes = plan_batch(
                [Waiting(len(e.work.new) - e.taken, len(e.waiting)) for e in entries], capacity
            )
            for entry, count in zip(entries, takes, strict=True):
                if count:
                    batch.append(self._take(entry, count))
            return batch, dropped, self._closed and self._ready == 0

    def _drop(self, entry: _Entry) -> Slice:
        """A finished work's chunks not yet taken: out of the backlog, to be released."""
        del self._entries[entry.work]
        self._ready -= len(entry.waiting) + entry.ready
        return Slice(entry.work, entry.waiting, units=len(entry.waiting) + entry.ready)

    def _hand_over(self, entry: _Entry) -> Slice:
        del self._entries[entry.work]
        self._ready -= 1
        return Slice(entry.work, [], units=1)

    def _take(self, entry: _Entry, count: int) -> Slice:
        nodes = entry.waiting[:count]
        del entry.waiting[:count]
        entry.taken += count
        self._ready -= count
        if entry.taken == len(entry.work.new):
            del self._entries[entry.work]
        return Slice(entry.work, nodes, units=count)

    def release(self, slices: Sequence[Slice]) -> None:
        """Their chunks are no longer pending (stored, failed or dropped): room for more."""
        count = sum(piece.units for piece in slices)
        if count:
            with self._changed:
                self._pending -= count
                self._changed.notify_all()

    def close(self) -> None:
        """``take`` hands out what is left, then reports the backlog closed and empty."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
