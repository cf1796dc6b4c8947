from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, func, select

from ragline.kit.repository import ScopedRepository
from ragline.models import ChatFile


class FileRepository(ScopedRepository[ChatFile]):
    model = ChatFile

    def in_chat(self, chat_id: uuid.UUID) -> Select[tuple[ChatFile]]:
        return (
            self.scoped()
            .where(ChatFile.chat_id == chat_id)
            .order_by(ChatFile.created_at.desc(), ChatFile.id.desc())
        )

    async def in_chat_by_id(self, chat_id: uuid.UUID, file_id: uuid.UUID) -> ChatFile | None:
        found: ChatFile | None = await self.session.scalar(
            self.scoped().where(ChatFile.chat_id == chat_id, ChatFile.id == file_id)
        )
        return found

    async def by_sha(self, chat_id: uuid.UUID, sha256: str) -> ChatFile | None:
        found: ChatFile | None = await self.session.scalar(
            self.scoped().where(ChatFile.chat_id == chat_id, ChatFile.sha256 == sha256)
        )
        return found

    async def by_shas(self, chat_id: uuid.UUID, hashes: Sequence[str]) -> dict[str, ChatFile]:
        if not hashes:
            return {}
        found = await self.session.scalars(
            self.scoped().where(ChatFile.chat_id == chat_id, ChatFile.sha256.in_(set(hashes)))
        )
        return {file.sha256: file for file in found}

    async def status_counts(self, chat_id: uuid.UUID) -> dict[str, tuple[int, int, int]]:
        """Per status: files, chunks done, chunks total."""
        rows = await self.session.execute(
            select(
                ChatFile.status,
                func.count(),
                func.coalesce(func.sum(ChatFile.chunks_done), 0),
                func.coalesce(func.sum(ChatFile.chunks_total), 0),
            )
            .where(ChatFile.owner_id == self.owner_id, ChatFile.chat_id == chat_id)
            .group_by(ChatFile.status)
        )
        return {str(row[0]): (int(row[1]), int(row[2]), int(row[3])) for row in rows}

    async def all_in_chat(self, chat_id: uuid.UUID) -> list[ChatFile]:
        return list((await self.session.scalars(self.in_chat(chat_id))).all())
