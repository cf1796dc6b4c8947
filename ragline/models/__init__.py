"""All ORM tables, importable in one go (Alembic's target metadata)."""

from ragline.models.api_key import ApiKey
from ragline.models.base import Base
from ragline.models.chat import Chat, ChatFile, ChatMessage, Favourite, FilePurge
from ragline.models.enums import ApiKeyScope, FileKind, FileStatus, MessageRole, MessageStatus
from ragline.models.user import User

__all__ = [
    "ApiKey",
    "ApiKeyScope",
    "Base",
    "Chat",
    "ChatFile",
    "ChatMessage",
    "Favourite",
    "FileKind",
    "FilePurge",
    "FileStatus",
    "MessageRole",
    "MessageStatus",
    "User",
]
