"""Files of an assistant: upload, list, read, replace, delete.

Exception to "the request owns the transaction" (STYLE rule 6), written down here: an
upload commits its file rows itself *before* enqueueing their jobs, so a worker can never
be handed a file that is not yet in the database, and the 202 is only sent for rows that
exist. Everything else flushes and lets the request commit.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
import uuid
from collections.abc import Sequence
from pathlib import PurePath

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from ragline.assistants.service import get_owned_chat
from ragline.documents.repository import FileRepository
from ragline.documents.runtime import Documents
from ragline.documents.schemas import FileRead, IngestionSummary, Progress, UploadResult
from ragline.documents.storage import FileTooLarge, StoredFile, hash_stream
from ragline.errors import FileNotFound, PayloadTooLarge, Unprocessable
from ragline.kit.pagination import Page, PageParams
from ragline.models import ChatFile, FileKind, FilePurge, FileStatus, User
from ragline.models.base import utcnow
from ragline.rag.ingest.errors import IngestError, UnsafeFile
from ragline.rag.ingest.guards import check_file
from ragline.rag.ingest.sniff import DetectedType, detect_type

logger = logging.getLogger(__name__)
MAX_NAME = 255


def to_read(file: ChatFile) -> FileRead:
    return FileRead(
        id=file.id,
        chat_id=file.chat_id,
        name=file.name,
        mime_type=file.mime_type,
        kind=file.kind,
        size=file.size,
        sha256=file.sha256,
        status=file.status,
        progress=Progress(done=file.chunks_done, total=file.chunks_total),
        error=file.error,
        version=file.version,
        embedding_model=file.embedding_model,
        embedding_dimension=file.embedding_dimension,
        created_at=file.created_at,
        updated_at=file.updated_at,
        indexed_at=file.indexed_at,
    )


def display_name(raw: str | None) -> str:
    """The client's filename as a label only: last path component, no control characters.
    It never becomes a path (storage keys are random)."""
    name = PurePath((raw or "").replace("\\", "/")).name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return (name or "unnamed")[:MAX_NAME]


def _store_and_check(
    documents: Documents, upload: UploadFile, name: str
) -> tuple[StoredFile, DetectedType]:
    """Copy the upload into storage, then check its content (blocking: run in a thread).
    The copy is removed when the content is refused."""
    stored = documents.storage.put(upload.file, max_bytes=documents.settings.upload_max_bytes)
    try:
        path = documents.storage.path(stored.key)
        detected = detect_type(path, name, limits=documents.limits)
        check_file(path, detected, documents.limits)
    except BaseException:
        documents.storage.delete(stored.key)
        raise
    return stored, detected


def _store_and_check_all(
    documents: Documents, uploads: Sequence[tuple[UploadFile, str]]
) -> list[tuple[StoredFile, DetectedType] | IngestError]:
    out: list[tuple[StoredFile, DetectedType] | IngestError] = []
    for upload, name in uploads:
        try:
            out.append(_store_and_check(documents, upload, name))
        except FileTooLarge as exc:  # grew since it was hashed
            out.append(UnsafeFile(exc.reason))
        except IngestError as exc:
            out.append(exc)
    return out


def _hash_all(
    uploads: Sequence[UploadFile], max_bytes: int
) -> list[tuple[str, int] | FileTooLarge]:
    out: list[tuple[str, int] | FileTooLarge] = []
    for upload in uploads:
        try:
            out.append(hash_stream(upload.file, max_bytes=max_bytes))
        except FileTooLarge as exc:
            out.append(exc)
    return out


async def upload_files(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    uploads: Sequence[UploadFile],
    documents: Documents,
) -> list[UploadResult]:
    """Hash everything first and look the hashes up in one query: a duplicate is answered
    without being stored or parsed again."""
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    repository = FileRepository(session, owner_id=owner.id)
    hashes = await asyncio.to_thread(_hash_all, uploads, documents.settings.upload_max_bytes)
    known = await repository.by_shas(chat_id, [h[0] for h in hashes if isinstance(h, tuple)])
    results: list[UploadResult | None] = []
    fresh: list[tuple[int, UploadFile, str]] = []  # (position, upload, name) to store
    for upload, hashed in zip(uploads, hashes, strict=True):
        name = display_name(upload.filename)
        existing = known.get(hashed[0]) if isinstance(hashed, tuple) else None
        if isinstance(hashed, FileTooLarge):
            results.append(_rejected(name, hashed.reason))
        elif existing is not None and existing.status is not FileStatus.FAILED:
            results.append(_duplicate(name, existing.id))
        else:
            fresh.append((len(results), upload, name))
            results.append(None)
    checked = await asyncio.to_thread(
        _store_and_check_all, documents, [(upload, name) for _, upload, name in fresh]
    )
    to_queue: list[ChatFile] = []
    for (position, _, name), outcome in zip(fresh, checked, strict=True):
        if isinstance(outcome, IngestError):
            results[position] = _rejected(name, outcome.reason)
            continue
        stored, detected = outcome
        existing = known.get(stored.sha256)
        if existing is not None and existing.status is not FileStatus.FAILED:
            documents.storage.delete(stored.key)  # the same bytes twice in this request
            results[position] = _duplicate(name, existing.id)
            continue
        if existing is not None:  # the same bytes failed before: try them again
            old_key = existing.storage_key
            _reset_for_new_version(existing, name=name, stored=stored, detected=detected)
            documents.storage.delete(old_key)
            file = existing
        else:
            file = ChatFile(
                owner_id=owner.id,
                chat_id=chat_id,
                name=name,
                mime_type=detected.mime,
                kind=FileKind(detected.kind),
                size=stored.size,
                sha256=stored.sha256,
                storage_key=stored.key,
                status=FileStatus.QUEUED,
            )
        try:
            async with session.begin_nested():
                session.add(file)
        except IntegrityError:  # the same bytes uploaded concurrently by another request
            documents.storage.delete(stored.key)
            twin = await repository.by_sha(chat_id, stored.sha256)
            results[position] = _duplicate(name, twin.id if twin else None)
            continue
        known[stored.sha256] = file
        to_queue.append(file)
        results[position] = UploadResult(name=name, status="accepted", file_id=file.id)
    await session.commit()  # the documented exception: rows exist before their jobs
    await documents.enqueue([(str(file.id), file.version) for file in to_queue])
    return [result for result in results if result is not None]


def _rejected(name: str, reason: str) -> UploadResult:
    return UploadResult(name=name, status="rejected", reason=reason)


def _duplicate(name: str, file_id: uuid.UUID | None) -> UploadResult:
    return UploadResult(name=name, status="duplicate", file_id=file_id, duplicate_of=file_id)


async def ingestion_summary(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID
) -> IngestionSummary:
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    counts = await FileRepository(session, owner_id=owner.id).status_counts(chat_id)
    files = {status.value: counts.get(status.value, (0, 0, 0))[0] for status in FileStatus}
    return IngestionSummary(
        files=files,
        total=sum(files.values()),
        chunks_done=sum(c[1] for c in counts.values()),
        chunks_total=sum(c[2] for c in counts.values()),
    )


def _reset_for_new_version(
    file: ChatFile, *, name: str, stored: StoredFile, detected: DetectedType
) -> None:
    file.name = name
    file.mime_type = detected.mime
    file.kind = FileKind(detected.kind)
    file.size = stored.size
    file.sha256 = stored.sha256
    file.storage_key = stored.key
    file.status = FileStatus.QUEUED
    file.version += 1
    file.attempts = 0
    file.error = None
    file.chunks_done = 0
    file.chunks_total = None
    file.updated_at = utcnow()  # a running job keeps its lease until it notices (jobs.py)


async def _owned_file(
    session: AsyncSession, owner: User, chat_id: uuid.UUID, file_id: uuid.UUID
) -> ChatFile:
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    file = await FileRepository(session, owner_id=owner.id).in_chat_by_id(chat_id, file_id)
    if file is None:
        raise FileNotFound()
    return file


async def list_files(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID, params: PageParams
) -> Page[FileRead]:
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    repository = FileRepository(session, owner_id=owner.id)
    rows, total = await repository.page(repository.in_chat(chat_id), params)
    return Page[FileRead].of([to_read(row[0]) for row in rows], total=total, params=params)


async def read_file(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID, file_id: uuid.UUID
) -> FileRead:
    return to_read(await _owned_file(session, owner, chat_id, file_id))


async def replace_file(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    file_id: uuid.UUID,
    upload: UploadFile,
    documents: Documents,
) -> tuple[FileRead, bool]:
    """A new version of a file; only chunks whose text changed are embedded again.
    Returns the file and whether a job was started (False when the bytes are unchanged)."""
    file = await _owned_file(session, owner, chat_id, file_id)
    name = display_name(upload.filename)
    try:
        stored, detected = await asyncio.to_thread(_store_and_check, documents, upload, name)
    except FileTooLarge as exc:
        raise PayloadTooLarge(exc.reason) from exc
    except IngestError as exc:
        raise Unprocessable(exc.reason) from exc
    if stored.sha256 == file.sha256:
        documents.storage.delete(stored.key)
        return to_read(file), False
    twin = await FileRepository(session, owner_id=owner.id).by_sha(chat_id, stored.sha256)
    if twin is not None:
        documents.storage.delete(stored.key)
        raise DuplicateFile(f"These bytes are already in this assistant as file {twin.id}.")
    old_key = file.storage_key
    _reset_for_new_version(file, name=name, stored=stored, detected=detected)
    await session.commit()  # as for uploads: the new version exists before its job
    documents.storage.delete(old_key)
    await documents.enqueue([(str(file.id), file.version)])
    return to_read(file), True


async def delete_file(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    file_id: uuid.UUID,
    documents: Documents,
) -> None:
    """The row goes and a purge row comes in one transaction, committed here (a documented
    exception to "the request owns the transaction": the purge job must find it); the job
    then removes vectors, keyword rows and bytes (:mod:`ragline.documents.purge`). A job
    still ingesting the file finds its row gone at its next write and cleans up after
    itself."""
    file = await _owned_file(session, owner, chat_id, file_id)
    session.add(FilePurge(file_id=file.id, chat_id=chat_id, storage_key=file.storage_key))
    await session.delete(file)
    await session.commit()
    await documents.purge([str(file_id)])


async def mark_chat_files_for_purge(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID
) -> list[str]:
    """Purge rows for every file of a chat about to be deleted, and one for the chat itself
    (its id as ``file_id``: its collection and keyword table go even with no file left),
    in the same transaction; the caller queues the returned ids once it has committed."""
    files = await FileRepository(session, owner_id=owner.id).all_in_chat(chat_id)
    session.add_all(
        FilePurge(file_id=f.id, chat_id=chat_id, storage_key=f.storage_key) for f in files
    )
    session.add(FilePurge(file_id=chat_id, chat_id=chat_id, storage_key=""))
    return [*(str(f.id) for f in files), str(chat_id)]


class DuplicateFile(Unprocessable):
    status_code = 409
