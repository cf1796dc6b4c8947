"""Storing an exchange: the question and its answer, in a transaction of their own (an
answer outlives the request's session: see :mod:`ragline.chat.answer`); and reading the
stored exchanges back as the conversation so far."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ragline.models import Chat, ChatMessage, MessageRole, MessageStatus
from ragline.models.base import utcnow
from ragline.rag.llm.base import ChatMessage as Turn

if TYPE_CHECKING:
    from ragline.chat.answer import Answered, PreparedAnswer

logger = logging.getLogger(__name__)
HISTORY_MESSAGES = 40


async def store_complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    prepared: PreparedAnswer,
    answered: Answered,
) -> uuid.UUID:
    async with sessionmaker() as session, session.begin():
        answer = await exchange(
            session, prepared, text=answered.text, status=MessageStatus.COMPLETE
        )
        answer.sources = [source.model_dump() for source in prepared.sources]
        answer.prompt_tokens = answered.usage.prompt_tokens or None
        answer.completion_tokens = answered.usage.completion_tokens or None
        answer.supported = answered.claims.supported
        answer.unsupported = [asdict(span) for span in answered.claims.unsupported]
    return answer.id


async def store_unfinished(
    sessionmaker: async_sessionmaker[AsyncSession],
    prepared: PreparedAnswer,
    *,
    text: str,
    status: MessageStatus,
) -> None:
    """A failed answer (``error``: ``text`` is the reason) or one the client left before it
    ended (``aborted``: ``text`` is what it had been sent, sources included)."""
    try:
        async with sessionmaker() as session, session.begin():
            answer = await exchange(session, prepared, text=text, status=status)
            if status is MessageStatus.ABORTED:
                answer.sources = [source.model_dump() for source in prepared.sources]
    except Exception:
        logger.exception("could not store the unfinished exchange of chat %s", prepared.chat_id)


async def exchange(
    session: AsyncSession, prepared: PreparedAnswer, *, text: str, status: MessageStatus
) -> ChatMessage:
    """Add the user message and the assistant message; touch the chat."""
    common = {"owner_id": prepared.owner_id, "chat_id": prepared.chat_id}
    question = ChatMessage(
        **common, role=MessageRole.USER, text=prepared.question, created_at=prepared.asked_at
    )
    answer = ChatMessage(
        **common,
        id=uuid.uuid4(),
        role=MessageRole.ASSISTANT,
        text=text,
        status=status,
        sources=[],
        created_at=max(utcnow(), prepared.asked_at + timedelta(microseconds=1)),
    )
    session.add_all([question, answer])
    await session.execute(
        update(Chat)
        .where(Chat.id == prepared.chat_id, Chat.owner_id == prepared.owner_id)
        .values(last_interacted_at=answer.created_at)
    )
    return answer


async def stored_history(
    session: AsyncSession, owner_id: uuid.UUID, chat_id: uuid.UUID
) -> list[Turn]:
    """Recent exchanges, oldest first; a failed or unfinished exchange (its answer has
    status ``error`` or ``aborted``) is left out, question included."""
    rows = (
        await session.scalars(
            select(ChatMessage)
            .where(ChatMessage.owner_id == owner_id, ChatMessage.chat_id == chat_id)
            .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
            .limit(HISTORY_MESSAGES)
        )
    ).all()
    turns: list[Turn] = []
    skip_question = False
    for row in rows:  # newest first: an error answer comes before its question
        if row.status is not MessageStatus.COMPLETE:  # failed, or left unfinished
            skip_question = True
        elif row.role is MessageRole.USER and skip_question:
            skip_question = False
        else:
            turns.append(Turn(row.role.value, row.text))
    return turns[::-1]
