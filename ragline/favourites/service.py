from __future__ import annotations

import uuid

from sqlalchemy import true
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.assistants.schemas import ChatRead
from ragline.assistants.service import get_owned_chat, rows_to_page
from ragline.errors import FavouriteNotFound
from ragline.favourites.repository import FavouriteRepository
from ragline.favourites.schemas import FavouriteRead
from ragline.kit.pagination import Page, PageParams
from ragline.models import Favourite, User


async def read_favourite(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID
) -> FavouriteRead:
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    favourite = await FavouriteRepository(session, owner_id=owner.id).for_chat(chat_id)
    if favourite is None:
        raise FavouriteNotFound()
    return FavouriteRead(chat_id=favourite.chat_id, created_at=favourite.created_at)


async def add_favourite(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID
) -> tuple[FavouriteRead, bool]:
    """Favourite a chat; idempotent. Returns the favourite and whether it is new."""
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    repository = FavouriteRepository(session, owner_id=owner.id)
    favourite = await repository.for_chat(chat_id)
    created = favourite is None
    if favourite is None:
        favourite = Favourite(owner_id=owner.id, chat_id=chat_id)
        session.add(favourite)
        await session.flush()
    return FavouriteRead(chat_id=favourite.chat_id, created_at=favourite.created_at), created


async def remove_favourite(*, session: AsyncSession, owner: User, chat_id: uuid.UUID) -> None:
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    favourite = await FavouriteRepository(session, owner_id=owner.id).for_chat(chat_id)
    if favourite is None:
        raise FavouriteNotFound()
    await session.delete(favourite)
    await session.flush()


async def list_favourites(
    *, session: AsyncSession, owner: User, params: PageParams
) -> Page[ChatRead]:
    repository = FavouriteRepository(session, owner_id=owner.id)
    statement = repository.favourite_chats().add_columns(true().label("is_favourite"))
    rows, total = await repository.page(statement, params)
    return rows_to_page(rows, total=total, params=params)
