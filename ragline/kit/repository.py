"""Base repository: every query on owned rows starts from ``scoped()``.

The owner filter is applied here, in one place, so no endpoint can forget it. A row
that belongs to someone else is indistinguishable from a row that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.kit.pagination import PageParams
from ragline.models.base import Base

M = TypeVar("M", bound=Base)


class ScopedRepository(Generic[M]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, *, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    def scoped(self) -> Select[tuple[M]]:
        """All rows of ``model`` that the current user owns."""
        return select(self.model).where(self.model.owner_id == self.owner_id)

    async def get(self, id: uuid.UUID) -> M | None:
        result = await self.session.execute(self.scoped().where(self.model.id == id))
        return result.scalar_one_or_none()

    async def count(self, statement: Select[Any]) -> int:
        total = await self.session.scalar(
            select(func.count()).select_from(statement.order_by(None).subquery())
        )
        return int(total or 0)

    async def page(
        self, statement: Select[Any], params: PageParams
    ) -> tuple[Sequence[Row[Any]], int]:
        """One page of ``statement``'s rows and the total row count."""
        total = await self.count(statement)
        result = await self.session.execute(statement.limit(params.size).offset(params.offset))
        return result.all(), total
