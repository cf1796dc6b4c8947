"""Detection and parsing of the real documents in ../shared/data/docs (see SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.schema import Document

from ragline.rag.ingest.errors import ParseError
from ragline.rag.ingest.guards import IngestLimits, check_file
from ragline.rag.ingest.parse import parse
from ragline.rag.ingest.sniff import detect_type
from tests.rag.ingest.builders import DOCS

LIMITS = IngestLimits()
MARKITDOWN = "markitdown-test-files"

pytestmark = pytest.mark.skipif(
    not DOCS.is_dir(),
    reason=f"shared documents not found at {DOCS} (see ../shared/data/SOURCES.md)",
)


def ingest(relative: str) -> list[Document]:
    path = DOCS / relative
    if not path.is_file():
        pytest.skip(f"shared document {path} is missing")
    detected = detect_type(path, path.name)
    check_file(path, detected, LIMITS)
    return parse(path, detected, limits=LIMITS)


@pytest.mark.parametrize(
    ("relative", "family"),
    [
        (f"{MARKITDOWN}/test.pdf", "pdf"),
        (f"{MARKITDOWN}/REPAIR-2022-INV-001_multipage.pdf", "pdf"),
        (f"{MARKITDOWN}/test.docx", "docx"),
        (f"{MARKITDOWN}/test.pptx", "pptx"),
        (f"{MARKITDOWN}/test.xlsx", "xlsx"),
        (f"{MARKITDOWN}/test_wikipedia.html", "html"),
        (f"{MARKITDOWN}/test_blog.html", "html"),
        ("country-codes/country-codes.csv", "csv"),
        ("rust-book/ch03-02-data-types.md", "markdown"),
        ("rust-book/ch04-01-what-is-ownership.md", "markdown"),
    ],
)
def test_detects_and_parses(relative: str, family: str) -> None:
    path = DOCS / relative
    if not path.is_file():
        pytest.skip(f"shared document {path} is missing")
    assert detect_type(path, path.name).family == family
    for document in ingest(relative):
        assert {"page", "section"} <= document.metadata.keys()
        assert document.text.strip()


def test_renamed_real_pdf_is_still_a_pdf(tmp_path: Path) -> None:
    source = DOCS / MARKITDOWN / "test.pdf"
    if not source.is_file():
        pytest.skip(f"shared document {source} is missing")
    renamed = tmp_path / "paper.txt"
    renamed.write_bytes(source.read_bytes())
    assert detect_type(renamed, renamed.name).family == "pdf"


def test_truncated_real_pdf(tmp_path: Path) -> None:
    source = DOCS / MARKITDOWN / "test.pdf"
    if not source.is_file():
        pytest.skip(f"shared document {source} is missing")
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(source.read_bytes()[:50_000])
    with pytest.raises(ParseError, match="truncated"):
        check_file(cut, detect_type(cut, cut.name), LIMITS)


def test_multipage_pdf_phrases_on_their_pages() -> None:
    documents = ingest(f"{MARKITDOWN}/REPAIR-2022-INV-001_multipage.pdf")
    assert [d.metadata["page"] for d in documents] == [1, 2, 3]
    assert "Gabriel Diaz" in documents[0].text
    assert "Bruce Wayne" in documents[1].text and "Bruce Wayne" not in documents[0].text
    assert "preliminary estimate" in documents[2].text


def test_docx_sections() -> None:
    documents = ingest(f"{MARKITDOWN}/test.docx")
    by_section = {d.metadata["section"]: d.text for d in documents}
    assert "Abstract" in by_section and "Introduction" in by_section
    assert "AutoGen is an open-source framework" in by_section["Abstract"]


def test_pptx_slides() -> None:
    documents = ingest(f"{MARKITDOWN}/test.pptx")
    assert [d.metadata["page"] for d in documents] == list(range(1, len(documents) + 1))
    assert "ColA | ColB" in documents[2].text  # the table on slide 3
    assert documents[5].metadata["section"] == "These Test Strings are in the Image!"


def test_xlsx_sheets() -> None:
    documents = ingest(f"{MARKITDOWN}/test.xlsx")
    assert documents[0].metadata["section"] == "Sheet1"
    assert documents[0].text.startswith("Alpha: 89; Beta: 82; Gamma: 100; Delta: 12")


def test_wikipedia_main_text_only() -> None:
    documents = ingest(f"{MARKITDOWN}/test_wikipedia.html")
    text = "\n".join(d.text for d in documents)
    assert "Bill Gates and Paul Allen" in text
    assert "Articles with VIAF identifiers" not in text  # category links are dropped
    assert "<sup>" not in text
    assert "1972\u20131985: Founding" in {d.metadata["section"] for d in documents}


def test_blog_sections() -> None:
    documents = ingest(f"{MARKITDOWN}/test_blog.html")
    assert "Experiment Setup" in {d.metadata["section"] for d in documents}
    assert "top_p" in "\n".join(d.text for d in documents)  # markdown escapes undone


def test_country_codes_rows() -> None:
    documents = ingest("country-codes/country-codes.csv")
    assert documents[0].metadata["row_start"] == 2
    assert documents[-1].metadata["row_end"] == 250
    assert "ISO3166-1-Alpha-2: AF" in documents[0].text


def test_rust_book_sections() -> None:
    documents = ingest("rust-book/ch04-01-what-is-ownership.md")
    assert "Ownership Rules" in {d.metadata["section"] for d in documents}
