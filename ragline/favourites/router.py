from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from ragline.assistants.schemas import ChatRead
from ragline.deps import CurrentUser, SessionDep
from ragline.errors import ChatNotFound, FavouriteNotFound
from ragline.favourites import service
from ragline.favourites.schemas import FavouriteRead
from ragline.kit.pagination import Page, PageDep
from ragline.kit.responses import SIGNED_IN, VALIDATION, errors_for

router = APIRouter(prefix="/favourites", tags=["favourites"], responses=errors_for(SIGNED_IN))
_FAVOURITE = errors_for(ChatNotFound, FavouriteNotFound, VALIDATION)


@router.get("", response_model=Page[ChatRead], responses=errors_for(VALIDATION))
async def list_favourites(user: CurrentUser, session: SessionDep, page: PageDep) -> Page[ChatRead]:
    """The user's favourite assistants, most recently favourited first."""
    return await service.list_favourites(session=session, owner=user, params=page)


@router.get("/{chat_id}", response_model=FavouriteRead, responses=_FAVOURITE)
async def read_favourite(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID
) -> FavouriteRead:
    return await service.read_favourite(session=session, owner=user, chat_id=chat_id)


@router.post(
    "/{chat_id}",
    response_model=FavouriteRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": FavouriteRead, "description": "Already a favourite."},
        **errors_for(ChatNotFound, VALIDATION),
    },
)
async def add_favourite(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, response: Response
) -> FavouriteRead:
    favourite, created = await service.add_favourite(session=session, owner=user, chat_id=chat_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return favourite


@router.delete("/{chat_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_FAVOURITE)
async def remove_favourite(user: CurrentUser, session: SessionDep, chat_id: uuid.UUID) -> Response:
    await service.remove_favourite(session=session, owner=user, chat_id=chat_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
