"""Chat history. Generation lands with the grounded-chat issue."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from ragline.assistants.service import get_owned_chat
from ragline.chat.repository import MessageRepository
from ragline.chat.schemas import MessageRead, Usage
from ragline.kit.pagination import Page, PageParams
from ragline.models import ChatMessage, User


def to_read(message: ChatMessage) -> MessageRead:
    return MessageRead(
        id=message.id,
        chat_id=message.chat_id,
        role=message.role,
        text=message.text,
        sources=message.sources,
        status=message.status,
        usage=Usage(
            prompt_tokens=message.prompt_tokens, completion_tokens=message.completion_tokens
        ),
        created_at=message.created_at,
        supported=message.supported,
        unsupported=message.unsupported or [],
    )


async def list_messages(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    params: PageParams,
    order: Literal["asc", "desc"],
) -> Page[MessageRead]:
    await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    repository = MessageRepository(session, owner_id=owner.id)
    rows, total = await repository.page(repository.history(chat_id, order=order), params)
    return Page[MessageRead].of([to_read(row[0]) for row in rows], total=total, params=params)
