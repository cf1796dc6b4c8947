"""The facade over ragline's own answer pipeline (:mod:`ragline.chat.answer`): it maps
OpenAI requests in and OpenAI shapes out, and answers nothing itself.

Memory: the assistant's stored history is the conversation, as on the native
``/chats/{id}/chat`` endpoint. Only the last user message of ``messages`` is taken, as the
question; the client's earlier messages (and any system message) are not replayed into the
prompt, so a client that resends the whole conversation each turn does not double it, and
the assistant's own system prompt (``context``) stays in force.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ragline.assistants.repository import ChatRepository
from ragline.chat import answer
from ragline.chat.runtime import ChatRuntime
from ragline.errors import ChatNotFound, RaglineError, error_body
from ragline.models import User
from ragline.openai_api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    CompletionRequest,
    CompletionUsage,
    Delta,
    ModelList,
    ModelObject,
)
from ragline.rag.llm.base import Usage

logger = logging.getLogger(__name__)
Events = AsyncIterator[answer.Delta | answer.Finished]


async def list_models(*, session: AsyncSession, owner: User) -> ModelList:
    chats = (await session.scalars(ChatRepository(session, owner_id=owner.id).recent())).all()
    return ModelList(
        data=[
            ModelObject(id=str(chat.id), created=int(chat.created_at.timestamp()), name=chat.title)
            for chat in chats
        ]
    )


async def answer_events(
    *,
    session: AsyncSession,
    owner: User,
    body: CompletionRequest,
    runtime: ChatRuntime,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> Events:
    """Prepare the answer now (404, 503 raise here), generate it as it is iterated."""
    try:
        chat_id = uuid.UUID(body.model)
    except ValueError:
        raise ChatNotFound(f"No such model: {body.model!r}.") from None
    prepared = await answer.prepare_answer(
        session=session, owner=owner, chat_id=chat_id, request=body.chat_request(), runtime=runtime
    )
    return answer.generate(prepared, runtime=runtime, sessionmaker=sessionmaker)


async def completion(events: Events, *, model: str) -> ChatCompletion:
    async for event in events:
        if isinstance(event, answer.Finished):
            return ChatCompletion(
                id=_completion_id(),
                created=int(time.time()),
                model=model,
                choices=[Choice(message=AssistantMessage(content=event.text))],
                usage=_usage(event.usage),
                sources=event.sources,
            )
    raise AssertionError("generate ends with Finished")


async def completion_chunks(
    first: answer.Delta | answer.Finished, events: Events, *, model: str
) -> AsyncIterator[str]:
    """``data: <chunk>`` lines, then ``data: [DONE]``; a failure mid-way sends ragline's
    error body as the last data line (the ``openai`` client raises ``APIError`` on it)."""
    common: dict[str, Any] = {"id": _completion_id(), "created": int(time.time()), "model": model}
    event: answer.Delta | answer.Finished | None = first
    role: Delta = Delta(role="assistant")
    try:
        while event is not None:
            if isinstance(event, answer.Delta):
                delta = role.model_copy(update={"content": event.text})
                chunk = ChatCompletionChunk(**common, choices=[ChunkChoice(delta=delta)])
                role = Delta()
            else:
                chunk = ChatCompletionChunk(
                    **common,
                    choices=[ChunkChoice(delta=Delta(), finish_reason="stop")],
                    usage=_usage(event.usage),
                    sources=event.sources,
                )
            yield _data(chunk.wire())
            event = await anext(events, None)
    except RaglineError as exc:
        yield _data(error_body(exc.name, exc.detail))
        return
    except Exception:
        logger.exception("completion stream failed")
        yield _data(error_body("InternalServerError", "Internal server error."))
        return
    yield "data: [DONE]\n\n"


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _usage(usage: Usage) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )
