"""Refusals before parsing: zip bombs, lying zip headers, PDF pages, encryption, truncation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.rag.ingest.errors import ParseError, UnsafeFile
from ragline.rag.ingest.guards import IngestLimits, check_file
from ragline.rag.ingest.parse import parse
from ragline.rag.ingest.sniff import detect_type
from tests.rag.ingest import builders

LIMITS = IngestLimits()


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~1.4 MB .docx whose document part inflates to 300 MB."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.docx"
    builders.write_zip_bomb_docx(path, zeros_mb=300)
    return path


def check(path: Path, limits: IngestLimits = LIMITS) -> None:
    check_file(path, detect_type(path, path.name, limits=limits), limits)


def test_zip_bomb_is_refused_by_its_ratio(zip_bomb: Path) -> None:
    assert detect_type(zip_bomb, "bomb.docx").family == "docx"  # sniffing stays cheap
    with pytest.raises(UnsafeFile, match="zip bomb"):
        check(zip_bomb)


def test_zip_bomb_is_refused_by_its_total_size(zip_bomb: Path) -> None:
    with pytest.raises(UnsafeFile, match=r"unpacks to 30\d MB; the limit is 200 MB"):
        check(zip_bomb, IngestLimits(max_zip_ratio=10_000))


def test_part_that_understates_its_size_fails_when_read(tmp_path: Path) -> None:
    data = builders.zip_with_part("word/media/blob.bin", bytes(5 * builders.MB))
    path = tmp_path / "liar.docx"
    path.write_bytes(builders.understate_part_size(data, "word/media/blob.bin", declared=1000))
    with pytest.raises(ParseError, match="damaged"):
        check(path)


def test_too_many_zip_entries(tmp_path: Path) -> None:
    path = tmp_path / "small.docx"
    path.write_bytes(builders.docx_bytes())
    check(path)
    limits = IngestLimits(max_zip_entries=5)
    with pytest.raises(UnsafeFile, match="limit is 5"):
        check_file(path, detect_type(path, path.name), limits)


def test_too_many_pdf_pages(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(builders.pdf_bytes([f"page {n}" for n in range(1, 6)]))
    limits = IngestLimits(max_pdf_pages=3)
    with pytest.raises(UnsafeFile, match="5 pages; the limit is 3"):
        check(path, limits)
    with pytest.raises(UnsafeFile):  # parse enforces it too
        parse(path, detect_type(path, path.name), limits=limits)


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = tmp_path / "secret.pdf"
    path.write_bytes(builders.encrypted_pdf_bytes(["classified"], user_password="s3cret"))
    with pytest.raises(ParseError, match="PDF is encrypted"):
        check(path)


def test_pdf_with_only_an_owner_password_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "restricted.pdf"
    path.write_bytes(builders.encrypted_pdf_bytes(["open to read"], user_password=""))
    check(path)
    [page] = parse(path, detect_type(path, path.name), limits=LIMITS)
    assert "open to read" in page.text


def test_truncated_pdf(tmp_path: Path) -> None:
    data = builders.pdf_bytes(["first page", "second page"])
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ParseError, match="truncated"):
        check(path)


def test_corrupt_pdf(tmp_path: Path) -> None:
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n")
    with pytest.raises(ParseError, match="damaged"):
        check(path)
    with pytest.raises(ParseError, match="damaged"):
        parse(path, detect_type(path, path.name), limits=LIMITS)


def test_file_and_text_size_limits(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    with pytest.raises(UnsafeFile, match="text file"):
        check(path, IngestLimits(max_text_bytes=1000))
    with pytest.raises(UnsafeFile, match="The file is"):
        check(path, IngestLimits(max_file_bytes=1000))


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pdf_pages"):
        IngestLimits(max_pdf_pages=0)
