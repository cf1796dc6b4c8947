"""Recognise an upload by its content; the file name only picks a flavour of text.

Binary families are recognised by their bytes: ``%PDF-`` magic, and OOXML archives by
their parts in the ZIP central directory. Anything else must be text (UTF-8, or UTF-16
with a byte-order mark, no NUL, mostly printable): HTML if it starts with markup; then
the extension decides between Markdown, CSV and plain text, and the content confirms.

CSV rule: a ``.csv``/``.tsv`` is CSV if its first 64 KiB parse with the ``csv`` module
(dialect from ``csv.Sniffer``, else excel-tab if the header has a tab, else excel) into
two or more rows, all as wide as the header. Otherwise it is indexed as plain text: its
content is still worth searching. An unknown extension is Markdown if it has ATX headings.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Final, Literal

import filetype  # type: ignore[import-untyped]

from ragline.rag.ingest.errors import UnsupportedFile
from ragline.rag.ingest.guards import DEFAULT_LIMITS, IngestLimits, open_zip

Family = Literal["pdf", "docx", "pptx", "html", "markdown", "text", "csv", "xlsx"]
Kind = Literal["document", "spreadsheet"]


@dataclass(frozen=True)
class DetectedType:
    family: Family
    mime: str
    kind: Kind


HEAD_BYTES: Final = 64 * 1024
_SNIFFER_SAMPLE: Final = 16 * 1024
_MIN_PRINTABLE: Final = 0.95
_MIMES: Final[dict[Family, str]] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "markdown": "text/markdown",
    "text": "text/plain",
    "csv": "text/csv",
}
_OOXML_PARTS: Final[tuple[tuple[str, Family], ...]] = (
    ("word/document.xml", "docx"),
    ("ppt/presentation.xml", "pptx"),
    ("xl/workbook.xml", "xlsx"),
)
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_UTF16_BOMS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_MARKDOWN_SUFFIXES: Final = frozenset({".md", ".markdown", ".mdown", ".mkd"})
_CSV_SUFFIXES: Final = frozenset({".csv", ".tsv"})
_HTML_SUFFIXES: Final = frozenset({".html", ".htm", ".xhtml"})
_PLAIN_SUFFIXES: Final = frozenset({".txt", ".text", ".log"})
_HTML_MARKUP = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_CONTROL_OK: Final = frozenset("\t\n\r\f\v")
ACCEPTED = "PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), HTML, Markdown, text or CSV"


def detect_type(
    path: Path, filename: str, *, limits: IngestLimits = DEFAULT_LIMITS
) -> DetectedType:
    """The family of ``path`` from its head (and a ZIP's directory), or ``UnsupportedFile``.

    ``filename`` is the name the user gave; it is used for text flavours and messages.
    """
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    if not head:
        raise UnsupportedFile("The file is empty.")
    if head.startswith(b"%PDF-"):
        return _detected("pdf")
    if head.startswith(_ZIP_MAGIC):
        return _detected(_ooxml_family(path, filename, limits))
    if head.startswith(_OLE2_MAGIC):
        raise UnsupportedFile(
            "This is a legacy (.doc/.xls/.ppt) or password-protected Office file; "
            "save it as .docx/.xlsx/.pptx without a password and upload it again."
        )
    complete = len(head) < HEAD_BYTES
    text = _decode_head(head, filename, complete=complete)
    if complete and not text.strip():
        raise UnsupportedFile("The file is empty (it holds only whitespace).")
    return _detected(_text_family(text, filename, complete=complete))


def text_encoding(head: bytes) -> str:
    """The codec for a text file, from its first bytes: UTF-16 by BOM, else UTF-8."""
    return "utf-16" if head.startswith(_UTF16_BOMS) else "utf-8-sig"


def csv_dialect(sample: str, *, complete: bool) -> type[csv.Dialect] | None:
    """A dialect under which ``sample`` parses into >= 2 rows of the header's width.

    Decided by content alone, so the parser (which sees no file name) agrees with it.
    """
    if not complete:
        sample = sample[: sample.rfind("\n") + 1]
    candidates: list[type[csv.Dialect]] = []
    with contextlib.suppress(csv.Error):
        candidates.append(csv.Sniffer().sniff(sample[:_SNIFFER_SAMPLE], delimiters=",;\t|"))
    candidates.append(csv.excel_tab if "\t" in sample.partition("\n")[0] else csv.excel)
    for dialect in candidates:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), dialect) if any(map(str.strip, r))]
        except csv.Error:
            continue
        if not complete:
            rows = rows[:-1]  # a quoted field may run past the sample
        if len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows):
            return dialect
    return None


def _detected(family: Family) -> DetectedType:
    kind: Kind = "spreadsheet" if family in ("csv", "xlsx") else "document"
    return DetectedType(family=family, mime=_MIMES[family], kind=kind)


def _ooxml_family(path: Path, filename: str, limits: IngestLimits) -> Family:
    with open_zip(path, limits) as archive:
        names = set(archive.namelist())
    if "[Content_Types].xml" in names:
        for part, family in _OOXML_PARTS:
            if part in names:
                return family
    if "mimetype" in names:
        raise UnsupportedFile(
            f"{filename!r} is an OpenDocument or EPUB file; save it as .docx and upload again."
        )
    raise UnsupportedFile(
        f"{filename!r} is a ZIP archive, not a Word, PowerPoint or Excel document. "
        f"Accepted: {ACCEPTED}."
    )


_DROP_CONTROL_OK: Final = str.maketrans(dict.fromkeys(_CONTROL_OK))


def _decode_head(head: bytes, filename: str, *, complete: bool) -> str:
    encoding = text_encoding(head)
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=complete)
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text or _printable_share(text) < _MIN_PRINTABLE:
        raise UnsupportedFile(_binary_reason(head, filename, decoded=text is not None))
    return text


def _printable_share(text: str) -> float:
    if not text:
        return 1.0
    if text.translate(_DROP_CONTROL_OK).isprintable():  # the usual case, without a loop
        return 1.0
    printable = sum(1 for char in text if char.isprintable() or char in _CONTROL_OK)
    return printable / len(text)


def _binary_reason(head: bytes, filename: str, *, decoded: bool) -> str:
    kind = filetype.guess(head)
    if kind is not None:
        return (
            f"{filename!r} is a binary file ({kind.mime}, .{kind.extension}), "
            f"not a supported document. Accepted: {ACCEPTED}."
        )
    if b"\x00" in head or decoded:
        return f"{filename!r} is a binary file, not a supported document. Accepted: {ACCEPTED}."
    return (
        f"{filename!r} is not UTF-8 text (nor UTF-16 with a byte-order mark); "
        "save it as UTF-8 and upload it again."
    )


def _text_family(text: str, filename: str, *, complete: bool) -> Family:
    suffix = PurePath(filename).suffix.lower()
    stripped = text.lstrip()
    if stripped.startswith("<") and (
        suffix in _HTML_SUFFIXES or _HTML_MARKUP.search(stripped[:4096])
    ):
        return "html"
    if suffix in _MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in _CSV_SUFFIXES:
        return "csv" if csv_dialect(text, complete=complete) else "text"
    if suffix in _PLAIN_SUFFIXES:
        return "text"
    return "markdown" if _ATX_HEADING.search(text) else "text"
