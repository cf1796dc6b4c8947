"""Small real files built in the test run, so the suite needs no shared data."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

import docx
import openpyxl
import pptx
from PIL import Image
from pypdf import PdfReader, PdfWriter

MB = 1024 * 1024
DOCS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "docs"


def pdf_bytes(pages: Sequence[str]) -> bytes:
    """A minimal valid PDF, one Helvetica text line per page (empty string: no text)."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode() if text else b""
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    return pdf_from_objects(objects)


def pdf_from_objects(objects: Sequence[bytes]) -> bytes:
    """A PDF of these objects, numbered from 1 (the first is the catalog), with its
    cross-reference table and trailer."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def encrypted_pdf_bytes(pages: Sequence[str], *, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    document = docx.Document()
    document.add_paragraph("Preface text before any heading.")
    document.add_heading("Installation", level=1)
    document.add_paragraph("Run the installer and accept the licence.")
    document.add_heading("Configuration", level=2)
    document.add_paragraph("Set the port to 8080 in the settings file.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Key", "Value"), ("port", "8080")], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def empty_docx_bytes() -> bytes:
    buffer = io.BytesIO()
    docx.Document().save(buffer)
    return buffer.getvalue()


def pptx_bytes() -> bytes:
    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]  # title and content
    for title, body, notes in [
        ("Quarterly results", "Revenue grew twelve percent.", "Mention the new region."),
        ("Roadmap", "Launch the mobile app in spring.", ""),
    ]:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    table = presentation.slides[1].shapes.add_table(2, 2, 0, 0, 914400, 914400).table
    for r, c, text in [(0, 0, "Quarter"), (0, 1, "Feature"), (1, 0, "Q2"), (1, 1, "Offline mode")]:
        table.cell(r, c).text = text
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def xlsx_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return buffer.getvalue()


def elf_bytes() -> bytes:
    """A 64-bit little-endian ELF header followed by code-like bytes."""
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 2, 62, 1)
    return header + bytes(64) + bytes(range(256)) * 4


def plain_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    return buffer.getvalue()


def write_zip_bomb_docx(path: Path, *, zeros_mb: int) -> None:
    """A real .docx whose word/document.xml is ``zeros_mb`` MiB of zeros, streamed."""
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes())) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb,
    ):
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info.filename, source.read(info))
                continue
            with bomb.open(info.filename, "w", force_zip64=True) as part:
                chunk = bytes(MB)
                for _ in range(zeros_mb):
                    part.write(chunk)


def understate_part_size(data: bytes, name: str, *, declared: int) -> bytes:
    """Rewrite the central directory so that ``name`` claims ``declared`` bytes."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", out, at + 28)
        if out[at + 46 : at + 46 + name_len].decode() == name:
            struct.pack_into("<I", out, at + 24, declared)
            return bytes(out)
        at = out.find(b"PK\x01\x02", at + 46 + name_len + extra_len + comment_len)
    raise KeyError(name)


def zip_with_part(name: str, content: bytes) -> bytes:
    """A docx with one extra part, for tests that patch that part's header."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes())) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
        target.writestr(name, content)
    return buffer.getvalue()
