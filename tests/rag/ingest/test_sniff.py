"""Detection by content: each family from generated files, and refusals with reasons."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

import pytest

from ragline.rag.ingest.errors import ParseError, UnsafeFile, UnsupportedFile
from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.sniff import detect_type
from tests.rag.ingest import builders

Write = Callable[[str, bytes], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def _write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write


def family(write: Write, name: str, data: bytes) -> str:
    return detect_type(write(name, data), name).family


CSV = b"name,city,age\nAda,London,36\nLinus,Helsinki,54\n"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("report.pdf", builders.pdf_bytes(["hello"]), "pdf"),
        ("report.bin", builders.pdf_bytes(["hello"]), "pdf"),  # content wins over name
        ("page.html", b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", "html"),
        ("page.txt", b"  \n<html lang='en'><head><title>T</title></head></html>", "html"),
        ("fragment.htm", b"<p>Only a fragment</p>", "html"),
        ("notes.md", b"Some *markdown* without headings\n", "markdown"),
        ("README", b"# Title\n\nBody text\n", "markdown"),
        ("notes.txt", b"# Looks like a heading\nbut the extension says plain text\n", "text"),
        ("notes.txt", codecs.BOM_UTF16_LE + "Grüße aus Köln\n".encode("utf-16-le"), "text"),
        ("notes.txt", codecs.BOM_UTF8 + "Café\n".encode(), "text"),
        ("data.csv", CSV, "csv"),
        ("data.csv", b"id;label\n1;one\n2;two\n", "csv"),
        ("data.tsv", b"id\tlabel\n1\tone\n2\tt w o\n", "csv"),
        ("names.csv", b"name\nAda\nLinus\n", "csv"),  # one column is still a table
        ("prose.csv", b"Dear team,\nthe numbers, as promised, follow.\nBest\n", "text"),
        ("data.txt", CSV, "text"),
    ],
)
def test_text_and_pdf_families(write: Write, name: str, data: bytes, expected: str) -> None:
    assert family(write, name, data) == expected


def test_office_families_by_parts_not_name(write: Write) -> None:
    assert family(write, "a.docx", builders.docx_bytes()) == "docx"
    assert family(write, "a.pptx", builders.pptx_bytes()) == "pptx"
    assert family(write, "a.zip", builders.xlsx_bytes({"S": [["a"], [1]]})) == "xlsx"


def test_detected_type_carries_mime_and_kind(write: Write) -> None:
    xlsx = detect_type(write("a.xlsx", builders.xlsx_bytes({"S": [["a"]]})), "a.xlsx")
    assert xlsx.kind == "spreadsheet"
    assert xlsx.mime.endswith("spreadsheetml.sheet")
    csv_type = detect_type(write("a.csv", CSV), "a.csv")
    assert (csv_type.mime, csv_type.kind) == ("text/csv", "spreadsheet")
    pdf = detect_type(write("a.pdf", builders.pdf_bytes(["x"])), "a.pdf")
    assert (pdf.mime, pdf.kind) == ("application/pdf", "document")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b" \n\t\n", "empty"),
        ("photo.txt", builders.png_bytes(), "image/png"),
        ("program.pdf", builders.elf_bytes(), "application/x-executable"),
        ("archive.pdf", builders.plain_zip_bytes(), "ZIP archive"),
        ("latin1.txt", "Café crème".encode("latin-1"), "not UTF-8"),
        ("legacy.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "legacy"),
        ("nul.txt", b"text with a \x00 NUL byte", "binary"),
    ],
)
def test_refused_with_a_clear_reason(write: Write, name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedFile) as raised:
        detect_type(write(name, data), name)
    assert reason in raised.value.reason


def test_truncated_office_file_is_a_parse_error(write: Write) -> None:
    data = builders.docx_bytes()
    with pytest.raises(ParseError, match="damaged or truncated"):
        detect_type(write("cut.docx", data[: len(data) // 2]), "cut.docx")


def test_zip_with_too_many_parts_is_refused_before_listing(write: Write) -> None:
    path = write("many.docx", builders.docx_bytes())
    with pytest.raises(UnsafeFile, match="parts"):
        detect_type(path, "many.docx", limits=IngestLimits(max_zip_entries=3))
