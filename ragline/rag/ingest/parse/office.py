"""Word (python-docx) and PowerPoint (python-pptx).

DOCX: paragraphs and tables in document order, a new Document at every heading
(styles "Title" and "Heading N"), ``section`` = heading text, ``page`` = None (Word has
no stored pages). PPTX: one Document per slide with its shapes, tables and speaker
notes, ``page`` = slide number, ``section`` = slide title.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docx
import pptx
from docx.table import Table
from docx.text.paragraph import Paragraph
from llama_index.core.schema import Document
from pptx.shapes.base import BaseShape
from pptx.shapes.graphfrm import GraphicFrame
from pptx.shapes.group import GroupShape
from pptx.slide import Slide

from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.parse.common import make_document

_HEADING_STYLES = ("Title", "Heading")


def parse_docx(path: Path, *, limits: IngestLimits) -> list[Document]:
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for block in docx.Document(str(path)).iter_inner_content():
        if isinstance(block, Table):
            sections[-1][1].append(table_text(_docx_rows(block)))
            continue
        text = block.text
        if text.strip() and _is_heading(block):
            sections.append((text, []))
        sections[-1][1].append(text)
    return [make_document("\n\n".join(parts), section=title) for title, parts in sections]


def parse_pptx(path: Path, *, limits: IngestLimits) -> list[Document]:
    documents = []
    for number, slide in enumerate(pptx.Presentation(str(path)).slides, start=1):
        title = slide.shapes.title
        documents.append(
            make_document(
                "\n\n".join(_slide_texts(slide)),
                page=number,
                section=title.text_frame.text if title is not None else None,
            )
        )
    return documents


def table_text(rows: Iterator[list[str]]) -> str:
    """One line per row, cells joined by `` | ``."""
    return "\n".join(" | ".join(cells) for cells in rows if any(cells))


def _is_heading(paragraph: Paragraph) -> bool:
    style = paragraph.style
    name = style.name if style is not None else None
    return bool(name) and str(name).startswith(_HEADING_STYLES)


def _docx_rows(table: Table) -> Iterator[list[str]]:
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:  # a merged cell repeats: keep it once
            if cell._tc is not previous:
                cells.append(cell.text.strip())
            previous = cell._tc
        yield cells


def _slide_texts(slide: Slide) -> Iterator[str]:
    for shape in slide.shapes:
        yield from _shape_texts(shape)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            yield f"Notes:\n{notes.text}"


def _shape_texts(shape: BaseShape) -> Iterator[str]:
    if isinstance(shape, GroupShape):
        for child in shape.shapes:
            yield from _shape_texts(child)
    elif isinstance(shape, GraphicFrame) and shape.has_table:
        rows = ([cell.text.strip() for cell in row.cells] for row in shape.table.rows)
        yield table_text(rows)
    elif isinstance(shape, GraphicFrame) and shape.has_chart and shape.chart.has_title:
        yield shape.chart.chart_title.text_frame.text
    elif shape.has_text_frame:
        yield shape.text_frame.text  # type: ignore[attr-defined]
