"""Sentence-aware chunking with content-defined boundaries.

Units are sentences (punkt, as LlamaIndex's ``SentenceSplitter`` uses), packed greedily up to
``chunk_size`` tokens of the embedding model. A chunk also ends after a paragraph, or after
a sentence whose hash picks it as an anchor, once it holds ``min_tokens``. Boundaries
therefore depend on nearby text only: editing one paragraph changes the chunks around it,
and the chunks before and after come out identical, so their ids and vectors are kept on
re-ingest (a plain greedy splitter shifts every later boundary).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import BaseNode, Document, TextNode, TransformComponent
from llama_index.core.utils import globals_helper
from pydantic import ConfigDict

from ragline.rag.embeddings.base import Tokenizer

_PARAGRAPH = re.compile(r"\n\s*\n")
ANCHOR_MODULUS = 5  # ~1 in 5 sentences may end a chunk early: resync within a few sentences


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    tokens: int
    paragraph_end: bool


def _is_anchor(text: str) -> bool:
    digest = hashlib.blake2b(text.strip().encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % ANCHOR_MODULUS == 0


class StableChunker(TransformComponent):
    """Documents in, chunk nodes out; each node knows its span in its document."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tokenizer: Any
    chunk_size: int = 250
    min_tokens: int = 64

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for document in nodes:
            out.extend(self.split_document(document))
        return out

    def split_document(self, document: BaseNode) -> list[TextNode]:
        text = document.get_content()
        nodes = []
        for start, end, tokens in self._spans(text):
            chunk = text[start:end].strip()
            if not chunk:
                continue
            lead = len(text[start:end]) - len(text[start:end].lstrip())
            node = TextNode(
                text=chunk,
                metadata={
                    **document.metadata,
                    "start_char": start + lead,
                    "end_char": start + lead + len(chunk),
                    "tokens": tokens,
                },
                start_char_idx=start + lead,
                end_char_idx=start + lead + len(chunk),
            )
            nodes.append(node)
        return nodes

    def _spans(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, tokens) of each chunk; tokens sums the units' model tokens."""
        spans: list[tuple[int, int, int]] = []
        chunk_start: int | None = None
        chunk_end = 0
        tokens = 0
        for unit in self._units(text):
            if chunk_start is not None and tokens + unit.tokens > self.chunk_size:
                spans.append((chunk_start, chunk_end, tokens))
                chunk_start, tokens = None, 0
            if chunk_start is None:
                chunk_start = unit.start
            chunk_end, tokens = unit.end, tokens + unit.tokens
            boundary = unit.paragraph_end or _is_anchor(text[unit.start : unit.end])
            if boundary and tokens >= self.min_tokens:
                spans.append((chunk_start, chunk_end, tokens))
                chunk_start, tokens = None, 0
        if chunk_start is not None:
            spans.append((chunk_start, chunk_end, tokens))
        return spans

    def _units(self, text: str) -> list[_Unit]:
        """Sentences with their token counts; sentences over the limit are split further."""
        tokenizer: Tokenizer = self.tokenizer
        # Read once: LlamaIndex's property re-checks NLTK's data on every access (measured:
        # ~5% of the ingest path's GIL time when read per paragraph).
        punkt = globals_helper.punkt_tokenizer
        units: list[_Unit] = []
        paragraph_start = 0
        for match in [*_PARAGRAPH.finditer(text), None]:
            paragraph_end = match.start() if match else len(text)
            paragraph = text[paragraph_start:paragraph_end]
            sentences = list(punkt.span_tokenize(paragraph))
            for index, (s_start, s_end) in enumerate(sentences):
                last = index == len(sentences) - 1
                start, end = paragraph_start + s_start, paragraph_start + s_end
                count = len(tokenizer(text[start:end]))
                if count <= self.chunk_size:
                    units.append(_Unit(start, end, count, last))
                else:
                    units.extend(self._split_long(text, start, end, last))
            paragraph_start = match.end() if match else len(text)
        return units

    def _split_long(self, text: str, start: int, end: int, paragraph_end: bool) -> list[_Unit]:
        splitter = SentenceSplitter(
            chunk_size=self.chunk_size, chunk_overlap=0, tokenizer=self.tokenizer
        )
        units = []
        cursor = start
        pieces = splitter.split_text(text[start:end])
        for index, piece in enumerate(pieces):
            found = text.find(piece, cursor, end)
            piece_start = found if found >= 0 else cursor
            piece_end = min(end, piece_start + len(piece))
            units.append(
                _Unit(
                    piece_start,
                    piece_end,
                    len(self.tokenizer(piece)),
                    paragraph_end and index == len(pieces) - 1,
                )
            )
            cursor = piece_end
        return units


def warm_up() -> None:
    """Load punkt (NLTK's import and model: ~1.5 s of CPU) before the first file needs it."""
    list(globals_helper.punkt_tokenizer.span_tokenize("Warm up. Done."))


def chunk_documents(
    documents: Sequence[Document], *, tokenizer: Tokenizer, chunk_size: int
) -> list[TextNode]:
    chunker = StableChunker(tokenizer=tokenizer, chunk_size=chunk_size)
    return [node for node in chunker(documents) if isinstance(node, TextNode)]
