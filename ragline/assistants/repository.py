from __future__ import annotations

import uuid

from sqlalchemy import Exists, Select, delete, exists, or_, select

from ragline.kit.repository import ScopedRepository
from ragline.models import Chat, ChatFile, ChatMessage, Favourite


class ChatRepository(ScopedRepository[Chat]):
    model = Chat

    def is_favourite(self) -> Exists:
        """Correlated EXISTS: has the current user favourited this chat?"""
        return exists().where(Favourite.chat_id == Chat.id, Favourite.owner_id == self.owner_id)

    def with_favourite(self, statement: Select[tuple[Chat]]) -> Select[tuple[Chat, bool]]:
        return statement.add_columns(self.is_favourite().label("is_favourite"))

    def recent(self) -> Select[tuple[Chat]]:
        return self.scoped().order_by(Chat.last_interacted_at.desc(), Chat.id.desc())

    def search(self, query: str) -> Select[tuple[Chat]]:
        """Literal, case-insensitive substring match: ``%`` and ``_`` are escaped."""
        return self.recent().where(
            or_(
                Chat.title.icontains(query, autoescape=True),
                Chat.description.icontains(query, autoescape=True),
            )
        )

    async def avatar(self, chat_id: uuid.UUID) -> tuple[bytes | None, str | None] | None:
        row = (
            await self.session.execute(
                select(Chat.avatar, Chat.avatar_mime).where(
                    Chat.id == chat_id, Chat.owner_id == self.owner_id
                )
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def delete_with_dependents(self, chat: Chat) -> None:
        for model in (Favourite, ChatMessage, ChatFile):
            await self.session.execute(delete(model).where(model.chat_id == chat.id))
        await self.session.delete(chat)
        await self.session.flush()
