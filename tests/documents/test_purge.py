"""Deletes answer at once; a queued purge removes the chunks and bytes, and a purge whose
message was lost (crash between the commit and the queue) is re-sent at start-up."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import delete

from ragline.config import Settings
from ragline.models import ChatFile, FilePurge
from ragline.rag.ingest.store import counts
from tests.documents.helpers import (
    accepted_ids,
    long_text,
    upload,
    wait_final,
    wait_no_purges,
    wait_purged,
)
from tests.helpers import as_user, create_chat, running_app

ALICE = as_user("alice")
pytestmark = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)


async def test_lost_purge_message_is_resent_at_start_up(doc_settings: Settings, db: Any) -> None:
    async with running_app(doc_settings) as (client, state):
        chat = await create_chat(client, "alice", title="purge")
        [file_id] = accepted_ids(
            await upload(client, chat["id"], [("a.txt", long_text(20).encode())])
        )
        assert (await wait_final(client, chat["id"], file_id))["status"] == "indexed"
        assert counts(state.documents.stores, file_id=file_id)["vectors"] > 0
        # What DELETE commits, without sending the purge message (as if the process died).
        async with state.sessionmaker() as session:
            file = await session.get(ChatFile, uuid.UUID(file_id))
            assert file is not None
            session.add(
                FilePurge(file_id=file.id, chat_id=file.chat_id, storage_key=file.storage_key)
            )
            await session.execute(delete(ChatFile).where(ChatFile.id == file.id))
            await session.commit()
            blob = state.documents.storage.path(file.storage_key)
        assert blob.exists()
        listed = (await client.get(f"/chats/{chat['id']}/files", headers=ALICE)).json()
        assert listed["total"] == 0
        assert counts(state.documents.stores, file_id=file_id)["vectors"] > 0  # not purged

    async with running_app(doc_settings) as (_client, state):
        await wait_purged(state.documents.stores, file_id=file_id)
        await wait_no_purges(state)
        assert not blob.exists()
