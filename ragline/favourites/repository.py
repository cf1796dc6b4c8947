from __future__ import annotations

import uuid

from sqlalchemy import Select, select

from ragline.kit.repository import ScopedRepository
from ragline.models import Chat, Favourite


class FavouriteRepository(ScopedRepository[Favourite]):
    model = Favourite

    async def for_chat(self, chat_id: uuid.UUID) -> Favourite | None:
        favourite: Favourite | None = await self.session.scalar(
            self.scoped().where(Favourite.chat_id == chat_id)
        )
        return favourite

    def favourite_chats(self) -> Select[tuple[Chat]]:
        """The user's own chats that they favourited, most recently favourited first."""
        return (
            select(Chat)
            .join(Favourite, Favourite.chat_id == Chat.id)
            .where(Favourite.owner_id == self.owner_id, Chat.owner_id == self.owner_id)
            .order_by(Favourite.created_at.desc(), Favourite.id.desc())
        )
