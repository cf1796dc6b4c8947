"""Answering a question: prepare (scope, queries, retrieval, prompt), then
generate (stream pieces; the native chat also stores the exchange once the answer is whole).

One pipeline, given the conversation so far: the native chat (``/chats/{id}/chat``) reads
it from the assistant's stored history (:func:`prepare_answer`, :func:`generate`); the
OpenAI-compatible facade (``/v1``) takes it from the client's ``messages``, with the
client's system messages and sampling settings, and stores nothing (:func:`prepare`,
:func:`stream_answer`).

Two documented exceptions to "the request owns the transaction": :func:`prepare` ends the
request's transaction once it has read what it needs, so no database connection is held
while the model writes (a chat may take a minute; the pool has a few dozen connections);
and the exchange is written in its own short transaction when the answer ends
(:mod:`ragline.chat.storage`) — the user message and the assistant message with its
sources together. A generation that fails stores an assistant message with status
``error`` (the reason as its text); one the client leaves mid-way, status ``aborted`` with
the text it had been sent; never a partial answer as if whole.

Each user has at most ``CHAT_MAX_CONCURRENT_PER_USER`` answers in progress (429 beyond),
and the prompt is fitted to the model's window (:mod:`ragline.rag.query.budget`): a
question that cannot fit with the assistant's instructions answers 422.

A whole answer is checked against what the model was given (:mod:`ragline.rag.query.claims`:
its numbers, dates and names must be in a passage, the question, the user's earlier turns
or the system prompt); the result travels with it to every endpoint and into storage.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime

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
from ragline.chat.storage import store_complete, store_unfinished, stored_history
from ragline.errors import RaglineError, ServiceUnavailable, Unprocessable
from ragline.models import Chat, MessageStatus, User
from ragline.models.base import utcnow
from ragline.rag.llm.base import ChatMessage as Turn
from ragline.rag.llm.base import (
    GenerationParams,
    LLMContextExceeded,
    LLMError,
    LLMUnavailable,
    Usage,
)
from ragline.rag.query.budget import PromptBudget, PromptTooLong, fit_prompt
from ragline.rag.query.claims import ClaimCheck, check_claims
from ragline.rag.query.followup import needs_history
from ragline.rag.query.memory import standalone_question
from ragline.rag.query.prompt import GROUNDING, passages

logger = logging.getLogger(__name__)


class LLMUnavailableError(ServiceUnavailable):
    """The language model could not be reached before it answered anything."""

    code = "model_unavailable"


class GenerationFailed(RaglineError):
    status_code = 502


class QuestionTooLong(Unprocessable):
    """The question and the assistant's instructions leave the answer no room in the
    model's context window."""

    code = "context_length_exceeded"

    @classmethod
    def of(cls, exc: PromptTooLong | None = None, reason: str = "") -> QuestionTooLong:
        if exc is None:
            return cls(f"The prompt does not fit the model's context window: {reason}")
        return cls(
            f"The question and the assistant's instructions need about {exc.needed} tokens; "
            f"the model's context window leaves {exc.available} for the prompt "
            "(LLM_CONTEXT_TOKENS less the answer's LLM_MAX_TOKENS). Shorten the question."
        )


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
    release: Callable[[], None] | None = None
    """Frees the user's answer slot; :meth:`free` calls it once."""

    def free(self) -> None:
        release, self.release = self.release, None
        if release is not None:
            release()


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
        history = await stored_history(session, owner.id, chat_id)
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
    asked, without a model call. Holds one of the user's answer slots (429 if none is
    free) until the answer's generation ends; ends the request's transaction."""
    asked_at = utcnow()
    if embedding is None:
        embedding = embed_early(runtime, question.text)  # overlaps the database work
    try:
        runtime.generations.acquire(owner.id)
        try:
            return await _prepare(
                session, owner, chat_id, question, history, runtime, embedding, asked_at
            )
        except BaseException:
            runtime.generations.release(owner.id)
            raise
    except BaseException:
        embedding.cancel()
        raise


async def _prepare(
    session: AsyncSession,
    owner: User,
    chat_id: uuid.UUID,
    question: Question,
    history: Sequence[Turn],
    runtime: ChatRuntime,
    embedding: asyncio.Task[list[float]],
    asked_at: datetime,
) -> PreparedAnswer:
    chat = await get_owned_chat(session=session, owner=owner, chat_id=chat_id)
    scope = await search_scope(
        session=session, owner=owner, chat_id=chat_id, params=question.params
    )
    params = _generation_params(chat, question.sampling, runtime.settings.llm_max_tokens)
    model = chat.model
    owner_id = owner.id
    # Nothing more is read: the connection goes back to the pool before the model runs.
    await session.commit()
    system_prompt = "\n\n".join(
        part for part in (chat.context.strip(), question.instructions.strip()) if part
    )
    budget = PromptBudget(
        window=runtime.settings.llm_context_tokens,
        answer_tokens=params.max_tokens,
        count=runtime.prompt_tokens,
    )
    try:
        room = await runtime.in_thread(budget.check, system_prompt, question.text)
    except PromptTooLong as exc:
        raise QuestionTooLong.of(exc) from exc
    k = runtime.settings.retrieval_top_k
    if history and needs_history(question.text):
        rewrite = _standalone(runtime, history, question.text, model)
        chunks = await retrieve_follow_up(
            runtime, question.text, rewrite, scope, k=k, embedding=embedding
        )
    else:
        chunks = await retrieve(runtime, question.text, scope, k=k, embedding=embedding)
    fitted = await runtime.in_thread(
        functools.partial(
            fit_prompt,
            budget,
            room=room,
            system_prompt=system_prompt,
            history=history,
            chunks=chunks,
            question=question.text,
            history_tokens=runtime.settings.history_token_budget,
        )
    )
    return PreparedAnswer(
        owner_id=owner_id,
        chat_id=chat_id,
        question=question.text,
        asked_at=asked_at,
        messages=fitted.messages,
        params=params,
        sources=[to_source(chunk) for chunk in fitted.chunks],
        passages=passages(fitted.chunks),
        context=[
            system_prompt,
            GROUNDING,
            question.text,
            *(turn.content for turn in history if turn.role == "user"),
        ],
        release=functools.partial(runtime.generations.release, owner_id),
    )


async def stream_answer(
    prepared: PreparedAnswer, *, runtime: ChatRuntime
) -> AsyncGenerator[Delta | Answered, None]:
    """Pieces as they come, then :class:`Answered`; nothing is stored. Raises
    :class:`LLMUnavailableError` (nothing generated), :class:`QuestionTooLong` (the model
    refused the prompt's length) or :class:`GenerationFailed`. Frees the user's answer
    slot when it ends."""
    usage = Usage()
    pieces: list[str] = []
    try:
        async for piece in runtime.llm.stream(prepared.messages, prepared.params, usage):
            pieces.append(piece)
            yield Delta(piece)
    except LLMUnavailable as exc:
        raise LLMUnavailableError(str(exc)) from exc
    except LLMContextExceeded as exc:
        raise QuestionTooLong.of(reason=str(exc)) from exc
    except LLMError as exc:
        raise GenerationFailed(str(exc)) from exc
    finally:
        prepared.free()
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
    generation that fails is stored as an error exchange, one the client leaves (or the
    server cancels) as ``aborted`` with the text sent so far."""
    stored = False
    sent: list[str] = []
    try:
        async with aclosing(stream_answer(prepared, runtime=runtime)) as events:
            async for event in events:
                if isinstance(event, Delta):
                    yield event
                    sent.append(event.text)
                    continue
                message_id = await store_complete(sessionmaker, prepared, event)
                stored = True
                yield Finished(
                    event.text, event.sources, event.usage, event.claims, message_id=message_id
                )
    except (LLMUnavailableError, GenerationFailed, QuestionTooLong) as exc:
        stored = True
        await store_unfinished(
            sessionmaker, prepared, text=str(exc.detail), status=MessageStatus.ERROR
        )
        raise
    finally:
        prepared.free()  # a generator closed before its first step never ran stream_answer
        if not stored:  # aborted: the client left, or the task was cancelled
            await asyncio.shield(
                store_unfinished(
                    sessionmaker, prepared, text="".join(sent), status=MessageStatus.ABORTED
                )
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
