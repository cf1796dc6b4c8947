"""Assistant use cases. Services flush; the request's session commits (STYLE rule 6)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.assistants.avatars import Avatar
from ragline.assistants.repository import ChatRepository
from ragline.assistants.schemas import ChatCreate, ChatRead, ChatUpdate
from ragline.documents.runtime import Documents
from ragline.errors import AvatarNotFound, ChatNotFound
from ragline.kit.pagination import Page, PageParams
from ragline.models import Chat, User
from ragline.models.base import utcnow


def to_read(chat: Chat, *, is_favourite: bool) -> ChatRead:
    return ChatRead(
        id=chat.id,
        title=chat.title,
        description=chat.description,
        context=chat.context,
        temperature=chat.temperature,
        model=chat.model,
        avatar_url=f"/avatars/{chat.id}" if chat.avatar_mime else None,
        is_favourite=is_favourite,
        created_at=chat.created_at,
        updated_at=chat.updated_at,
        last_interacted_at=chat.last_interacted_at,
    )


def rows_to_page(rows: Sequence[Row[Any]], *, total: int, params: PageParams) -> Page[ChatRead]:
    items = [to_read(chat, is_favourite=bool(fav)) for chat, fav in rows]
    return Page[ChatRead].of(items, total=total, params=params)


async def get_owned_chat(*, session: AsyncSession, owner: User, chat_id: uuid.UUID) -> Chat:
    """The chat if ``owner`` owns it; otherwise ``ChatNotFound`` (never a 403)."""
    chat = await ChatRepository(session, owner_id=owner.id).get(chat_id)
    if chat is None:
        raise ChatNotFound()
    return chat


async def _read_one(session: AsyncSession, owner: User, chat_id: uuid.UUID) -> ChatRead:
    repository = ChatRepository(session, owner_id=owner.id)
    row = (
        await session.execute(
            repository.with_favourite(repository.scoped().where(Chat.id == chat_id))
        )
    ).one_or_none()
    if row is None:
        raise ChatNotFound()
    return to_read(row[0], is_favourite=bool(row[1]))


async def _page(
    session: AsyncSession, owner: User, statement: Select[tuple[Chat]], params: PageParams
) -> Page[ChatRead]:
    repository = ChatRepository(session, owner_id=owner.id)
    rows, total = await repository.page(repository.with_favourite(statement), params)
    return rows_to_page(rows, total=total, params=params)


async def create_chat(
    *,
    session: AsyncSession,
    owner: User,
    data: ChatCreate,
    avatar: Avatar | None,
    check_context: Callable[[str], None],
) -> ChatRead:
    """``check_context`` raises (422) for a system prompt the model's window cannot hold."""
    check_context(data.context)
    chat = Chat(owner_id=owner.id, **data.model_dump())
    if avatar is not None:
        chat.avatar, chat.avatar_mime = avatar.content, avatar.mime
    session.add(chat)
    await session.flush()
    return to_read(chat, is_favourite=False)


async def list_chats(*, session: AsyncSession, owner: User, params: PageParams) -> Page[ChatRead]:
    repository = ChatRepository(session, owner_id=owner.id)
    return await _page(session, owner, repository.recent(), params)


async def search_chats(
    *, session: AsyncSession, owner: User, query: str, params: PageParams
) -> Page[ChatRead]:
    repository = ChatRepository(session, owner_id=owner.id)
    return await _page(session, owner, repository.search(query), params)


async def read_chat(*, session: AsyncSession, owner: User, chat_id: uuid.UUID) -> ChatRead:
    return await _read_one(session, owner, chat_id)


async def update_chat(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    data: ChatUpdate,
    avatar: Avatar | None,
    check_context: Callable[[str], None],
) -> ChatRead:
    chat = await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    if data.context is not None:
        check_context(data.context)
    for name, value in data.model_dump(exclude_unset=True, exclude={"remove_avatar"}).items():
        setattr(chat, name, value)
    if data.remove_avatar:
        chat.avatar, chat.avatar_mime = None, None
    if avatar is not None:
        chat.avatar, chat.avatar_mime = avatar.content, avatar.mime
    chat.updated_at = utcnow()
    await session.flush()
    return await _read_one(session, owner, chat_id)


async def delete_chat(
    *, session: AsyncSession, owner: User, chat_id: uuid.UUID, documents: Documents
) -> None:
    """Rows go at once, with a purge row per file and one for the chat's own collection and
    keyword table (committed here, before the purges are queued: see
    ``documents.service.delete_file``)."""
    from ragline.documents.service import mark_chat_files_for_purge

    chat = await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    file_ids = await mark_chat_files_for_purge(session=session, owner=owner, chat_id=chat_id)
    await ChatRepository(session, owner_id=owner.id).delete_with_dependents(chat)
    await session.commit()
    await documents.purge(file_ids)


async def read_avatar(*, session: AsyncSession, owner: User, chat_id: uuid.UUID) -> Avatar:
    found = await ChatRepository(session, owner_id=owner.id).avatar(chat_id)
    if found is None:
        raise ChatNotFound()
    content, mime = found
    if content is None or mime is None:
        raise AvatarNotFound()
    return Avatar(content=content, mime=mime)
