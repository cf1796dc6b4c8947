"""HTML: the main content by trafilatura (no navigation, scripts, styles, footers),
rendered as Markdown so its headings split it into sections like a Markdown file.

trafilatura was chosen over BeautifulSoup ``get_text``: on the Wikipedia test page the
latter keeps coordinates, infobox fragments one word per line and ~60 category links,
while trafilatura keeps the article, its tables and its headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import trafilatura
from llama_index.core.schema import Document

from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.parse.common import make_document, read_text
from ragline.rag.ingest.parse.text import markdown_documents

_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_CITATION = re.compile(r"<sup>\\\[[^\]<]{0,40}\\\]</sup>")  # Wikipedia-style [12], [update]
_INLINE_TAG = re.compile(r"</?su[bp]>")


def parse_html(path: Path, *, limits: IngestLimits) -> list[Document]:
    html = read_text(path, limits)
    markdown = trafilatura.extract(
        html,
        output_format="markdown",
        favor_recall=True,
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        with_metadata=False,
    )
    if markdown:
        markdown = _INLINE_TAG.sub("", _CITATION.sub("", markdown))
        return markdown_documents(_MARKDOWN_ESCAPE.sub(r"\1", markdown))
    # pages with too little prose for the extractor: all visible text, unsectioned
    return [make_document(trafilatura.html2txt(html))]
