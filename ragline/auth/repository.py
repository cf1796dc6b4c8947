"""Users: found or created from an authenticated principal."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.auth.identity import Principal
from ragline.models import User
from ragline.models.base import utcnow


async def upsert_user(session: AsyncSession, *, principal: Principal) -> User:
    """The user row for ``principal``; created on first sight, safe under concurrency."""
    key = (User.tenant_id == principal.tenant_id) & (User.subject == principal.subject)
    user = await session.scalar(select(User).where(key))
    if user is not None:
        if (principal.name, principal.email) != (user.name, user.email):
            user.name, user.email = principal.name, principal.email
        return user
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(User).values(
        tenant_id=principal.tenant_id,
        subject=principal.subject,
        name=principal.name,
        email=principal.email,
        created_at=utcnow(),
        last_seen_at=utcnow(),
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["tenant_id", "subject"]))
    return (await session.scalars(select(User).where(key))).one()
