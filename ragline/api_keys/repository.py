from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.kit.repository import ScopedRepository
from ragline.models import ApiKey, User


class ApiKeyRepository(ScopedRepository[ApiKey]):
    model = ApiKey

    def unrevoked(self) -> Select[tuple[ApiKey]]:
        """The user's keys that are not revoked (expired ones included)."""
        return self.scoped().where(ApiKey.revoked_at.is_(None))

    async def get_unrevoked(self, key_id: uuid.UUID) -> ApiKey | None:
        key: ApiKey | None = await self.session.scalar(self.unrevoked().where(ApiKey.id == key_id))
        return key

    async def listing(self) -> Sequence[ApiKey]:
        """Unrevoked keys, newest first."""
        statement = self.unrevoked().order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        return (await self.session.scalars(statement)).all()

    async def count_active(self, now: datetime) -> int:
        """Keys that still work: neither revoked nor expired."""
        statement = self.unrevoked().where(
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)
        )
        return await self.count(statement)

    async def lock_owner(self) -> None:
        """Serialise key creation per user (PostgreSQL row lock until the request commits),
        so concurrent requests cannot pass the per-user limit together. SQLite writers
        are serialised already and the lock is a plain read there."""
        await self.session.execute(
            select(User.id).where(User.id == self.owner_id).with_for_update()
        )


async def find_by_hash(session: AsyncSession, key_hash: str) -> tuple[ApiKey, User] | None:
    """The key with this digest and its owner, revoked or not.

    Not scoped: this is how a caller becomes a user, so there is no owner yet.
    """
    row = (
        await session.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.owner_id)
            .where(ApiKey.key_hash == key_hash)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])
