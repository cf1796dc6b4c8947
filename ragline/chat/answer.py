"""Answering a question: prepare (scope, queries, retrieval, prompt), then
generate (stream pieces; the native chat also stores the exchange once the answer is whole).

One pipeline, given the conversation so far: the native chat (``/chats/{id}/chat``) reads
it from the assistant's stored history (:func:`prepare_answer`, :func:`generate`); the
OpenAI-compatible facade (``/v1``) takes it from the client's ``messages``, with the
client's system messages and sampling settings, and stores nothing (:func:`prepare`,
:func:`stream_answer`).

Storage is a documented exception to "the request owns the transaction": a streamed answer
outlives the request's session, so the exchange is written in its own transaction when the
answer completes — the user message and the assistant message with its sources together.
A generation that fails or is aborted stores the user message and an assistant message
with status ``error`` (and the reason as its text), never a partial answer as if whole.

A whole answer is checked against what the model was given (:mod:`ragline.rag.query.claims`:
its numbers, dates and names must be in a passage, the question, the user's earlier turns
or the system prompt); the result travels with it to every endpoint and into storage.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ragline.assistants.service import get_owned_chat
from ragline.chat.retrieval import (
    embed_early,
    retrieve,
    retrieve_follow_up,
    search_scope,
    to_source,
)
from ragline.chat.runtime import ChatRuntime
from ragline.chat.schemas import ChatParams, ChatRequest, Source
from ragline.errors import RaglineError, ServiceUnavailable
from ragline.models import Chat, ChatMessage, MessageRole, MessageStatus, User
from ragline.models.base import utcnow
from ragline.rag.llm.base import ChatMessage as Turn
from ragline.rag.llm.base import GenerationParams, LLMError, LLMUnavailable, Usage
from ragline.rag.query.claims import ClaimCheck, check_claims
from ragline.rag.query.followup import needs_history
from ragline.rag.query.memory import fit_history, standalone_question
from ragline.rag.query.prompt import GROUNDING, build_messages, passages

logger = logging.getLogger(__name__)
HISTORY_MESSAGES = 40


class LLMUnavailableError(ServiceUnavailable):
    """The language model could not be reached before it answered anything."""

    code = "model_unavailable"


class GenerationFailed(RaglineError):
    status_code = 502


@dataclass(frozen=True, slots=True)
class Sampling:
    """The client's generation settings; ``None`` keeps the assistant's own."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    """Capped at ``LLM_MAX_TOKENS``."""
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    params: ChatParams = field(default_factory=ChatParams)
    """The files to search, as on the native endpoint."""
    instructions: str = ""
    """The client's system message(s), added to the assistant's system prompt."""
    sampling: Sampling = Sampling()


@dataclass
class PreparedAnswer:
    owner_id: uuid.UUID
    chat_id: uuid.UUID
    question: str
    asked_at: datetime
    messages: list[Turn]
    params: GenerationParams
    sources: list[Source]
    passages: list[str]
    """The retrieved passages as the prompt gives them: what the answer's claims need."""
    context: list[str]
    """Other text the answer may repeat: system prompt, question, the user's earlier turns."""


@dataclass
class Delta:
    text: str


@dataclass
class Answered:
    """The whole answer, once generated."""

    text: str
    sources: list[Source]
    usage: Usage
    claims: ClaimCheck


@dataclass
class Finished(Answered):
    """The whole answer, once stored."""

    message_id: uuid.UUID


async def prepare_answer(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    request: ChatRequest,
    runtime: ChatRuntime,
) -> PreparedAnswer:
    """The native chat: the assistant's stored history is the conversation."""
    embedding = embed_early(runtime, request.text)  # the question as asked is always searched
    try:
        history = await _history(session, owner, chat_id)
    except BaseException:
        embedding.cancel()
        raise
    return await prepare(
        session=session,
        owner=owner,
        chat_id=chat_id,
        question=Question(request.text, request.params),
        history=history,
        runtime=runtime,
        embedding=embedding,
    )


