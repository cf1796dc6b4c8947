from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from ragline.models import FileKind, FileStatus


class Progress(BaseModel):
    done: int
    total: int | None


class FileRead(BaseModel):
    id: uuid.UUID
    chat_id: uuid.UUID
    name: str
    mime_type: str
    kind: FileKind
    size: int
    sha256: str
    status: FileStatus
    progress: Progress
    error: str | None
    version: int
    embedding_model: str | None
    embedding_dimension: int | None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None


class UploadResult(BaseModel):
    """One file's outcome in a (multi-file) upload."""

    name: str
    status: Literal["accepted", "duplicate", "rejected"]
    file_id: uuid.UUID | None = None
    duplicate_of: uuid.UUID | None = None
    reason: str | None = None


class UploadResponse(BaseModel):
    files: list[UploadResult]


class IngestionSummary(BaseModel):
    """Where an assistant's files are: count per status, and chunks stored / to store."""

    files: dict[str, int]
    total: int
    chunks_done: int
    chunks_total: int
