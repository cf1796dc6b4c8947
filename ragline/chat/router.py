from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ragline.chat import service
from ragline.chat.schemas import MessageRead
from ragline.deps import CurrentUser, SessionDep
from ragline.kit.pagination import Page, PageDep

router = APIRouter(tags=["chat"])


@router.get("/messages/{chat_id}", response_model=Page[MessageRead])
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
