"""Read-only administration: every user's assistants, for the admin role only."""

from __future__ import annotations

from fastapi import APIRouter

from ragline.admin import service
from ragline.admin.schemas import AdminChatRead
from ragline.deps import AdminUser, SessionDep
from ragline.kit.pagination import Page, PageDep
from ragline.kit.responses import SIGNED_IN, VALIDATION, errors_for

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors_for(SIGNED_IN))


@router.get("/chats", response_model=Page[AdminChatRead], responses=errors_for(VALIDATION))
async def list_all_chats(_: AdminUser, session: SessionDep, page: PageDep) -> Page[AdminChatRead]:
    """All users' assistants with their owners, most recently used first (403 without the
    admin app role)."""
    return await service.list_all_chats(session=session, params=page)