async def prepare(
    *,
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    question: Question,
    history: Sequence[Turn],
    runtime: ChatRuntime,
    embedding: asyncio.Task[list[float]] | None = None,
) -> PreparedAnswer:
    """The answer's prompt and settings, given the conversation so far (``history``, oldest
    first, user and assistant turns). ``embedding``: the question's, if the caller started
    it. A follow-up that needs the conversation (:func:`needs_history`) is searched as
    asked and as the model rewrites it, the two rankings fused; any other question only as
    asked, without a model call."""
    asked_at = utcnow()
    if embedding is None:
        embedding = embed_early(runtime, question.text)  # overlaps the database work
    try:
        chat = await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
        scope = await search_scope(
            session=session, owner=owner, chat_id=chat_id, params=question.params
        )
    except BaseException:
        embedding.cancel()
        raise
    k = runtime.settings.retrieval_top_k
    if history and needs_history(question.text):
        rewrite = _standalone(runtime, history, question.text, chat.model)
        chunks = await retrieve_follow_up(
            runtime, question.text, rewrite, scope, k=k, embedding=embedding
        )
    else:
        chunks = await retrieve(runtime, question.text, scope, k=k, embedding=embedding)
    turns = fit_history(
        history, budget=runtime.settings.history_token_budget, count_tokens=runtime.count_tokens
    )
    system_prompt = "\n\n".join(
        part for part in (chat.context.strip(), question.instructions.strip()) if part
    )
    return PreparedAnswer(
        owner_id=owner.id,
        chat_id=chat_id,
        question=question.text,
        asked_at=asked_at,
        messages=build_messages(
            system_prompt=system_prompt, history=turns, chunks=chunks, question=question.text
        ),
        params=_generation_params(chat, question.sampling, runtime.settings.llm_max_tokens),
        sources=[to_source(chunk) for chunk in chunks],
        passages=passages(chunks),
        context=[
            system_prompt,
            GROUNDING,
            question.text,
            *(turn.content for turn in history if turn.role == "user"),
        ],
    )


async def stream_answer(
    prepared: PreparedAnswer, *, runtime: ChatRuntime
) -> AsyncGenerator[Delta | Answered, None]:
    """Pieces as they come, then :class:`Answered`; nothing is stored. Raises
    :class:`LLMUnavailableError` (nothing generated) or :class:`GenerationFailed`."""
    usage = Usage()
    pieces: list[str] = []
    try:
        async for piece in runtime.llm.stream(prepared.messages, prepared.params, usage):
            pieces.append(piece)
            yield Delta(piece)
    except LLMUnavailable as exc:
        raise LLMUnavailableError(str(exc)) from exc
    except LLMError as exc:
        raise GenerationFailed(str(exc)) from exc
    text = "".join(pieces)
    claims = check_claims(text, prepared.passages, prepared.context)  # 1-2 ms: 5 passages
    yield Answered(text=text, sources=prepared.sources, usage=usage, claims=claims)


async def generate(
    prepared: PreparedAnswer,
    *,
    runtime: ChatRuntime,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Delta | Finished]:
    """:func:`stream_answer`, ending with :class:`Finished` once the exchange is stored; a
    generation that fails or is aborted is stored as an error exchange."""
    stored = False
    try:
        async with aclosing(stream_answer(prepared, runtime=runtime)) as events:
            async for event in events:
                if isinstance(event, Delta):
                    yield event
                    continue
                message_id = await _store_complete(sessionmaker, prepared, event)
                stored = True
                yield Finished(
                    event.text, event.sources, event.usage, event.claims, message_id=message_id
                )
    except (LLMUnavailableError, GenerationFailed) as exc:
        stored = True
        await _store_failed(sessionmaker, prepared, str(exc))
        raise
    finally:
        if not stored:  # aborted: the client left, or the task was cancelled
            await asyncio.shield(
                _store_failed(sessionmaker, prepared, "the answer was aborted before it ended")
            )


def _generation_params(chat: Chat, sampling: Sampling, max_tokens: int) -> GenerationParams:
    """The assistant's settings, the client's over them; the answer capped at ``max_tokens``
    (``LLM_MAX_TOKENS``)."""
    temperature = chat.temperature if sampling.temperature is None else sampling.temperature
    return GenerationParams(
        temperature=temperature,
        max_tokens=min(sampling.max_tokens or max_tokens, max_tokens),
        model=chat.model or None,
        top_p=sampling.top_p,
        stop=sampling.stop,
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
    runtime: ChatRuntime, history: Sequence[Turn], question: str, model: str | None
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
    answered: Answered,
) -> uuid.UUID:
    async with sessionmaker() as session, session.begin():
        answer = await _exchange(
            session, prepared, text=answered.text, status=MessageStatus.COMPLETE
        )
        answer.sources = [source.model_dump() for source in prepared.sources]
        answer.prompt_tokens = answered.usage.prompt_tokens or None
        answer.completion_tokens = answered.usage.completion_tokens or None
        answer.supported = answered.claims.supported
        answer.unsupported = [asdict(span) for span in answered.claims.unsupported]
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
