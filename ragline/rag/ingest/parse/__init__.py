"""``parse``: one stored upload -> LlamaIndex Documents, one module per document family.

Every Document's metadata has ``page`` (int, 1-based, or None) and ``section`` (str or
None); texts are normalised (``common.normalise``). Call ``guards.check_file`` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Protocol

from llama_index.core.schema import Document

from ragline.rag.ingest.errors import IngestError, ParseError
from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.parse.html import parse_html
from ragline.rag.ingest.parse.office import parse_docx, parse_pptx
from ragline.rag.ingest.parse.pdf import parse_pdf
from ragline.rag.ingest.parse.spreadsheet import parse_csv, parse_xlsx
from ragline.rag.ingest.parse.text import parse_markdown, parse_text
from ragline.rag.ingest.sniff import DetectedType, Family


class Parser(Protocol):
    def __call__(self, path: Path, *, limits: IngestLimits) -> list[Document]: ...


_PARSERS: Final[dict[Family, Parser]] = {
    "pdf": parse_pdf,
    "docx": parse_docx,
    "pptx": parse_pptx,
    "html": parse_html,
    "markdown": parse_markdown,
    "text": parse_text,
    "csv": parse_csv,
    "xlsx": parse_xlsx,
}
_LABELS: Final[dict[Family, str]] = {
    "pdf": "PDF",
    "docx": "Word document",
    "pptx": "PowerPoint file",
    "html": "HTML page",
    "markdown": "Markdown file",
    "text": "text file",
    "csv": "CSV file",
    "xlsx": "Excel workbook",
}

__all__ = ["parse"]


def parse(path: Path, detected: DetectedType, *, limits: IngestLimits) -> list[Document]:
    """Documents with text, in reading order; ``ParseError`` if the file yields none.

    Third-party parsers raise many exception types on malformed input; any of them
    becomes a ``ParseError`` here, with the original chained for the logs.
    """
    try:
        documents = _PARSERS[detected.family](path, limits=limits)
    except (IngestError, MemoryError):  # MemoryError: over the budget (``budget.py``)
        raise
    except Exception as exc:
        label = _LABELS[detected.family]
        raise ParseError(f"The {label} could not be read; it may be damaged.") from exc
    documents = [document for document in documents if document.text.strip()]
    if not documents:
        raise ParseError("no text found: the file holds no extractable text (scanned images?)")
    return documents
