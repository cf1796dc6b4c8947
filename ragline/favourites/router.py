from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from ragline.assistants.schemas import ChatRead
from ragline.deps import CurrentUser, SessionDep
from ragline.favourites import service
from ragline.favourites.schemas import FavouriteRead
from ragline.kit.pagination import Page, PageDep

router = APIRouter(prefix="/favourites", tags=["favourites"])


@router.get("", response_model=Page[ChatRead])
async def list_favourites(user: CurrentUser, session: SessionDep, page: PageDep) -> Page[ChatRead]:
    """The user's favourite assistants, most recently favourited first."""
    return await service.list_favourites(session=session, owner=user, params=page)


@router.get("/{chat_id}", response_model=FavouriteRead)
async def read_favourite(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID
) -> FavouriteRead:
    return await service.read_favourite(session=session, owner=user, chat_id=chat_id)


@router.post(
    "/{chat_id}",
    response_model=FavouriteRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": FavouriteRead, "description": "Already a favourite."}},
)
async def add_favourite(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, response: Response
) -> FavouriteRead:
    favourite, created = await service.add_favourite(session=session, owner=user, chat_id=chat_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return favourite


@router.delete("/{chat_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_favourite(user: CurrentUser, session: SessionDep, chat_id: uuid.UUID) -> Response:
    await service.remove_favourite(session=session, owner=user, chat_id=chat_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
