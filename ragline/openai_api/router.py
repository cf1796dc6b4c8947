from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ragline.auth.ratelimit import Limit
from ragline.chat.answer import GenerationFailed, LLMUnavailableError
from ragline.chat.retrieval import StoresUnavailable
from ragline.deps import CurrentUser, SessionDep, rate_limited
from ragline.errors import OPENAI_PREFIX, Unprocessable
from ragline.kit.responses import BODY_LIMIT, RATE_LIMITED, SIGNED_IN, VALIDATION, errors_for
from ragline.lifespan import app_state
from ragline.openai_api import service
from ragline.openai_api.conversation import InvalidRequest
from ragline.openai_api.schemas import ChatCompletion, CompletionRequest, ModelList

router = APIRouter(
    prefix=OPENAI_PREFIX, tags=["openai"], responses=errors_for(SIGNED_IN, openai=True)
)


@router.get("/models", response_model=ModelList)
async def list_models(user: CurrentUser, session: SessionDep) -> ModelList:
    """The signed-in user's assistants as OpenAI models; a model's ``id`` is the chat id."""
    return await service.list_models(session=session, owner=user)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    dependencies=[rate_limited(Limit.CHAT)],
    responses={
        200: {"content": {"text/event-stream": {}}},
        **errors_for(
            InvalidRequest,
            VALIDATION,
            service.ModelNotFound,
            Unprocessable,
            RATE_LIMITED,
            BODY_LIMIT,
            LLMUnavailableError,
            StoresUnavailable,
            GenerationFailed,
            openai=True,
        ),
    },
)
async def chat_completions(
    request: Request, user: CurrentUser, session: SessionDep, body: CompletionRequest
) -> ChatCompletion | StreamingResponse:
    """OpenAI Chat Completions over an assistant (``model`` = chat id), stateless: the
    client's ``messages`` are the conversation and nothing is stored. Extra top-level
    ``sources``, ``supported`` and ``unsupported`` (the answer's numbers, dates and names
    found in no source) on the completion, or on the chunk with ``finish_reason`` when
    streaming.
    Errors in OpenAI's shape: 400 unsupported or invalid parameters, 404 unknown model, 503
    model or store down (before any byte of a stream), 502 if the model fails mid-answer
    (the last event of a stream)."""
    events = await service.answer_events(
        session=session, owner=user, body=body, runtime=app_state(request).chat
    )
    if not body.stream:
        return await service.completion(events, model=body.model)
    first = await anext(events)  # raises (503) before any byte is sent if the model is down
    return StreamingResponse(
        service.completion_chunks(
            first, events, model=body.model, include_usage=body.include_usage
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
