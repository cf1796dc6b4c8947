"""CSV and XLSX as text: each row becomes ``column: value; column: value`` using the
header row's names, and consecutive rows are grouped into Documents of at most
``ROWS_PER_DOCUMENT`` rows / ``CHARS_PER_DOCUMENT`` characters. Metadata: ``section`` =
sheet name (None for CSV), ``row_start``/``row_end`` = 1-based row numbers (header = 1).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

import openpyxl
from llama_index.core.schema import Document

from ragline.rag.ingest.errors import ParseError
from ragline.rag.ingest.guards import IngestLimits, check_cell_count, check_text_size
from ragline.rag.ingest.parse.common import make_document
from ragline.rag.ingest.sniff import HEAD_BYTES, csv_dialect, text_encoding

ROWS_PER_DOCUMENT: Final = 50
CHARS_PER_DOCUMENT: Final = 4000

Row = Sequence[object]


def parse_csv(path: Path, *, limits: IngestLimits) -> list[Document]:
    check_text_size(path, limits)
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    encoding = text_encoding(head)
    sample = head.decode(encoding, errors="ignore")
    dialect = csv_dialect(sample, complete=len(head) < HEAD_BYTES)
    if dialect is None:
        raise ParseError("The CSV file has rows of different widths.")
    with path.open(encoding=encoding, errors="replace", newline="") as stream:
        try:
            return list(_row_documents(csv.reader(stream, dialect), None, limits))
        except csv.Error as exc:
            raise ParseError(f"The CSV file is malformed: {exc}.") from exc


def parse_xlsx(path: Path, *, limits: IngestLimits) -> list[Document]:
    # A file object, not the path: openpyxl refuses paths without an Excel extension, and
    # stored files are named by random keys.
    stream = path.open("rb")
    workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    try:
        documents: list[Document] = []
        for sheet in workbook.worksheets:
            rows, columns = sheet.max_row or 0, sheet.max_column or 0
            check_cell_count(rows * columns, limits)  # the declared size, before reading
            sheet.reset_dimensions()  # a lying <dimension> must not hide rows: read all
            documents.extend(_row_documents(sheet.iter_rows(values_only=True), sheet.title, limits))
        return documents
    finally:
        workbook.close()
        stream.close()


def _row_documents(
    rows: Iterable[Row], sheet: str | None, limits: IngestLimits
) -> Iterator[Document]:
    header: list[str] | None = None
    block: list[str] = []
    first = last = 0
    cells = 0
    for number, row in enumerate(rows, start=1):
        cells += len(row)
        check_cell_count(cells, limits)
        values = [_cell_text(value) for value in row]
        if not any(values):
            continue
        if header is None:
            header = [value or f"column {i}" for i, value in enumerate(values, start=1)]
            continue
        line = _row_line(header, values)
        if block and (
            len(block) >= ROWS_PER_DOCUMENT or _size(block) + len(line) > CHARS_PER_DOCUMENT
        ):
            yield _block(block, sheet, first, last)
            block = []
        if not block:
            first = number
        block.append(line)
        last = number
    if block:
        yield _block(block, sheet, first, last)
    elif header is not None:  # a header without data is still text worth finding
        yield make_document("; ".join(header), section=sheet, extra={"row_start": 1, "row_end": 1})


def _row_line(header: list[str], values: list[str]) -> str:
    names = header + [f"column {i}" for i in range(len(header) + 1, len(values) + 1)]
    pairs = zip(names, values, strict=False)
    return "; ".join(f"{name}: {value}" for name, value in pairs if value)


def _block(lines: list[str], sheet: str | None, first: int, last: int) -> Document:
    return make_document(
        "\n".join(lines), section=sheet, extra={"row_start": first, "row_end": last}
    )


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split())
