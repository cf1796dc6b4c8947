from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.admin.schemas import AdminChatRead, Owner
from ragline.kit.pagination import Page, PageParams
from ragline.models import Chat, User


async def list_all_chats(*, session: AsyncSession, params: PageParams) -> Page[AdminChatRead]:
    total = await session.scalar(select(func.count()).select_from(Chat)) or 0
    rows = await session.execute(
        select(Chat, User)
        .join(User, User.id == Chat.owner_id)
        .order_by(Chat.last_interacted_at.desc(), Chat.id)
        .offset(params.offset)
        .limit(params.size)
    )
    items = [
        AdminChatRead(
            id=chat.id,
            title=chat.title,
            description=chat.description,
            model=chat.model,
            owner=Owner(id=user.id, tenant_id=user.tenant_id, name=user.name, email=user.email),
            created_at=chat.created_at,
            last_interacted_at=chat.last_interacted_at,
        )
        for chat, user in rows.tuples()
    ]
    return Page.of(items, total=int(total), params=params)
