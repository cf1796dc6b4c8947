"""``ragline reindex``: files embedded with another model than the configured one get
their vectors removed and a new version queued; the server's workers re-embed them."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from ragline.config import Settings
from ragline.documents.queue import build_queue
from ragline.documents.runtime import open_documents, sync_engine
from ragline.lifespan import EmbeddedStoresLock
from ragline.models import ChatFile, FileStatus
from ragline.models.base import utcnow
from ragline.rag.ingest.store import remove_file
from ragline.rag.providers import build_embedder

logger = logging.getLogger(__name__)


def reindex_stale(settings: Settings) -> int:
    lock = EmbeddedStoresLock(settings) if not settings.chroma_host else None
    if lock is not None:
        lock.acquire()  # refuses while `ragline serve` holds the embedded stores
    try:
        model = build_embedder(settings).model_name
        documents = open_documents(settings)
        engine = sync_engine(settings)
        with engine.begin() as connection:
            stale = connection.execute(
                select(ChatFile.id, ChatFile.chat_id).where(
                    ChatFile.status == FileStatus.INDEXED, ChatFile.embedding_model != model
                )
            ).all()
            if stale:  # the removals below unsettle the files' chunks
                connection.execute(
                    update(ChatFile)
                    .where(ChatFile.id.in_([file_id for file_id, _ in stale]))
                    .values(chunks_settled=False)
                )
        for file_id, chat_id in stale:
            remove_file(documents.stores, chat_id=str(chat_id), file_id=str(file_id))
            with engine.begin() as connection:
                connection.execute(
                    update(ChatFile)
                    .where(ChatFile.id == file_id)
                    .values(
                        status=FileStatus.QUEUED,
                        version=ChatFile.version + 1,
                        attempts=0,
                        chunks_done=0,
                        chunks_total=None,
                        lease_expires_at=None,
                        lease_token=None,
                        updated_at=utcnow(),
                    )
                )
        if stale and documents.stores.vectors.count() == 0:
            documents.stores.vectors.reset()  # a new model may have another dimension
        with engine.connect() as connection:
            versions = connection.execute(
                select(ChatFile.id, ChatFile.version).where(
                    ChatFile.id.in_([file_id for file_id, _ in stale])
                )
            ).all()
        build_queue(settings).enqueue([(str(row.id), int(row.version)) for row in versions])
        documents.stores.keywords.close()
        logger.info("%d file(s) queued for re-embedding with %s", len(stale), model)
        return len(stale)
    finally:
        if lock is not None:
            lock.release()
