from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import Select

from ragline.kit.repository import ScopedRepository
from ragline.models import ChatMessage


class MessageRepository(ScopedRepository[ChatMessage]):
    model = ChatMessage

    def history(
        self, chat_id: uuid.UUID, *, order: Literal["asc", "desc"]
    ) -> Select[tuple[ChatMessage]]:
        columns = (ChatMessage.created_at, ChatMessage.id)
        ordering = [c.asc() for c in columns] if order == "asc" else [c.desc() for c in columns]
        return self.scoped().where(ChatMessage.chat_id == chat_id).order_by(*ordering)
