"""A dense document cannot hold an ingestion thread (issue 16, finding 3): parsing runs in a
parse process under a CPU budget, a delete kills the parse, and the reaper runs on a thread
of its own while every ingestion thread is busy. Budgets come from settings, so the dense
files here are small; outcomes and order are asserted, never durations."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import time
import zipfile
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest

from ragline.config import Settings
from ragline.limits import LimitSettings
from ragline.rag.ingest.guards import DEFAULT_LIMITS, check_file
from ragline.rag.ingest.parse import parse
from ragline.rag.ingest.parse.budget import ParseBudget, ParsePool
from ragline.rag.ingest.sniff import detect_type
from tests.documents.helpers import accepted_ids, long_text, upload, wait_final
from tests.helpers import as_user, create_chat, running_app
from tests.rag.ingest.builders import DOCS

ALICE = as_user("alice")
EMBEDDED = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MIB = 1024 * 1024
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def dense_docx(paragraphs: int, *, tag: str = "p") -> bytes:
    """The attack's shape: a small DOCX (compression ~18x, under every limit) of many tiny
    paragraphs; python-docx spends ~70 us of CPU on each (100k: ~7 s)."""
    body = "".join(f"<w:p><w:r><w:t>{tag}{i}</w:t></w:r></w:p>" for i in range(paragraphs))
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)
    return out.getvalue()


def _settings(doc_settings: Settings, **update: Any) -> Settings:
    return doc_settings.model_copy(update={"ingest_warm_up": False, **update})


async def _status(client: httpx.AsyncClient, chat_id: str, file_id: str) -> str:
    response = await client.get(f"/chats/{chat_id}/files/{file_id}", headers=ALICE)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def _until(client: httpx.AsyncClient, chat_id: str, file_ids: list[str], status: str) -> None:
    deadline = time.monotonic() + 60
    while [await _status(client, chat_id, f) for f in file_ids] != [status] * len(file_ids):
        assert time.monotonic() < deadline, f"not all {status}: {file_ids}"
        await asyncio.sleep(0.05)


async def _parse_processes(count: int) -> list[BaseProcess]:
    """The parse processes at work, once there are ``count`` of them."""
    deadline = time.monotonic() + 60
    while True:
        found = [p for p in multiprocessing.active_children() if p.name == "ragline-parse"]
        if len(found) == count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} parse processes, not {count}"
        await asyncio.sleep(0.05)


async def _until_dead(process: BaseProcess) -> None:
    deadline = time.monotonic() + 60
    while process.is_alive():
        assert time.monotonic() < deadline, "the parse went on after its file was deleted"
        await asyncio.sleep(0.05)


@EMBEDDED
@SQLITE
async def test_dense_docx_fails_with_a_reason_and_the_next_file_is_indexed(
    doc_settings: Settings, db: Any
) -> None:
    """One ingestion thread: the dense file is over its 1 s budget and fails for good, and
    the small file uploaded after it gets the thread."""
    settings = _settings(doc_settings, ingest_worker_threads=1, parse_cpu_seconds=1)
    async with running_app(settings) as (client, _):
        chat = (await create_chat(client, "alice"))["id"]
        [dense] = accepted_ids(await upload(client, chat, [("dense.docx", dense_docx(100_000))]))
        [small] = accepted_ids(await upload(client, chat, [("small.txt", long_text(3).encode())]))
        small_final = await wait_final(client, chat, small)
        dense_final = await wait_final(client, chat, dense)
    assert small_final["status"] == "indexed", small_final["error"]
    assert dense_final["status"] == "failed"
    error = dense_final["error"]  # permanent: the reason itself, not "retrying"/"gave up"
    assert error.startswith("parsing took more than 1 s of CPU"), error
    assert "too dense" in error


@EMBEDDED
@SQLITE
@pytest.mark.parametrize("deleted", ["file", "assistant"])
async def test_delete_stops_the_parse(doc_settings: Settings, db: Any, deleted: str) -> None:
    """The budget is far away: only the delete (of the file, or of its assistant) can stop
    the parse, and it does; the one ingestion thread then takes the next file."""
    settings = _settings(doc_settings, ingest_worker_threads=1, parse_cpu_seconds=3600)
    async with running_app(settings) as (client, _):
        chat = (await create_chat(client, "alice"))["id"]
        [dense] = accepted_ids(await upload(client, chat, [("dense.docx", dense_docx(300_000))]))
        await _until(client, chat, [dense], "parsing")
        [parsing] = await _parse_processes(1)
        target = f"/chats/{chat}/files/{dense}" if deleted == "file" else f"/chats/{chat}"
        assert (await client.delete(target, headers=ALICE)).status_code == 204
        await _until_dead(parsing)
        other = (await create_chat(client, "alice"))["id"]
        [small] = accepted_ids(await upload(client, other, [("small.txt", long_text(3).encode())]))
        assert (await wait_final(client, other, small))["status"] == "indexed"
        gone = await client.get(f"/chats/{chat}/files/{dense}", headers=ALICE)
    assert gone.status_code == 404


@EMBEDDED
@SQLITE
async def test_reaper_runs_while_every_ingestion_thread_is_busy(
    doc_settings: Settings, db: Any
) -> None:
    """Both threads parse a dense file; a small file's queue message is lost (flushed, as
    Redis loses a popped message when its worker dies). The reaper re-queues it while both
    still parse; once the dense files are deleted, the small file is indexed."""
    settings = _settings(
        doc_settings, ingest_worker_threads=2, parse_cpu_seconds=3600, ingest_reap_seconds=0.2
    )
    async with running_app(settings) as (client, state):
        chat = (await create_chat(client, "alice"))["id"]
        dense = [
            accepted_ids(
                await upload(client, chat, [(f"dense{i}.docx", dense_docx(300_000, tag=f"d{i}."))])
            )[0]
            for i in range(2)
        ]
        await _until(client, chat, dense, "parsing")
        huey = state.documents.queue.huey
        [small] = accepted_ids(await upload(client, chat, [("small.txt", long_text(3).encode())]))
        huey.flush()  # the small file's message is lost
        deadline = time.monotonic() + 60
        while not any(small in str(task.args) for task in huey.pending()):
            assert time.monotonic() < deadline, "the reaper never re-queued the lost file"
            await asyncio.sleep(0.05)
        assert [await _status(client, chat, f) for f in dense] == ["parsing", "parsing"]
        assert await _status(client, chat, small) == "queued"
        parsing = await _parse_processes(2)
        for file_id in dense:
            deleted = await client.delete(f"/chats/{chat}/files/{file_id}", headers=ALICE)
            assert deleted.status_code == 204
        for process in parsing:
            await _until_dead(process)
        assert (await wait_final(client, chat, small))["status"] == "indexed"


def long_docx(tmp_path: Path, pages: int) -> Path:
    """A report of ``pages`` pages: a heading, four ~90-word paragraphs and a page break per
    page, a 6x4 table every tenth page."""
    document = docx.Document()
    for page in range(1, pages + 1):
        document.add_heading(f"Chapter {page}", level=1)
        for paragraph in range(4):
            document.add_paragraph(
                " ".join(
                    f"Finding {page}.{paragraph}.{n}: the survey measured {page * n} units."
                    for n in range(12)
                )
            )
        if page % 10 == 0:
            table = document.add_table(rows=6, cols=4)
            for r, row in enumerate(table.rows):
                for c, cell in enumerate(row.cells):
                    cell.text = f"r{r}c{c} {page}"
        document.add_page_break()  # type: ignore[no-untyped-call]
    path = tmp_path / "report.docx"
    document.save(str(path))
    return path


def test_default_budget_parses_every_shared_document_and_a_300_page_docx(
    tmp_path: Path,
) -> None:
    """Every real document of ../shared/data/docs (seven formats) and a 300-page DOCX,
    under the default budget, give what parsing them in-process gives."""
    if not DOCS.is_dir():
        pytest.skip(f"shared documents not found at {DOCS}")
    defaults = LimitSettings.model_fields
    budget = ParseBudget(
        cpu_seconds=defaults["parse_cpu_seconds"].default,
        memory_mb=defaults["parse_memory_mb"].default,
    )
    paths = sorted(path for path in DOCS.rglob("*") if path.is_file())
    paths.append(long_docx(tmp_path, 300))
    pool = ParsePool(budget)
    try:
        for path in paths:
            detected = detect_type(path, path.name)
            check_file(path, detected, DEFAULT_LIMITS)
            budgeted = pool.parse(path, detected, limits=DEFAULT_LIMITS)
            direct = parse(path, detected, limits=DEFAULT_LIMITS)
            assert [(d.text, d.metadata) for d in budgeted] == [
                (d.text, d.metadata) for d in direct
            ], path
    finally:
        pool.close()
    assert {detect_type(path, path.name).family for path in paths} >= {
        "pdf",
        "docx",
        "pptx",
        "xlsx",
        "html",
        "csv",
        "markdown",
    }
    assert sum(1 for _ in docx.Document(str(paths[-1])).paragraphs) > 1500


@pytest.mark.parametrize(
    ("name", "text"),
    [("blanks.txt", " " * MIB + "x\n"), ("heading.md", "# a" + " " * MIB + "b #\n\nbody\n")],
)
def test_long_runs_of_blanks_parse_within_a_small_budget(
    tmp_path: Path, name: str, text: str
) -> None:
    """Trailing blanks and ATX headings were matched by regexes that retry at every blank of
    a run (quadratic: 3.5 s of CPU for 32 KiB); 1 MiB of blanks now fits in 2 s of CPU."""
    path = tmp_path / name
    path.write_text(text)
    pool = ParsePool(ParseBudget(cpu_seconds=2, memory_mb=512))
    try:
        documents = pool.parse(path, detect_type(path, name), limits=DEFAULT_LIMITS)
    finally:
        pool.close()
    assert documents[-1].text.endswith(("x", "body"))
