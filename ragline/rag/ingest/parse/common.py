"""What every family parser shares: text normalisation, the Document shape, text reading."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from llama_index.core.schema import Document

from ragline.rag.ingest.guards import IngestLimits, check_text_size
from ragline.rag.ingest.sniff import text_encoding

_MAX_SECTION_CHARS: Final = 200
_BREAKS: Final = {"\r\n": "\n", "\r": "\n", "\f": "\n\n", "\v": "\n", "\u2028": "\n"}
_BREAK = re.compile("|".join(map(re.escape, _BREAKS)) + "|\u2029")
# C0 controls except tab/newline, DEL, zero-width space, BOM; no-break space becomes a space
_CLEAN: Final = {
    **dict.fromkeys((c for c in range(32) if chr(c) not in "\t\n"), None),
    0x7F: None,
    0x200B: None,
    0xFEFF: None,
    0xA0: " ",
}
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    """NFC text without NUL/control characters; runs of spaces inside a line become one,
    indentation stays (code), and paragraph breaks survive as one blank line."""
    text = _BREAK.sub(lambda m: _BREAKS.get(m.group(), "\n\n"), text)
    text = unicodedata.normalize("NFC", text.translate(_CLEAN))
    # rstrip, not a `[ \t]+$` regex: that retries at every space of a long run (quadratic,
    # 3.5 s for one line of 32 KiB of spaces)
    text = "\n".join(line.rstrip(" \t") for line in _INNER_SPACES.sub(" ", text).split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip("\n").rstrip()


def make_document(
    text: str,
    *,
    page: int | None = None,
    section: str | None = None,
    extra: Mapping[str, int | str] | None = None,
) -> Document:
    """A Document whose metadata always has ``page`` (1-based) and ``section``."""
    title = " ".join(normalise(section).split())[:_MAX_SECTION_CHARS] if section else ""
    metadata: dict[str, int | str | None] = {"page": page, "section": title or None}
    metadata.update(extra or {})
    return Document(text=normalise(text), metadata=metadata)


def read_text(path: Path, limits: IngestLimits) -> str:
    """The whole file as text, within the size limit; undecodable bytes become U+FFFD."""
    check_text_size(path, limits)
    data = path.read_bytes()
    return data.decode(text_encoding(data[:2]), errors="replace")
