"""Assistants ("chats") and what hangs off them: files, messages, favourites."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from ragline.models.base import (
    Base,
    CreatedMixin,
    IdMixin,
    JSONType,
    OwnedMixin,
    str_enum,
    utcnow,
)
from ragline.models.enums import FileKind, FileStatus, MessageRole, MessageStatus


class Chat(IdMixin, CreatedMixin, OwnedMixin, Base):
    """An assistant: a system prompt (``context``), model settings and its files."""

    __tablename__ = "chats"
    __table_args__ = (Index("ix_chats_owner_last_interacted", "owner_id", "last_interacted_at"),)

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[str] = mapped_column(Text, default="")
    temperature: Mapped[float] = mapped_column(Float, default=0.2)
    model: Mapped[str | None] = mapped_column(String(200))
    avatar: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    avatar_mime: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_interacted_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatFile(IdMixin, CreatedMixin, OwnedMixin, Base):
    """An uploaded file. Its ``status`` is the source of truth for ingestion jobs."""

    __tablename__ = "chat_files"
    __table_args__ = (
        UniqueConstraint("chat_id", "sha256"),
        # Searches ask whether any file of the chat is unfinished (a few index seeks).
        Index("ix_chat_files_chat_status", "chat_id", "status"),
    )

    chat_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[FileKind] = mapped_column(str_enum(FileKind, "file_kind"))
    status: Mapped[FileStatus] = mapped_column(
        str_enum(FileStatus, "file_status"), default=FileStatus.QUEUED
    )
    error: Mapped[str | None] = mapped_column(Text)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    embedding_dimension: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Where the bytes are (storage key, never the client's name) and which upload it is.
    storage_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Progress of the current job: chunks stored / chunks in the file.
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[int | None] = mapped_column(Integer)
    # Failed attempts of the current version (transient errors are retried with backoff).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A worker holds the job until this time and extends it while it makes progress;
    # past it, the job is someone else's to take (a dead worker loses its lease).
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    # Which job holds the lease: only that job may write status, progress or the result.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    indexed_at: Mapped[datetime | None] = mapped_column()
    # True when the last job that wrote this file's chunks finished: the keyword index then
    # lists exactly the chunks that have vectors, and a re-ingest diffs against it (~0.2 ms)
    # instead of Chroma's metadata filter (~2 ms). A job clears it before it writes.
    chunks_settled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())


class FilePurge(CreatedMixin, Base):
    """A deleted file whose chunks and bytes are still to be removed.

    Deleting a file (or its chat) deletes its row and inserts this one in the same
    transaction; the file is gone for every reader at once (retrieval only searches the
    files of existing rows) and a queued job removes its vectors, keyword rows and bytes,
    then this row. No foreign keys: it outlives the file, the chat and even the user.
    """

    __tablename__ = "file_purges"

    file_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chat_id: Mapped[uuid.UUID] = mapped_column(index=True)
    storage_key: Mapped[str] = mapped_column(String(64))


class ChatMessage(IdMixin, CreatedMixin, OwnedMixin, Base):
    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_chat_created", "chat_id", "created_at"),)

    chat_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    role: Mapped[MessageRole] = mapped_column(str_enum(MessageRole, "message_role"))
    text: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    status: Mapped[MessageStatus] = mapped_column(
        str_enum(MessageStatus, "message_status"), default=MessageStatus.COMPLETE
    )
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    # Claims of a complete answer that no source backs (ragline.rag.query.claims): each
    # {"text", "start", "end"}. NULL: not checked (questions, failed answers, older rows).
    supported: Mapped[bool | None] = mapped_column(Boolean)
    unsupported: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)


class Favourite(IdMixin, CreatedMixin, OwnedMixin, Base):
    """A user's favourite chat; ``owner_id`` is the user who favourited it."""

    __tablename__ = "favourites"
    __table_args__ = (UniqueConstraint("owner_id", "chat_id"),)

    chat_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE"), index=True
    )
