"""PDF with pypdf (BSD; PyMuPDF is AGPL): one Document per page, ``page`` 1-based."""

from __future__ import annotations

import logging
from pathlib import Path

from llama_index.core.schema import Document
from pypdf import get_configuration
from pypdf.errors import LimitReachedError

from ragline.rag.ingest.errors import ParseError
from ragline.rag.ingest.guards import IngestLimits, open_pdf
from ragline.rag.ingest.parse.common import make_document

logger = logging.getLogger(__name__)


def parse_pdf(path: Path, *, limits: IngestLimits) -> list[Document]:
    """A page whose content cannot be decoded is skipped (logged); all failing is an error."""
    reader = open_pdf(path, limits)
    documents: list[Document] = []
    failed = 0
    over_limit = False
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text()
        except LimitReachedError:
            logger.warning("page %d of %s is over pypdf's limits", number, path, exc_info=True)
            failed += 1
            over_limit = True
            continue
        except Exception:  # pypdf raises many types on broken content streams
            logger.warning("cannot extract text from page %d of %s", number, path, exc_info=True)
            failed += 1
            continue
        documents.append(make_document(text, page=number))
    if failed and not documents and over_limit:
        limit = get_configuration().zlib_maximum_output_length
        raise ParseError(
            f"The PDF is too large when decompressed: a page's content is over the limit of "
            f"{limit:,} bytes."
        )
    if failed and not documents:
        raise ParseError("The PDF is damaged: no page could be read.")
    return documents
