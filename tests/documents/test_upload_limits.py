"""Upload limits are enforced while the body streams: the request is answered before the
rest of it is read, and a refused request leaves nothing stored (no file row, no bytes).

The app is driven through its ASGI interface with a ``receive`` that hands the body over
chunk by chunk and counts what the app took: "answered before it was all sent" is then
exact, with no timing involved.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message

from ragline.config import Settings
from ragline.main import create_app
from ragline.models import ChatFile
from tests.documents.helpers import upload, wait_final
from tests.helpers import as_user, create_chat, running_app
from tests.rag.ingest.builders import pdf_from_objects

EMBEDDED = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)
CHUNK = 64 * 1024
BOUNDARY = "ragline-test-boundary"


@dataclass
class Exchange:
    status: int
    body: dict[str, Any]
    chunks_read: int
    """Body chunks the app had read when it sent its answer."""
    chunks_total: int


def multipart_chunks(files: list[tuple[str, int]]) -> list[bytes]:
    """A multipart body with one part per (name, size), cut into ``CHUNK``-byte chunks."""
    body = bytearray()
    for name, size in files:
        body += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()
        body += b"words " * (size // 6) + b"." * (size % 6) + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return [bytes(body[i : i + CHUNK]) for i in range(0, len(body), CHUNK)]


async def post_streaming(
    app: FastAPI, path: str, chunks: list[bytes], *, content_length: int | None
) -> Exchange:
    """POST ``chunks`` to ``app`` as a client streaming them would (``content_length``:
    the header sent, ``None`` for none, as with chunked encoding)."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
        (b"x-ragline-dev-user", b"alice"),
    ]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    read = 0
    answered_after: int | None = None
    status = 0
    body = bytearray()

    async def receive() -> Message:
        nonlocal read
        if read == len(chunks):
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: Message) -> None:
        nonlocal answered_after, status
        if message["type"] == "http.response.start":
            answered_after, status = read, message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    assert answered_after is not None, "no answer"
    return Exchange(status, json.loads(body), answered_after, len(chunks))


async def stored_nothing(db: AsyncEngine, settings: Settings) -> None:
    async with db.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(ChatFile)) == 0
    files = settings.ragline_data_dir / "files"
    assert [p for p in files.rglob("*") if p.is_file()] == []


@asynccontextmanager
async def app_with_chat(
    settings: Settings, **limits: int
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str]]:
    """The app under ``limits``, a client of it, and the upload path of a new chat."""
    app = create_app(settings.model_copy(update=limits))
    async with running_app(settings, app=app) as (client, _):
        chat = await create_chat(client, "alice", title="limits")
        yield app, client, f"/chats/{chat['id']}/upload"


@EMBEDDED
@pytest.mark.parametrize("declared", ["none", "lying", "honest"])
async def test_request_over_limit_is_refused_while_it_streams(
    doc_settings: Settings, db: AsyncEngine, declared: str
) -> None:
    chunks = multipart_chunks([(f"part{i}.txt", 200 * 1024) for i in range(20)])  # ~4 MiB
    total = sum(map(len, chunks))
    content_length = {"none": None, "lying": 1000, "honest": total}[declared]
    async with app_with_chat(doc_settings, upload_max_request_bytes=256 * 1024) as (app, _, url):
        answer = await post_streaming(app, url, chunks, content_length=content_length)
        assert answer.status == 413, answer.body
        assert answer.body["error"] == "PayloadTooLarge"
        assert "UPLOAD_MAX_REQUEST_BYTES" in answer.body["detail"]
        # 256 KiB is 4 chunks: answered after at most one more, long before the 4 MiB end.
        assert answer.chunks_read <= 5 < answer.chunks_total
        if declared == "honest":
            assert answer.chunks_read == 0  # refused on the header alone
        await stored_nothing(db, doc_settings)


@EMBEDDED
async def test_file_over_limit_is_refused_while_it_streams(
    doc_settings: Settings, db: AsyncEngine
) -> None:
    """The first file is fine, the second passes UPLOAD_MAX_BYTES: the request is answered
    as soon as it does, not after the whole file, and the first file is not stored."""
    chunks = multipart_chunks([("small.txt", 1000), ("big.txt", 4 * 1024 * 1024)])
    async with app_with_chat(doc_settings, upload_max_bytes=128 * 1024) as (app, client, url):
        answer = await post_streaming(app, url, chunks, content_length=None)
        assert answer.status == 413, answer.body
        assert "'big.txt'" in answer.body["detail"]
        assert "UPLOAD_MAX_BYTES" in answer.body["detail"]
        assert answer.chunks_read <= 4 < answer.chunks_total  # 128 KiB: 2-3 chunks in
        await stored_nothing(db, doc_settings)

        # The same through an ordinary client.
        files = {"files": ("big.txt", b"x" * (200 * 1024))}
        response = await client.post(url, files=files, headers=as_user("alice"))
        assert response.status_code == 413 and "UPLOAD_MAX_BYTES" in response.json()["detail"]
        await stored_nothing(db, doc_settings)


@EMBEDDED
@pytest.mark.parametrize("length", [300, 5000])
async def test_long_file_name_answers_422_naming_the_limit(
    app_client: tuple[httpx.AsyncClient, Any], db: AsyncEngine, length: int
) -> None:
    client, state = app_client
    chat = await create_chat(client, "alice", title="names")
    name = "n" * (length - 4) + ".txt"
    response = await upload(client, chat["id"], [("fine.txt", b"fine text"), (name, b"text")])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "FileNameTooLong"
    assert "255 characters" in body["detail"]
    await stored_nothing(db, state.settings)


@EMBEDDED
async def test_a_path_is_not_counted_in_the_name(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    """Some clients send the full path: only its last component is the name."""
    client, _ = app_client
    chat = await create_chat(client, "alice", title="paths")
    path = "C:\\" + "\\".join(["folder"] * 60) + "\\notes.txt"
    response = await upload(client, chat["id"], [(path, b"some notes")])
    assert response.status_code == 202, response.text
    assert response.json()["files"][0]["name"] == "notes.txt"


def pdf_inflating_to(size: int) -> bytes:
    """A one-page PDF whose content stream is ``size`` bytes once decompressed."""
    content = b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET\n"
    stream = zlib.compress(content + b" " * (size - len(content)), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    return pdf_from_objects(objects)


@EMBEDDED
async def test_pdf_over_the_decompression_limit_says_so(
    app_client: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = app_client
    chat = await create_chat(client, "alice", title="inflating")
    pdf = pdf_inflating_to(80_000_000)  # pypdf stops at 75,000,000 bytes
    assert len(pdf) < 200_000
    response = await upload(client, chat["id"], [("inflating.pdf", pdf)])
    result = response.json()["files"][0] if response.status_code == 202 else None
    if result is None:  # refused at upload already: the reason must say the same
        reason = response.json()["detail"][0]["reason"]
    else:
        reason = (await wait_final(client, chat["id"], result["file_id"]))["error"]
    assert "too large when decompressed" in reason, reason
    assert "75,000,000 bytes" in reason
    assert "damaged" not in reason


def test_request_limit_must_fit_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="UPLOAD_MAX_REQUEST_BYTES"):
        Settings(
            _env_file=None,
            ragline_data_dir=tmp_path,
            upload_max_bytes=300 * 1024 * 1024,
        )
    settings = Settings(_env_file=None, ragline_data_dir=tmp_path)
    assert settings.upload_max_request_bytes == 256 * 1024 * 1024
