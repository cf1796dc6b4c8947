"""FTS5 query text for the SQLite keyword index: scope tokens (hashed ids, owners, files)
and query terms, quoted so that no user text is read as FTS5 syntax."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence


def scope_token(kind: str, value: str) -> str:
    """A single FTS5 token standing for an id, owner or file (128-bit hash)."""
    return kind + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()


def quote_tokens(tokens: Sequence[str]) -> list[str]:
    return ['"' + token.replace('"', '""') + '"' for token in tokens]


def file_tokens(file_ids: Sequence[str] | None) -> list[str] | None:
    return None if file_ids is None else [scope_token("f", f) for f in file_ids]


def any_of(tokens: Sequence[str]) -> str:
    return "(" + " OR ".join(quote_tokens(tokens)) + ")"


def fts_expression(
    counts: Counter[str],
    owner_id: str,
    file_ids: Sequence[str] | None,
    *,
    ids: Sequence[str] | None = None,
) -> str:
    """The FTS5 query for the query's term counts: scope tokens AND any query term."""
    scope = quote_tokens([scope_token("o", owner_id)])[0]
    files = file_tokens(file_ids)
    if files is not None:
        scope += " AND " + any_of(files)
    if ids is not None:
        scope += " AND " + any_of([scope_token("i", i) for i in ids])
    # A term repeated in the query is repeated in the expression, so bm25() counts it
    # once per occurrence, as BM25's query term frequency does.
    body = " OR ".join(quote_tokens([term for term, n in counts.items() for _ in range(n)]))
    return f"scope : ({scope}) AND body : ({body})"
