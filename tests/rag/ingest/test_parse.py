"""Parsing generated files: page/section metadata, reading order, normalised text."""

from __future__ import annotations

import ast
import datetime as dt
import itertools
from pathlib import Path

import pytest
from llama_index.core.schema import Document

from ragline.rag.ingest.errors import ParseError, UnsafeFile
from ragline.rag.ingest.guards import IngestLimits, check_file
from ragline.rag.ingest.parse import parse
from ragline.rag.ingest.parse.common import normalise
from ragline.rag.ingest.parse.spreadsheet import ROWS_PER_DOCUMENT
from ragline.rag.ingest.parse.text import split_markdown
from ragline.rag.ingest.sniff import detect_type
from tests.rag.ingest import builders

LIMITS = IngestLimits()


def ingest(path: Path, data: bytes | str, limits: IngestLimits = LIMITS) -> list[Document]:
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    detected = detect_type(path, path.name, limits=limits)
    check_file(path, detected, limits)
    documents = parse(path, detected, limits=limits)
    for document in documents:
        assert {"page", "section"} <= document.metadata.keys()
        assert document.text.strip() and "\x00" not in document.text
    return documents


def sections(documents: list[Document]) -> list[str | None]:
    return [document.metadata["section"] for document in documents]


def test_pdf_one_document_per_page(tmp_path: Path) -> None:
    pages = ["Alpha opens the report.", "The invoice total is 4,200 euros.", "Closing words."]
    documents = ingest(tmp_path / "r.pdf", builders.pdf_bytes(pages))
    assert [d.metadata["page"] for d in documents] == [1, 2, 3]
    assert "4,200 euros" in documents[1].text
    assert sections(documents) == [None, None, None]


def test_pdf_without_text(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="no text found"):
        ingest(tmp_path / "scan.pdf", builders.pdf_bytes(["", ""]))


def test_docx_sections_by_heading_with_tables(tmp_path: Path) -> None:
    documents = ingest(tmp_path / "guide.docx", builders.docx_bytes())
    assert sections(documents) == [None, "Installation", "Configuration"]
    assert documents[0].text == "Preface text before any heading."
    assert documents[2].text.startswith("Configuration\n\nSet the port")
    assert "Key | Value\nport | 8080" in documents[2].text
    assert {d.metadata["page"] for d in documents} == {None}


def test_docx_without_text(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="no text found"):
        ingest(tmp_path / "blank.docx", builders.empty_docx_bytes())


def test_pptx_one_document_per_slide_with_notes_and_tables(tmp_path: Path) -> None:
    documents = ingest(tmp_path / "deck.pptx", builders.pptx_bytes())
    assert [d.metadata["page"] for d in documents] == [1, 2]
    assert sections(documents) == ["Quarterly results", "Roadmap"]
    assert "Revenue grew twelve percent." in documents[0].text
    assert "Notes:\nMention the new region." in documents[0].text
    assert "Q2 | Offline mode" in documents[1].text


def test_xlsx_rows_as_text_per_sheet(tmp_path: Path) -> None:
    data = builders.xlsx_bytes(
        {
            "Sales": [
                ["Region", "Amount", "Closed"],
                ["North", 1200.0, dt.datetime(2024, 3, 1)],
                [None, None, None],
                ["South", 950.5, None],
            ],
            "Empty": [],
            "Notes": [["Remark"], ["Check the south figures"]],
        }
    )
    documents = ingest(tmp_path / "book.xlsx", data)
    assert sections(documents) == ["Sales", "Notes"]
    assert documents[0].text == (
        "Region: North; Amount: 1200; Closed: 2024-03-01\nRegion: South; Amount: 950.5"
    )
    assert (documents[0].metadata["row_start"], documents[0].metadata["row_end"]) == (2, 4)
    assert documents[1].text == "Remark: Check the south figures"


def test_xlsx_cell_limit(tmp_path: Path) -> None:
    header: list[object] = [f"c{i}" for i in range(10)]
    rows = [header] + [list(range(10))] * 9
    with pytest.raises(UnsafeFile, match="50 cells"):
        ingest(
            tmp_path / "wide.xlsx",
            builders.xlsx_bytes({"S": rows}),
            IngestLimits(max_spreadsheet_cells=50),
        )


