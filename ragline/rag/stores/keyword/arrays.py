"""A chat's FTS5 table as in-memory BM25 arrays: a read cache of the SQLite keyword index.

FTS5 ranks a query by calling ``bm25()`` on every row that holds any query term — ~3,300
of a 12.8k-chunk chat for a SciFact question, ~5 ms — and scoring given chunks (fusion's
completion) costs as much again. These arrays hold, per term, the chat's rows that contain
it and their BM25 weight, computed once from the table: a query adds a few slices into one
score array (~0.1-0.3 ms). The scores are FTS5's own (same statistics over the whole table,
same formula, same row sizes: ``bm25()`` counts every column's tokens in a row's length and
in the average; equality with FTS5 is tested), so the two paths can answer interchangeably.

The table stays the persistent index and the only one written; each snapshot carries the
chat's version (bumped in the same transaction as every write to that chat), and a query
uses the arrays only when the version still matches, else FTS5. :class:`ArraysCache`
decides which chats' arrays are held (bounded, least recently used first out) and when
they are built; it knows nothing of SQL: the index gives it the chat's version and rows.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragline.rag.stores.base import Hit

K1 = 1.2
B = 0.75
"""FTS5's ``bm25()`` constants (``fts5_aux.c``)."""
MIN_IDF = 1e-6
"""FTS5 clamps a term's IDF here when it is not positive (terms in over half the rows)."""
ARRAYS_QUIET_S = 2.0
"""A chat's arrays are (re)built, when it is next searched, once its table has not changed
for this long (none are built while files are being indexed into it: each would be stale
on arrival)."""
ARRAYS_EVICTED_HOLD_S = 60.0
"""An evicted chat's arrays are not rebuilt for this long (chats that do not fit together
would otherwise be rebuilt on every search)."""
ARRAYS_MAX_POSTINGS = 5_000_000
"""Postings kept in memory over all cached chats (~12 bytes each); least recently used
chats are dropped first, and a chat larger than this is always searched by FTS5."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChatArrays:
    """One consistent snapshot of a chat's table, at ``version``."""

    version: int
    ids: Sequence[str]  # by row position (rowid order)
    positions: dict[str, int]
    owners: npt.NDArray[np.int32]  # per row: index into owner_tokens
    owner_tokens: dict[str, int]
    files: npt.NDArray[np.int32]
    file_tokens: dict[str, int]
    terms: dict[str, int]
    starts: npt.NDArray[np.int64]  # postings of term t: starts[t]:starts[t + 1]
    rows: npt.NDArray[np.int32]
    weights: npt.NDArray[np.float64]  # BM25 of the term in the row (IDF included)

    @property
    def postings(self) -> int:
        return len(self.rows)

    @classmethod
    def build(cls, version: int, table_rows: Sequence[tuple[str, str, str]]) -> ChatArrays:
        """From the table's (id, body, scope) rows in rowid order (body and scope hold
        space-separated tokens, each one FTS5 token)."""
        count = len(table_rows)
        bodies = [body.split() for _, body, _ in table_rows]
        scopes = [scope.split() for _, _, scope in table_rows]
        body_lengths = np.fromiter((len(b) for b in bodies), dtype=np.int64, count=count)
        # bm25() takes a row's size and the average over *all* columns.
        sizes = body_lengths + np.fromiter((len(s) for s in scopes), np.int64, count=count)
        average = float(sizes.sum()) / count if count else 1.0

        terms: dict[str, int] = {}
        flat = np.fromiter(
            (terms.setdefault(word, len(terms)) for body in bodies for word in body),
            dtype=np.int64,
            count=int(body_lengths.sum()),
        )
        row_of_word = np.repeat(np.arange(count, dtype=np.int64), body_lengths)
        stride = max(count, 1)  # one key per (term, row): term * stride + row
        keys, frequencies = np.unique(flat * stride + row_of_word, return_counts=True)
        term_of = keys // stride
        rows = (keys % stride).astype(np.int32)
        starts = np.searchsorted(term_of, np.arange(len(terms) + 1)).astype(np.int64)

        hits = np.diff(starts).astype(np.float64)  # rows holding each term
        idf = np.log((count - hits + 0.5) / (hits + 0.5))
        idf[idf <= 0] = MIN_IDF
        tf = frequencies.astype(np.float64)
        norm = K1 * (1 - B + B * sizes[rows] / average)
        weights = idf[term_of] * tf * (K1 + 1) / (tf + norm)

        owner_tokens: dict[str, int] = {}
        file_tokens: dict[str, int] = {}
        owners = np.full(count, -1, dtype=np.int32)
        files = np.full(count, -1, dtype=np.int32)
        for row, scope in enumerate(scopes):
            for token in scope:
                if token[0] == "o":
                    owners[row] = owner_tokens.setdefault(token, len(owner_tokens))
                elif token[0] == "f":
                    files[row] = file_tokens.setdefault(token, len(file_tokens))
        ids = [doc_id for doc_id, _, _ in table_rows]
        return cls(
            version=version,
            ids=ids,
            positions={doc_id: row for row, doc_id in enumerate(ids)},
            owners=owners,
            owner_tokens=owner_tokens,
            files=files,
            file_tokens=file_tokens,
            terms=terms,
            starts=starts,
            rows=rows,
            weights=weights,
        )

    def _scores(
        self, counts: Counter[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """Every row's score and whether it holds any query term. A term repeated in the
        query counts once per occurrence, as FTS5 counts a repeated phrase."""
        scores = np.zeros(len(self.ids))
        matched = np.zeros(len(self.ids), dtype=bool)
        for term, repeats in counts.items():
            index = self.terms.get(term)
            if index is None:
                continue
            start, end = self.starts[index], self.starts[index + 1]
            rows = self.rows[start:end]
            scores[rows] += repeats * self.weights[start:end]
            matched[rows] = True
        return scores, matched

    def _in_scope(
        self, owner_token: str, file_tokens: Sequence[str] | None
    ) -> npt.NDArray[np.bool_] | None:
        """Rows of the owner (and files); None when no row can be."""
        owner = self.owner_tokens.get(owner_token)
        if owner is None:
            return None
        mask: npt.NDArray[np.bool_] = np.equal(self.owners, owner)
        if file_tokens is not None:
            wanted = [self.file_tokens[t] for t in file_tokens if t in self.file_tokens]
            mask &= np.isin(self.files, np.asarray(wanted, dtype=np.int32))
        return mask

    def search(
        self, counts: Counter[str], owner_token: str, file_tokens: Sequence[str] | None, k: int
    ) -> list[Hit]:
        scope = self._in_scope(owner_token, file_tokens)
        if scope is None:
            return []
        scores, matched = self._scores(counts)
        candidates = np.flatnonzero(matched & scope)
        # Best first; equal scores in rowid order.
        best = candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
        return [Hit(id=self.ids[row], score=float(scores[row])) for row in best]

    def scores(
        self,
        counts: Counter[str],
        ids: Sequence[str],
        owner_token: str,
        file_tokens: Sequence[str] | None,
    ) -> dict[str, float]:
        scope = self._in_scope(owner_token, file_tokens)
        if scope is None:
            return {}
        scores, matched = self._scores(counts)
        keep = matched & scope
        out: dict[str, float] = {}
        for doc_id in ids:
            row = self.positions.get(doc_id)
            if row is not None and keep[row]:
                out[doc_id] = float(scores[row])
        return out


Rows = Sequence[tuple[str, str, str]]


class ArraysCache:
    """Which chats' arrays are held, and when they are (re)built: once a chat has not
    changed for ``quiet_s``, by its next query, in a background thread unless
    ``in_background`` is false (then in the caller's). ``state(chat)`` gives the chat's
    (version, unix time of its last write); ``load(chat)`` its version and rows, read
    together. Thread-safe."""

    def __init__(
        self,
        *,
        state: Callable[[str], tuple[int, float]],
        load: Callable[[str], tuple[int, Rows]],
        quiet_s: float = ARRAYS_QUIET_S,
        in_background: bool = True,
        max_postings: int = ARRAYS_MAX_POSTINGS,
    ) -> None:
        self._state = state
        self._load = load
        self._quiet_s = quiet_s
        self._max_postings = max_postings
        self._builder = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyword-arrays")
            if in_background
            else None
        )
        self._arrays: OrderedDict[str, ChatArrays] = OrderedDict()  # LRU, guarded by:
        self._lock = threading.Lock()
        self._building: set[str] = set()
        # chat -> (version, monotonic time): no build of that version before that time
        # (too large or failed: never; evicted: not for ARRAYS_EVICTED_HOLD_S).
        self._hold: dict[str, tuple[int, float]] = {}

    def version_of(self, chat_id: str) -> int | None:
        with self._lock:
            arrays = self._arrays.get(chat_id)
        return None if arrays is None else arrays.version

    def current(self, chat_id: str) -> ChatArrays | None:
        """The chat's arrays if they are at its current version; otherwise None (the
        caller uses FTS5), and a build is started if the chat has been quiet."""
        version, changed_at = self._state(chat_id)
        with self._lock:
            arrays = self._arrays.get(chat_id)
            if arrays is not None and arrays.version == version:
                self._arrays.move_to_end(chat_id)
                return arrays
            if time.time() - changed_at < self._quiet_s or chat_id in self._building:
                return None
            held = self._hold.get(chat_id)
            if held is not None and held[0] == version and time.monotonic() < held[1]:
                return None
            self._building.add(chat_id)
        if self._builder is not None:
            self._builder.submit(self._build, chat_id)
            return None
        return self._build(chat_id)

    def _build(self, chat_id: str) -> ChatArrays | None:
        version = -1  # until read
        try:
            version, rows = self._load(chat_id)
            arrays = ChatArrays.build(version, rows)
            with self._lock:
                self._arrays.pop(chat_id, None)
                self._hold.pop(chat_id, None)
                if arrays.postings > self._max_postings:
                    self._hold[chat_id] = (version, math.inf)
                    return arrays
                self._arrays[chat_id] = arrays
                while sum(a.postings for a in self._arrays.values()) > self._max_postings:
                    evicted, old = self._arrays.popitem(last=False)
                    self._hold[evicted] = (old.version, time.monotonic() + ARRAYS_EVICTED_HOLD_S)
            return arrays
        except Exception:
            logger.exception("building the keyword arrays of chat %s failed", chat_id)
            with self._lock:
                self._hold[chat_id] = (version, math.inf)
            return None
        finally:
            with self._lock:
                self._building.discard(chat_id)

    def close(self) -> None:
        if self._builder is not None:
            self._builder.shutdown(wait=True, cancel_futures=True)
