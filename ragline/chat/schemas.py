from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ragline.models import MessageRole, MessageStatus


class Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class MessageRead(BaseModel):
    id: uuid.UUID
    chat_id: uuid.UUID
    role: MessageRole
    text: str
    sources: list[dict[str, Any]]
    status: MessageStatus
    usage: Usage
    created_at: datetime
