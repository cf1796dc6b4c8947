"""The facade over ragline's answer pipeline (:mod:`ragline.chat.answer`): it maps OpenAI
requests in and OpenAI shapes out, and answers nothing itself.

Stateless, as OpenAI's endpoint is: the client's ``messages`` are the conversation (see
:mod:`ragline.openai_api.conversation`), and nothing is read from or written to the
assistant's stored history. The assistant's own system prompt (``context``), model and
files still apply.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ragline.assistants.repository import ChatRepository
from ragline.chat import answer
from ragline.chat.runtime import ChatRuntime
from ragline.chat.schemas import unsupported_claims
from ragline.errors import ChatNotFound, NotFound, RaglineError, openai_error, openai_internal_error
from ragline.models import User
from ragline.openai_api.conversation import conversation, refuse_unsupported
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
Event = answer.Delta | answer.Answered
Events = AsyncIterator[Event]


class ModelNotFound(NotFound):
    code = "model_not_found"
    param = "model"


async def list_models(*, session: AsyncSession, owner: User) -> ModelList:
    chats = (await session.scalars(ChatRepository(session, owner_id=owner.id).recent())).all()
    return ModelList(
        data=[
            ModelObject(id=str(chat.id), created=int(chat.created_at.timestamp()), name=chat.title)
            for chat in chats
        ]
    )


async def answer_events(
    *, session: AsyncSession, owner: User, body: CompletionRequest, runtime: ChatRuntime
) -> Events:
    """Prepare the answer now (400, 404, 503 raise here), generate it as it is iterated."""
    refuse_unsupported(body)
    question, history = conversation(body)
    missing = ModelNotFound(
        f"The model {body.model!r} does not exist or you do not have access to it."
    )
    try:
        chat_id = uuid.UUID(body.model)
    except ValueError:
        raise missing from None
    try:
        prepared = await answer.prepare(
            session=session,
            owner=owner,
            chat_id=chat_id,
            question=question,
            history=history,
            runtime=runtime,
        )
    except ChatNotFound:
        raise missing from None
    return answer.stream_answer(prepared, runtime=runtime)


async def completion(events: Events, *, model: str) -> ChatCompletion:
    async for event in events:
        if isinstance(event, answer.Answered):
            return ChatCompletion(
                id=_completion_id(),
                created=int(time.time()),
                model=model,
                choices=[Choice(message=AssistantMessage(content=event.text))],
                usage=_usage(event.usage),
                sources=event.sources,
                supported=event.claims.supported,
                unsupported=unsupported_claims(event.claims),
            )
    raise AssertionError("stream_answer ends with Answered")


async def completion_chunks(
    first: Event, events: Events, *, model: str, include_usage: bool
) -> AsyncIterator[str]:
    """``data: <chunk>`` lines, then ``data: [DONE]``. A failure mid-way sends OpenAI's
    error object as the last data line (the ``openai`` client raises ``APIError`` on it)."""
    common: dict[str, Any] = {"id": _completion_id(), "created": int(time.time()), "model": model}

    def chunk(**fields: Any) -> str:
        return _data(ChatCompletionChunk(**common, **fields).wire(include_usage))

    yield chunk(choices=[ChunkChoice(delta=Delta(role="assistant", content=""))])
    event: Event | None = first
    try:
        while event is not None:
            if isinstance(event, answer.Delta):
                yield chunk(choices=[ChunkChoice(delta=Delta(content=event.text))])
            else:
                finish = ChunkChoice(delta=Delta(), finish_reason="stop")
                yield chunk(
                    choices=[finish],
                    sources=event.sources,
                    supported=event.claims.supported,
                    unsupported=unsupported_claims(event.claims),
                )
                if include_usage:
                    yield chunk(choices=[], usage=_usage(event.usage))
            event = await anext(events, None)
    except RaglineError as exc:
        yield _data(openai_error(exc))
        return
    except Exception:
        logger.exception("completion stream failed")
        yield _data(openai_internal_error())
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
