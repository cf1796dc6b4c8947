"""Assistants ("chats"): thin HTTP layer over ``assistants.service``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from ragline.assistants import service
from ragline.assistants.payload import ChatPayload, create_payload, openapi_body, update_payload
from ragline.assistants.schemas import ChatCreate, ChatRead, ChatUpdate
from ragline.deps import CurrentUser, SessionDep
from ragline.errors import (
    AvatarNotFound,
    AvatarTooLarge,
    BadRequest,
    ChatNotFound,
    InvalidAvatar,
    UnsupportedMediaType,
)
from ragline.kit.pagination import Page, PageDep
from ragline.kit.responses import BODY_LIMIT, SIGNED_IN, VALIDATION, errors_for
from ragline.kit.text import SingleLine
from ragline.lifespan import app_state

router = APIRouter(tags=["assistants"], responses=errors_for(SIGNED_IN))
# The JSON or multipart body of POST/PUT /chats: too large JSON (400), neither JSON nor
# multipart (415), an avatar too large (413), not an image (415) or damaged (422).
_PAYLOAD = (
    BadRequest,
    UnsupportedMediaType,
    AvatarTooLarge,
    InvalidAvatar,
    VALIDATION,
    *BODY_LIMIT,
)
_CHAT = errors_for(ChatNotFound, VALIDATION)

SearchQuery = Annotated[
    str, Query(min_length=1, max_length=200, description="Literal text."), SingleLine
]


@router.post(
    "/chats",
    status_code=status.HTTP_201_CREATED,
    response_model=ChatRead,
    openapi_extra=openapi_body(ChatCreate),
    responses=errors_for(_PAYLOAD),
)
async def create_chat(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    payload: Annotated[ChatPayload[ChatCreate], Depends(create_payload)],
) -> ChatRead:
    """422 also for a ``context`` too long for the model's context window."""
    return await service.create_chat(
        session=session,
        owner=user,
        data=payload.data,
        avatar=payload.avatar,
        check_context=app_state(request).chat.check_system_prompt,
    )


@router.get("/chats", response_model=Page[ChatRead], responses=errors_for(VALIDATION))
async def list_chats(user: CurrentUser, session: SessionDep, page: PageDep) -> Page[ChatRead]:
    """The user's assistants, most recently used first."""
    return await service.list_chats(session=session, owner=user, params=page)


@router.get("/chats/search", response_model=Page[ChatRead], responses=errors_for(VALIDATION))
async def search_chats(
    user: CurrentUser, session: SessionDep, page: PageDep, q: SearchQuery
) -> Page[ChatRead]:
    """Case-insensitive literal match on title and description."""
    return await service.search_chats(session=session, owner=user, query=q, params=page)


@router.get("/chats/{chat_id}", response_model=ChatRead, responses=_CHAT)
async def read_chat(user: CurrentUser, session: SessionDep, chat_id: uuid.UUID) -> ChatRead:
    return await service.read_chat(session=session, owner=user, chat_id=chat_id)


@router.put(
    "/chats/{chat_id}",
    response_model=ChatRead,
    openapi_extra=openapi_body(ChatUpdate),
    responses=errors_for(ChatNotFound, _PAYLOAD),
)
async def update_chat(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    chat_id: uuid.UUID,
    payload: Annotated[ChatPayload[ChatUpdate], Depends(update_payload)],
) -> ChatRead:
    """Change the fields given; fields left out keep their value. 422 also for a
    ``context`` too long for the model's context window."""
    return await service.update_chat(
        session=session,
        owner=user,
        chat_id=chat_id,
        data=payload.data,
        avatar=payload.avatar,
        check_context=app_state(request).chat.check_system_prompt,
    )


@router.delete("/chats/{chat_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_CHAT)
async def delete_chat(
    request: Request, user: CurrentUser, session: SessionDep, chat_id: uuid.UUID
) -> Response:
    """Delete the assistant with its files (vectors, keyword rows, stored bytes), messages
    and favourites."""
    await service.delete_chat(
        session=session, owner=user, chat_id=chat_id, documents=app_state(request).documents
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/avatars/{chat_id}",
    response_class=Response,
    responses={
        200: {"content": {"image/webp": {}}, "description": "The avatar image."},
        **errors_for(ChatNotFound, AvatarNotFound, VALIDATION),
    },
)
async def read_avatar(user: CurrentUser, session: SessionDep, chat_id: uuid.UUID) -> Response:
    avatar = await service.read_avatar(session=session, owner=user, chat_id=chat_id)
    return Response(
        content=avatar.content,
        media_type=avatar.mime,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )
