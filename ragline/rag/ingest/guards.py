"""Cheap checks that refuse a file before a parser spends memory or time on it.

Office files are ZIP archives: their central directory declares each part's size, so a
zip bomb is refused from the directory alone. Parsers read parts through ``zipfile``,
which stops every part at its declared (and checked) size, and ``check_file`` streams
each part once with a byte cap, so a header that lies about a size fails its checksum
instead of inflating. PDFs are opened once to count pages and test for encryption.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PdfReadError

from ragline.rag.ingest.errors import ParseError, UnsafeFile

if TYPE_CHECKING:
    from ragline.rag.ingest.sniff import DetectedType

MB = 1024 * 1024
_OFFICE = frozenset({"docx", "pptx", "xlsx"})
_TEXT = frozenset({"html", "markdown", "text", "csv"})
_RATIO_MIN_BYTES = MB  # small parts (styles, empty sheets) may compress better than any ratio
_DIRECTORY_BYTES_PER_ENTRY = 1024  # generous: a record is 46 bytes plus its name
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_PDF_TAIL = 1024  # readers accept %%EOF anywhere in the last 1024 bytes


@dataclass(frozen=True)
class IngestLimits:
    """Ceilings for one uploaded file; anything above is refused as ``UnsafeFile``."""

    max_file_bytes: int = 100 * MB
    max_text_bytes: int = 20 * MB  # TXT, Markdown, HTML and CSV are read whole
    max_pdf_pages: int = 2000
    max_zip_entries: int = 10_000
    max_zip_total_bytes: int = 200 * MB  # sum of the parts' uncompressed sizes
    max_zip_ratio: float = 100.0  # uncompressed / compressed, per part above 1 MiB
    max_spreadsheet_cells: int = 2_000_000

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"IngestLimits.{field.name} must be positive")


DEFAULT_LIMITS = IngestLimits()


def check_file(path: Path, detected: DetectedType, limits: IngestLimits) -> None:
    """Raise ``UnsafeFile`` or ``ParseError`` if the file must not reach its parser."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise UnsafeFile(
            f"The file is {size / MB:.1f} MB; the limit is {limits.max_file_bytes / MB:.0f} MB."
        )
    if detected.family in _OFFICE:
        with open_zip(path, limits) as archive:
            _check_zip_sizes(archive, limits)
            _read_all_parts(archive, limits)
    elif detected.family == "pdf":
        open_pdf(path, limits)
    elif detected.family in _TEXT:
        check_text_size(path, limits)


def check_text_size(path: Path, limits: IngestLimits) -> None:
    size = path.stat().st_size
    if size > limits.max_text_bytes:
        raise UnsafeFile(
            f"The text file is {size / MB:.1f} MB; "
            f"the limit is {limits.max_text_bytes / MB:.0f} MB."
        )


def check_page_count(pages: int, limits: IngestLimits) -> None:
    if pages > limits.max_pdf_pages:
        raise UnsafeFile(f"The PDF has {pages} pages; the limit is {limits.max_pdf_pages}.")


def check_cell_count(cells: int, limits: IngestLimits) -> None:
    if cells > limits.max_spreadsheet_cells:
        raise UnsafeFile(
            f"The spreadsheet has more than {limits.max_spreadsheet_cells:,} cells; "
            "split it into smaller files."
        )


def open_zip(path: Path, limits: IngestLimits) -> zipfile.ZipFile:
    """Open a ZIP after checking, from its end record, that its directory is small."""
    entries, directory_bytes = _declared_directory(path)
    if entries > limits.max_zip_entries or (
        directory_bytes > limits.max_zip_entries * _DIRECTORY_BYTES_PER_ENTRY
    ):
        raise UnsafeFile(
            f"The archive declares {entries:,} parts; the limit is {limits.max_zip_entries:,}."
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParseError(
            "The file is damaged or truncated (its ZIP directory is unreadable)."
        ) from exc
    if len(archive.infolist()) > limits.max_zip_entries:
        archive.close()
        raise UnsafeFile(f"The archive has more than {limits.max_zip_entries:,} parts.")
    return archive


def open_pdf(path: Path, limits: IngestLimits) -> PdfReader:
    """A readable, decrypted PDF within the page limit, or ``ParseError``/``UnsafeFile``."""
    with path.open("rb") as stream:
        stream.seek(max(0, path.stat().st_size - _PDF_TAIL))
        if b"%%EOF" not in stream.read():
            raise ParseError("The PDF is truncated (it has no end-of-file marker).")
    try:
        reader = PdfReader(path)  # tries the empty user password by itself
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ParseError("PDF is encrypted; remove the password and upload it again.")
        pages = len(reader.pages)
    except DependencyError as exc:  # AES without the optional crypto package
        raise ParseError("PDF is encrypted with a cipher this server cannot read.") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ParseError("The PDF is damaged and cannot be read.") from exc
    check_page_count(pages, limits)
    return reader


def _check_zip_sizes(archive: zipfile.ZipFile, limits: IngestLimits) -> None:
    total = 0
    for info in archive.infolist():
        if info.flag_bits & 0x1:
            raise ParseError("The document is encrypted; remove the password and upload it again.")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_MIN_BYTES and ratio > limits.max_zip_ratio:
            raise UnsafeFile(
                f"The part {info.filename!r} expands {ratio:.0f}-fold when unpacked "
                f"(limit {limits.max_zip_ratio:.0f}); this looks like a zip bomb."
            )
    if total > limits.max_zip_total_bytes:
        raise UnsafeFile(
            f"The document unpacks to {total / MB:.0f} MB; "
            f"the limit is {limits.max_zip_total_bytes / MB:.0f} MB."
        )


def _read_all_parts(archive: zipfile.ZipFile, limits: IngestLimits) -> None:
    """Inflate every part once, never past ``max_zip_total_bytes`` in all.

    ``zipfile`` stops each part at its declared size and checks its CRC, so a part
    whose header understates its size ends in ``BadZipFile`` rather than inflating.
    """
    budget = limits.max_zip_total_bytes
    try:
        for info in archive.infolist():
            with archive.open(info) as part:
                while chunk := part.read(min(MB, budget + 1)):
                    budget -= len(chunk)
                    if budget < 0:
                        raise UnsafeFile("The document unpacks to more than its limit.")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        raise ParseError("The document is damaged: a part fails its checks.") from exc
    except (EOFError, ValueError, RuntimeError, zlib.error, lzma.LZMAError) as exc:
        raise ParseError("The document is damaged: a part cannot be unpacked.") from exc


def _declared_directory(path: Path) -> tuple[int, int]:
    """(entries, directory bytes) from the end-of-central-directory record, zip64 aware."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        start = max(0, size - 22 - 65535)  # the record plus the longest comment
        stream.seek(start)
        tail = stream.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            raise ParseError("The file is damaged or truncated (no ZIP end record).")
        entries = int.from_bytes(tail[at + 10 : at + 12], "little")
        directory = int.from_bytes(tail[at + 12 : at + 16], "little")
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator.startswith(_EOCD64_LOCATOR):
            stream.seek(int.from_bytes(locator[8:16], "little"))
            record = stream.read(56)
            if record.startswith(_EOCD64) and len(record) == 56:
                entries = int.from_bytes(record[32:40], "little")
                directory = int.from_bytes(record[40:48], "little")
    return entries, directory