def test_csv_blocks_of_rows_cover_every_row(tmp_path: Path) -> None:
    lines = ["id,city"] + [f"{n},City {n}" for n in range(1, 121)]
    documents = ingest(tmp_path / "cities.csv", "\n".join(lines) + "\n")
    ranges = [(d.metadata["row_start"], d.metadata["row_end"]) for d in documents]
    assert ranges[0][0] == 2 and ranges[-1][1] == 121
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    assert all(end - start < ROWS_PER_DOCUMENT for start, end in ranges)
    assert documents[0].text.splitlines()[0] == "id: 1; city: City 1"
    assert sections(documents) == [None] * len(documents)


def test_csv_cell_limit(tmp_path: Path) -> None:
    text = "a,b\n" + "1,2\n" * 100
    with pytest.raises(UnsafeFile, match="cells"):
        ingest(tmp_path / "t.csv", text, IngestLimits(max_spreadsheet_cells=100))


def test_markdown_sections_ignore_headings_in_code(tmp_path: Path) -> None:
    markdown = (
        "Intro line.\n\n# Install\n\n```sh\n# not a heading\npip install x\n```\n\n"
        "## Usage ##\n\nCall it.\n\n## Empty parent\n### Child\n\nChild text.\n"
    )
    documents = ingest(tmp_path / "doc.md", markdown)
    assert sections(documents) == [None, "Install", "Usage", "Child"]
    assert "# not a heading" in documents[1].text
    assert documents[3].text.startswith("## Empty parent\n### Child")


def test_split_markdown_keeps_every_line() -> None:
    text = "a\n# B\nb\n## C\nc"
    assert "\n".join(body for _, body in split_markdown(text)) == text


def test_plain_text_is_one_document(tmp_path: Path) -> None:
    [document] = ingest(tmp_path / "n.txt", "Line one.\r\n\r\n\r\n\r\nLine   two.\t\n")
    assert document.text == "Line one.\n\nLine two."
    assert document.metadata == {"page": None, "section": None}


def test_html_main_text_by_headings(tmp_path: Path) -> None:
    html = (
        "<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style>"
        "<script>var tracking = 1;</script></head><body>"
        "<nav><a href='/'>Home</a> <a href='/about'>About us</a></nav><main>"
        "<h1>Quarterly report</h1><p>Revenue grew by twelve percent in the third quarter "
        "compared with the same quarter last year.</p><h2>Costs</h2><p>Costs fell slightly "
        "because of lower energy prices across all of our sites.</p></main>"
        "<footer>Copyright 2024</footer></body></html>"
    )
    documents = ingest(tmp_path / "r.html", html)
    assert sections(documents) == ["Quarterly report", "Costs"]
    text = "\n".join(d.text for d in documents)
    assert "twelve percent" in text and "energy prices" in text
    assert not any(word in text for word in ("tracking", "color", "About us", "Copyright"))


def test_normalise() -> None:
    assert (
        normalise("a\x00b  c\u200b \n\n\n\n  indented\r\nx\x0cy \t") == "ab c\n\n  indented\nx\n\ny"
    )


def test_tsv_stored_without_its_name_parses_by_content(tmp_path: Path) -> None:
    upload = tmp_path / "data.tsv"
    upload.write_text("id\tlabel\n1\tone\n2\ttwo words\n")
    detected = detect_type(upload, upload.name)
    stored = tmp_path / "3f2a9c"  # storage keeps no extension
    stored.write_bytes(upload.read_bytes())
    [document] = parse(stored, detected, limits=LIMITS)
    assert document.text == "id: 1; label: one\nid: 2; label: two words"


def test_ingest_package_imports_no_web_or_database_code() -> None:
    package = Path(__file__).resolve().parents[3] / "ragline" / "rag" / "ingest"
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            roots = {name.split(".")[0] for name in names}
            assert not roots & {"fastapi", "starlette", "sqlalchemy"}, source
            assert not any(name.startswith(("ragline.db", "ragline.models")) for name in names)
