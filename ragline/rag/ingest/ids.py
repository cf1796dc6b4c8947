"""Deterministic chunk ids: the same text in the same file always gets the same id.

``{file_id}-{hash(text)}-{n}``, ``n`` counting repeats of that text within the file. A
re-ingested file therefore maps unchanged chunks onto their stored vectors, and a job that
runs twice (a retry after a crash) overwrites instead of duplicating.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from llama_index.core.schema import TextNode


def chunk_id(file_id: str, text: str, occurrence: int) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    return f"{file_id}-{digest}-{occurrence}"


def assign_chunk_ids(nodes: Sequence[TextNode], *, file_id: str) -> list[TextNode]:
    seen: Counter[str] = Counter()
    for ordinal, node in enumerate(nodes):
        text = node.get_content()
        node.id_ = chunk_id(file_id, text, seen[text])
        node.metadata["ordinal"] = ordinal
        seen[text] += 1
    return list(nodes)
