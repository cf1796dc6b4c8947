from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ragline.auth.ratelimit import Limit
from ragline.chat import answer, retrieval, service
from ragline.chat.schemas import (
    ChatAnswer,
    ChatRequest,
    MessageRead,
    SearchRequest,
    SearchResponse,
    unsupported_claims,
)
from ragline.chat.schemas import Usage as UsageRead
from ragline.chat.sse import event_stream
from ragline.deps import CurrentUser, SessionDep, rate_limited
from ragline.errors import ChatNotFound, Unprocessable
from ragline.kit.pagination import Page, PageDep
from ragline.kit.responses import JSON_BODY, RATE_LIMITED, SIGNED_IN, VALIDATION, errors_for
from ragline.lifespan import app_state

router = APIRouter(tags=["chat"], responses=errors_for(SIGNED_IN))
# Answering: over the rate or concurrent-generation limit (429), a question the model's
# window cannot hold (422), the model or a store down (503), the model failing (502).
_ANSWER = (
    ChatNotFound,
    VALIDATION,
    Unprocessable,
    *RATE_LIMITED,
    *JSON_BODY,
    answer.LLMUnavailableError,
    retrieval.StoresUnavailable,
    answer.GenerationFailed,
)


@router.get(
    "/messages/{chat_id}",
    response_model=Page[MessageRead],
    responses=errors_for(ChatNotFound, VALIDATION),
)
async def list_messages(
    user: CurrentUser,
    session: SessionDep,
    chat_id: uuid.UUID,
    page: PageDep,
    order: Annotated[Literal["asc", "desc"], Query(description="By creation time.")] = "asc",
) -> Page[MessageRead]:
    """The chat's history, oldest first by default."""
    return await service.list_messages(
        session=session, owner=user, chat_id=chat_id, params=page, order=order
    )


@router.post(
    "/chats/{chat_id}/search",
    response_model=SearchResponse,
    responses=errors_for(ChatNotFound, JSON_BODY, retrieval.StoresUnavailable),
)
async def search(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    chat_id: uuid.UUID,
    body: SearchRequest,
) -> SearchResponse:
    """The assistant's chunks that best match ``query`` (hybrid by default), with scores,
    file, page/section and character offsets."""
    return await retrieval.search(
        session=session,
        owner=user,
        chat_id=chat_id,
        request=body,
        runtime=app_state(request).chat,
    )


@router.post(
    "/chats/{chat_id}/chat",
    response_model=ChatAnswer,
    dependencies=[rate_limited(Limit.CHAT)],
    responses=errors_for(_ANSWER),
)
async def chat(
    request: Request, user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, body: ChatRequest
) -> ChatAnswer:
    """Answer a question from the assistant's files, whole; sources and usage included,
    and whether its numbers, dates and names are in the sources (``supported``; those that
    are not in ``unsupported``, with their character offsets). 503 when the language model
    or a store is down, 502 if the model fails mid-answer."""
    state = app_state(request)
    prepared = await answer.prepare_answer(
        session=session, owner=user, chat_id=chat_id, request=body, runtime=state.chat
    )
    async for event in answer.generate(
        prepared, runtime=state.chat, sessionmaker=state.sessionmaker
    ):
        if isinstance(event, answer.Finished):
            return ChatAnswer(
                message_id=event.message_id,
                text=event.text,
                sources=event.sources,
                usage=UsageRead(
                    prompt_tokens=event.usage.prompt_tokens,
                    completion_tokens=event.usage.completion_tokens,
                ),
                supported=event.claims.supported,
                unsupported=unsupported_claims(event.claims),
            )
    raise AssertionError("generate ends with Finished")


@router.post(
    "/chats/{chat_id}/chat/stream",
    response_class=StreamingResponse,
    dependencies=[rate_limited(Limit.CHAT)],
    responses={200: {"content": {"text/event-stream": {}}}, **errors_for(_ANSWER)},
)
async def chat_stream(
    request: Request, user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, body: ChatRequest
) -> StreamingResponse:
    """Server-Sent Events: ``delta`` ({"text"}) as the answer is written, then ``sources``
    and ``done`` ({"message_id", "supported", "unsupported"}, as on the JSON endpoint);
    ``error`` (the usual error body) if it fails mid-way. A model or store that is down
    before the first piece answers 503 JSON instead."""
    state = app_state(request)
    prepared = await answer.prepare_answer(
        session=session, owner=user, chat_id=chat_id, request=body, runtime=state.chat
    )
    events = answer.generate(prepared, runtime=state.chat, sessionmaker=state.sessionmaker)
    first = await anext(events)  # raises (503) before any byte is sent if the model is down
    return StreamingResponse(
        event_stream(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
