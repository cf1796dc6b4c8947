"""Purge jobs: remove a deleted file's vectors, keyword rows and stored bytes.

``DELETE`` answers as soon as the file row is gone and a :class:`FilePurge` row records
what is left to remove (one transaction): the file disappears from listings and from
retrieval at once, while Chroma takes about 0.2 ms per vector to delete (seconds for a
10 MB file). The purge row is the truth, not the queue message: start-up recovery and the
periodic reaper re-send purges still pending, and a purge is idempotent, so running it
twice is harmless.

Deleting an assistant also adds a row of its own (``file_id`` = ``chat_id``, no bytes): its
collection and keyword table go even when it has no file left (earlier file deletes leave
them, empty). A job still writing when the purge ran removes what it wrote afterwards
(:mod:`ragline.rag.ingest.sink`: the delete wins).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Engine, delete, select

from ragline.documents.storage import FileStorage
from ragline.models import Chat, FilePurge
from ragline.models.base import utcnow
from ragline.rag.ingest.store import Stores, remove_chat, remove_file

logger = logging.getLogger(__name__)


def run_purges(
    *, engine: Engine, stores: Stores, storage: FileStorage, file_ids: Sequence[str]
) -> None:
    for file_id in file_ids:
        with engine.begin() as connection:
            row = connection.execute(
                select(FilePurge.chat_id, FilePurge.storage_key).where(
                    FilePurge.file_id == uuid.UUID(file_id)
                )
            ).first()
        if row is None:
            continue  # already purged
        chat_id = str(row.chat_id)
        if file_id != chat_id:  # the row of a file, not its deleted assistant's own
            remove_file(stores, chat_id=chat_id, file_id=file_id)
            storage.delete(row.storage_key)
        with engine.begin() as connection:
            chat = connection.execute(select(Chat.id).where(Chat.id == row.chat_id)).first()
        if chat is None:  # the assistant was deleted: its collection, keyword table and
            remove_chat(stores, chat_id=chat_id)  # version row go before its purge row
        with engine.begin() as connection:
            connection.execute(delete(FilePurge).where(FilePurge.file_id == uuid.UUID(file_id)))
        logger.info("purged deleted %s %s", "file" if file_id != chat_id else "chat", file_id)


def pending_purges(engine: Engine, *, older_than: timedelta | None = None) -> list[str]:
    """Purges to (re-)send; ``older_than`` leaves alone those whose message is fresh."""
    query = select(FilePurge.file_id).order_by(FilePurge.created_at)
    if older_than is not None:
        query = query.where(FilePurge.created_at < utcnow() - older_than)
    with engine.begin() as connection:
        return [str(file_id) for file_id in connection.execute(query).scalars()]
