"""Answering a question: prepare (history, scope, standalone query, retrieval, prompt),
then generate (stream pieces, store the exchange once the answer is whole).

Storage is a documented exception to "the request owns the transaction": a streamed answer
outlives the request's session, so the exchange is written in its own transaction when the
answer completes — the user message and the assistant message with its sources together.
A generation that fails or is aborted stores the user message and an assistant message
with status ``error`` (and the reason as its text), never a partial answer as if whole.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ragline.assistants.service import get_owned_chat
from ragline.chat.retrieval import embed_early, retrieve, search_scope, to_source
from ragline.chat.runtime import ChatRuntime
from ragline.chat.schemas import ChatRequest, Source
from ragline.errors import RaglineError, ServiceUnavailable
from ragline.models import Chat, ChatMessage, MessageRole, MessageStatus, User
from ragline.models.base import utcnow
from ragline.rag.llm.base import ChatMessage as Turn
from ragline.rag.llm.base import GenerationParams, LLMError, LLMUnavailable, Usage
from ragline.rag.query.memory import fit_history, standalone_question
from ragline.rag.query.prompt import build_messages

logger = logging.getLogger(__name__)
HISTORY_MESSAGES = 40


class LLMUnavailableError(ServiceUnavailable):
    """The language model could not be reached before it answered anything."""


class GenerationFailed(RaglineError):
    status_code = 502


@dataclass
class PreparedAnswer:
    owner_id: uuid.UUID
    chat_id: uuid.UUID
    question: str
    asked_at: datetime
    messages: list[Turn]
    params: GenerationParams
    sources: list[Source]


@dataclass
class Delta:
    text: str


@dataclass
class Finished:
    message_id: uuid.UUID
    text: str
    sources: list[Source]
    usage: Usage = field(default_factory=Usage)


async def prepare_answer(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    request: ChatRequest,
    runtime: ChatRuntime,
) -> PreparedAnswer:
    asked_at = utcnow()
    embedding = embed_early(runtime, request.text)  # the query, unless history rewrites it
    try:
        chat = await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
        history = await _history(session, owner, chat_id)
        scope = await search_scope(
            session=session, owner=owner, chat_id=chat_id, params=request.params
        )
    except BaseException:
        embedding.cancel()
        raise
    query = request.text
    if history:
        embedding.cancel()
        query = await _standalone(runtime, history, request.text, chat.model)
    chunks = await retrieve(
        runtime,
        query,
        scope,
        k=runtime.settings.retrieval_top_k,
        embedding=None if history else embedding,
    )
    turns = fit_history(
        history, budget=runtime.settings.history_token_budget, count_tokens=runtime.count_tokens
    )
    return PreparedAnswer(
        owner_id=owner.id,
        chat_id=chat_id,
        question=request.text,
        asked_at=asked_at,
        messages=build_messages(
            system_prompt=chat.context, history=turns, chunks=chunks, question=request.text
        ),
        params=GenerationParams(
            temperature=chat.temperature,
            max_tokens=runtime.settings.llm_max_tokens,
            model=chat.model or None,
        ),
        sources=[to_source(chunk) for chunk in chunks],
    )


async def generate(
    prepared: PreparedAnswer,
    *,
    runtime: ChatRuntime,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Delta | Finished]:
    """Pieces as they come, then :class:`Finished` once the exchange is stored. Raises
    :class:`LLMUnavailableError` (nothing generated) or :class:`GenerationFailed`."""
    usage = Usage()
    pieces: list[str] = []
    stored = False
    try:
        try:
            async for piece in runtime.llm.stream(prepared.messages, prepared.params, usage):
                pieces.append(piece)
                yield Delta(piece)
        except LLMUnavailable as exc:
            stored = True
            await _store_failed(sessionmaker, prepared, str(exc))
            raise LLMUnavailableError(str(exc)) from exc
        except LLMError as exc:
            stored = True
            await _store_failed(sessionmaker, prepared, str(exc))
            raise GenerationFailed(str(exc)) from exc
        text = "".join(pieces)
        message_id = await _store_complete(sessionmaker, prepared, text, usage)
        stored = True
        yield Finished(message_id=message_id, text=text, sources=prepared.sources, usage=usage)
    finally:
        if not stored:  # aborted: the client left, or the task was cancelled
            await asyncio.shield(
                _store_failed(sessionmaker, prepared, "the answer was aborted before it ended")
            )


async def _history(session: AsyncSession, owner: User, chat_id: uuid.UUID) -> list[Turn]:
    """Recent exchanges, oldest first; a failed exchange (its answer has status ``error``)
    is left out, question included."""
    rows = (
        await session.scalars(
            select(ChatMessage)
            .where(ChatMessage.owner_id == owner.id, ChatMessage.chat_id == chat_id)
            .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc())
            .limit(HISTORY_MESSAGES)
        )
    ).all()
    turns: list[Turn] = []
    skip_question = False
    for row in rows:  # newest first: an error answer comes before its question
        if row.status is MessageStatus.ERROR:
            skip_question = True
        elif row.role is MessageRole.USER and skip_question:
            skip_question = False
        else:
            turns.append(Turn(row.role.value, row.text))
    return turns[::-1]


async def _standalone(
    runtime: ChatRuntime, history: list[Turn], question: str, model: str | None
) -> str:
    """The rewritten follow-up; the question as asked if the model fails here (the answer's
    own generation then reports the failure and stores the exchange as an error)."""
    try:
        return await standalone_question(
            runtime.llm, history=history, question=question, model=model or None
        )
    except (LLMUnavailable, LLMError) as exc:
        logger.warning("could not rewrite the follow-up question: %s", exc)
        return question


async def _store_complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    prepared: PreparedAnswer,
    text: str,
    usage: Usage,
) -> uuid.UUID:
    async with sessionmaker() as session, session.begin():
        answer = await _exchange(session, prepared, text=text, status=MessageStatus.COMPLETE)
        answer.sources = [source.model_dump() for source in prepared.sources]
        answer.prompt_tokens = usage.prompt_tokens or None
        answer.completion_tokens = usage.completion_tokens or None
    return answer.id


async def _store_failed(
    sessionmaker: async_sessionmaker[AsyncSession], prepared: PreparedAnswer, reason: str
) -> None:
    try:
        async with sessionmaker() as session, session.begin():
            await _exchange(session, prepared, text=reason, status=MessageStatus.ERROR)
    except Exception:
        logger.exception("could not store the failed exchange of chat %s", prepared.chat_id)


async def _exchange(
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
