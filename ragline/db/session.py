"""The request-scoped session: the request owns the transaction.

Services only flush; this dependency commits when the endpoint returns and rolls back
when it raises. It is declared with ``scope="function"`` so the commit happens before
the response is sent: a failed commit becomes an error answer, never a false 2xx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.lifespan import app_state


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with app_state(request).sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
