"""Plain text (one Document) and Markdown (one Document per ATX heading)."""

from __future__ import annotations

import re
from pathlib import Path

from llama_index.core.schema import Document

from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.parse.common import make_document, read_text

_HEADING_START = re.compile(r" {0,3}#{1,6}[ \t]+")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def parse_text(path: Path, *, limits: IngestLimits) -> list[Document]:
    return [make_document(read_text(path, limits))]


def parse_markdown(path: Path, *, limits: IngestLimits) -> list[Document]:
    return markdown_documents(read_text(path, limits))


def markdown_documents(markdown: str) -> list[Document]:
    return [make_document(body, section=title) for title, body in split_markdown(markdown)]


def split_markdown(markdown: str) -> list[tuple[str | None, str]]:
    """(heading, text) per section; each ATX heading outside a code fence opens one, and
    its line stays in the text. Text before the first heading has no heading; a heading
    with no text of its own is carried into the next section."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    fence: str | None = None
    for line in markdown.splitlines():
        if fence is not None:
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = None
        elif opening := _FENCE.match(line):
            fence = opening.group(1)
        elif (heading := _heading(line)) is not None:
            title, lines = sections[-1]
            # a heading directly followed by a subheading opens no section of its own
            carried = (
                sections.pop()[1] if title is not None and not "".join(lines[1:]).strip() else []
            )
            sections.append((heading.strip(), carried))
        sections[-1][1].append(line)
    return [(title, "\n".join(lines)) for title, lines in sections if any(lines)]


def _heading(line: str) -> str | None:
    """An ATX heading's text without its closing ``#`` sequence, or None. Not one regex
    (``#+ (.+?)(?: +#+)? *$``): its lazy title retries the closing sequence at every space
    of a long run (quadratic: 3.1 s for one heading line of 16 KiB)."""
    start = _HEADING_START.match(line)
    if start is None:
        return None
    if start.end() == len(line):  # "#" and blanks only: a heading if it has two blanks
        marker = start.group()
        return "" if len(marker) - len(marker.rstrip(" \t")) >= 2 else None
    title = line[start.end() :].rstrip(" \t")
    closed = title.rstrip("#")
    if closed != title and closed and closed[-1] in " \t":
        title = closed
    return title
