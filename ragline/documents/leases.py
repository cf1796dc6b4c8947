"""The conditions and statements of a job's lease on its file row (see
:mod:`ragline.documents.jobs`): every write of a job requires the file's id, version and the
job's lease token."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, update

from ragline.models import ChatFile
from ragline.models.base import utcnow


def current(file_id: uuid.UUID, version: int) -> ColumnElement[bool]:
    return (ChatFile.id == file_id) & (ChatFile.version == version)


def held(file_id: uuid.UUID, version: int, token: str) -> ColumnElement[bool]:
    return current(file_id, version) & (ChatFile.lease_token == token)


def update_statement(
    file_id: uuid.UUID, version: int, token: str, lease_seconds: int, **values: object
) -> Any:
    lease = utcnow() + timedelta(seconds=lease_seconds)
    return (
        update(ChatFile)
        .where(held(file_id, version, token))
        .values(lease_expires_at=lease, updated_at=utcnow(), **values)
    )


def finish_statement(file_id: uuid.UUID, version: int, token: str, **values: object) -> Any:
    """Final write of a job (or back to ``queued`` for a retry); releases the lease."""
    return (
        update(ChatFile)
        .where(held(file_id, version, token))
        .values(lease_expires_at=None, lease_token=None, updated_at=utcnow(), **values)
    )
