"""Store interfaces shared by the ingestion and query pipelines.

Every chunk is identified by a string id that is the same in the vector store and in the
keyword index, and carries ``owner_id``, ``chat_id`` and ``file_id`` so that filters are
applied inside each store's query, never after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeywordDoc:
    id: str
    text: str
    owner_id: str
    chat_id: str
    file_id: str


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float


class KeywordIndex(Protocol):
    """Persistent BM25-ranked keyword index, updated incrementally, safe with several
    worker processes."""

    def add(self, docs: Sequence[KeywordDoc]) -> None:
        """Insert or replace (same id) these chunks."""
        ...

    def delete_ids(self, ids: Sequence[str]) -> None: ...

    def delete_file(self, file_id: str) -> None: ...

    def delete_chat(self, chat_id: str) -> None: ...

    def count(self, *, file_id: str | None = None, chat_id: str | None = None) -> int: ...

    def ids(self, *, file_id: str) -> set[str]:
        """Ids of the file's chunks (used to sweep rows left by a crashed job)."""
        ...

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        """The original text of these chunks (those that exist), by id."""
        ...

    def search(
        self,
        query: str,
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
        k: int = 10,
    ) -> list[Hit]:
        """Best ``k`` chunks of that owner's chat (and files, when given), best first."""
        ...

    def scores(
        self,
        query: str,
        ids: Sequence[str],
        *,
        owner_id: str,
        chat_id: str,
        file_ids: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """BM25 of these chunks for ``query``, on :meth:`search`'s scale (same statistics,
        same scope), for those of them in the scope that match it (others score 0)."""
        ...

    def close(self) -> None: ...
