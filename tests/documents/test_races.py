"""Replace or delete a file while its ingestion is running: no orphan vectors, ever."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from ragline.config import Settings
from ragline.rag.ingest.store import counts, get_chunks
from tests.documents.helpers import accepted_ids, long_text, upload, wait_final
from tests.helpers import as_user, create_chat, running_app

ALICE = as_user("alice")
pytestmark = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)


def _slow(doc_settings: Settings) -> Settings:
    """Small embedding batches, so a big file stays in `embedding` for a while."""
    return doc_settings.model_copy(update={"embed_batch_size": 4})


async def _big_file_mid_ingestion(client: httpx.AsyncClient) -> tuple[str, str]:
    """(chat id, file id) of a large file whose ingestion has stored a few chunks."""
    chat = await create_chat(client, "alice", title="race")
    [file_id] = accepted_ids(await upload(client, chat["id"], [("a.txt", long_text(600).encode())]))
    await _until_embedding(client, chat["id"], file_id)
    return chat["id"], file_id


async def _until_embedding(client: httpx.AsyncClient, chat_id: str, file_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        body = (await client.get(f"/chats/{chat_id}/files/{file_id}", headers=ALICE)).json()
        if body["status"] == "embedding" and body["progress"]["done"] >= 4:
            return
        assert body["status"] not in ("indexed", "failed"), body
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_replace_while_ingesting(doc_settings: Settings, db: Any) -> None:
    async with running_app(_slow(doc_settings)) as (client, state):
        chat_id, file_id = await _big_file_mid_ingestion(client)
        second = long_text(5, marker="second version")
        replaced = await client.put(
            f"/chats/{chat_id}/files/{file_id}",
            files={"file": ("a.txt", second.encode(), "text/plain")},
            headers=ALICE,
        )
        assert replaced.status_code == 202
        final = await wait_final(client, chat_id, file_id)
        await asyncio.sleep(1.0)  # let anything still in flight land
        stores = state.documents.stores
        chunks = get_chunks(stores, chat_id, sorted(stores.vectors.ids(chat_id, file_id=file_id)))
        keyword_rows = stores.keywords.count(file_id=file_id)
    assert final["status"] == "indexed" and final["version"] == 2
    assert len(chunks) == final["progress"]["total"]
    assert all(chunk["text"] in second for chunk in chunks.values())  # nothing of v1 left
    assert keyword_rows == len(chunks)


async def test_delete_while_ingesting(doc_settings: Settings, db: Any) -> None:
    async with running_app(_slow(doc_settings)) as (client, state):
        chat_id, file_id = await _big_file_mid_ingestion(client)
        deleted = await client.delete(f"/chats/{chat_id}/files/{file_id}", headers=ALICE)
        assert deleted.status_code == 204
        stores = state.documents.stores
        deadline = time.monotonic() + 30
        while stores.vectors.count(file_id=file_id) or stores.keywords.count(file_id=file_id):
            assert time.monotonic() < deadline, counts(stores, file_id=file_id)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # the job notices at its next write and cleans up after
        assert counts(stores, file_id=file_id) == {"vectors": 0, "keywords": 0}
