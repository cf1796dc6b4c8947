"""Upload → queue → parse → chunk → embed → Chroma + keyword index, through the real API,
on embedded Chroma and a real Chroma server, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from ragline.models import ChatFile
from ragline.rag.ingest.store import counts, get_chunks
from ragline.rag.ingest.store import stored_chunks as stores_chunks
from tests.documents.helpers import (
    accepted_ids,
    long_text,
    upload,
    wait_final,
    wait_no_purges,
    wait_purged,
)
from tests.helpers import as_user, create_chat, running_app
from tests.rag.ingest import builders

ALICE = as_user("alice")

SAMPLES: dict[str, tuple[bytes, str, str]] = {
    # name: (bytes, kind, a phrase its chunks must contain)
    "notes.txt": (
        b"Plain text about the heron colony.\n\nIt nests by the lake.",
        "document",
        "heron colony",
    ),
    "guide.md": (
        b"# Setup\n\nInstall the widget.\n\n## Usage\n\nRun the widget daily.",
        "document",
        "Run the widget",
    ),
    "page.html": (
        b"<!doctype html><html><head><title>T</title><script>var x=1;</script></head>"
        b"<body><nav>menu</nav><h1>Tides</h1><p>The tide tables for the harbour.</p></body></html>",
        "document",
        "tide tables",
    ),
    "cities.csv": (b"city,country\nLyon,France\nPorto,Portugal\n", "spreadsheet", "Porto"),
    "report.docx": (builders.docx_bytes(), "document", ""),
    "deck.pptx": (builders.pptx_bytes(), "document", "Roadmap"),
    "sheet.xlsx": (
        builders.xlsx_bytes({"Stock": [["item", "qty"], ["bolts", 40]]}),
        "spreadsheet",
        "bolts",
    ),
    "paper.pdf": (
        builders.pdf_bytes(["First page about otters.", "Second page about beavers."]),
        "document",
        "beavers",
    ),
}


async def test_every_format_is_indexed_with_metadata_then_deleted(
    app_client: tuple[httpx.AsyncClient, Any],
) -> None:
    client, state = app_client
    stores = state.documents.stores
    chat = await create_chat(client, "alice", title="formats")
    response = await upload(client, chat["id"], [(n, b) for n, (b, _, _) in SAMPLES.items()])
    ids = dict(zip(SAMPLES, accepted_ids(response), strict=True))

    owner_id = None
    for name, file_id in ids.items():
        body = await wait_final(client, chat["id"], file_id)
        assert body["status"] == "indexed", body
        assert body["kind"] == SAMPLES[name][1]
        assert body["progress"]["done"] == body["progress"]["total"] > 0
        assert body["embedding_model"] and body["embedding_dimension"] == 384
        chunk_ids = stores.vectors.ids(chat["id"], file_id=file_id)
        assert len(chunk_ids) == body["progress"]["total"]
        assert stores.keywords.count(file_id=file_id) == len(chunk_ids)
        chunks = get_chunks(stores, chat["id"], sorted(chunk_ids))
        for chunk in chunks.values():
            meta = chunk["metadata"]
            assert meta["file_id"] == file_id and meta["chat_id"] == chat["id"]
            assert meta["file_name"] == name
            assert 0 <= meta["start_char"] < meta["end_char"]
            owner_id = owner_id or meta["owner_id"]
            assert meta["owner_id"] == owner_id
        phrase = SAMPLES[name][2]
        assert not phrase or any(phrase in c["text"] for c in chunks.values()), (name, chunks)

    pdf_pages = {
        c["metadata"]["page"]: c["text"]
        for c in get_chunks(
            stores, chat["id"], sorted(stores.vectors.ids(chat["id"], file_id=ids["paper.pdf"]))
        ).values()
    }
    assert "beavers" in pdf_pages[2] and "otters" in pdf_pages[1]
    html_text = " ".join(
        c["text"]
        for c in get_chunks(
            stores, chat["id"], sorted(stores.vectors.ids(chat["id"], file_id=ids["page.html"]))
        ).values()
    )
    assert "var x" not in html_text

    listed = (await client.get(f"/chats/{chat['id']}/files", headers=ALICE)).json()
    assert listed["total"] == len(SAMPLES)

    pdf_id = ids["paper.pdf"]
    deleted = await client.delete(f"/chats/{chat['id']}/files/{pdf_id}", headers=ALICE)
    assert deleted.status_code == 204
    assert (
        await client.get(f"/chats/{chat['id']}/files/{pdf_id}", headers=ALICE)
    ).status_code == 404
    await wait_purged(stores, file_id=pdf_id)
    await wait_no_purges(state)
    assert counts(stores, file_id=ids["notes.txt"])["vectors"] > 0  # others untouched

    blobs = list((state.settings.ragline_data_dir / "files" / "objects").rglob("*"))
    assert len([b for b in blobs if b.is_file()]) == len(SAMPLES) - 1
    assert (await client.delete(f"/chats/{chat['id']}", headers=ALICE)).status_code == 204
    await wait_purged(stores, chat_id=chat["id"])
    await wait_no_purges(state)
    assert not [
        b for b in (state.settings.ragline_data_dir / "files" / "objects").rglob("*") if b.is_file()
    ]


async def test_same_bytes_twice_is_a_duplicate(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, state = app_client
    chat = await create_chat(client, "alice", title="dedup")
    content = long_text(6).encode()
    [first] = accepted_ids(await upload(client, chat["id"], [("a.txt", content)]))
    await wait_final(client, chat["id"], first)
    vectors = state.documents.stores.vectors.count(chat_id=chat["id"])

    again = await upload(
        client, chat["id"], [("renamed.txt", content), ("b.txt", b"Something else entirely.")]
    )
    assert again.status_code == 202
    results = again.json()["files"]
    assert results[0] == {
        "name": "renamed.txt",
        "status": "duplicate",
        "file_id": first,
        "duplicate_of": first,
        "reason": None,
    }
    assert results[1]["status"] == "accepted"
    await wait_final(client, chat["id"], results[1]["file_id"])
    assert state.documents.stores.vectors.count(file_id=first) == vectors
    listed = (await client.get(f"/chats/{chat['id']}/files", headers=ALICE)).json()
    assert listed["total"] == 2

    other_chat = await create_chat(client, "alice", title="another assistant")
    elsewhere = await upload(client, other_chat["id"], [("a.txt", content)])
    assert elsewhere.json()["files"][0]["status"] == "accepted"  # dedup is per assistant


async def test_replace_reembeds_only_changed_chunks(
    app_client: tuple[httpx.AsyncClient, Any],
) -> None:
    client, state = app_client
    stores = state.documents.stores
    vectors = stores.vectors
    chat = await create_chat(client, "alice", title="versions")
    paragraphs = long_text(60).split("\n\n")
    [file_id] = accepted_ids(
        await upload(client, chat["id"], [("book.txt", "\n\n".join(paragraphs).encode())])
    )
    first = await wait_final(client, chat["id"], file_id)
    assert first["status"] == "indexed" and first["progress"]["total"] >= 50
    before = vectors.ids(chat["id"], file_id=file_id)
    texts_before = {i: c["text"] for i, c in get_chunks(stores, chat["id"], sorted(before)).items()}

    middle = len(paragraphs) // 2
    paragraphs[middle] = "This paragraph was rewritten completely: herons, not rivers."
    replaced = await client.put(
        f"/chats/{chat['id']}/files/{file_id}",
        files={"file": ("book.txt", "\n\n".join(paragraphs).encode(), "text/plain")},
        headers=ALICE,
    )
    assert replaced.status_code == 202, replaced.text
    assert replaced.json()["version"] == 2
    second = await wait_final(client, chat["id"], file_id)
    assert second["status"] == "indexed"

    after = vectors.ids(chat["id"], file_id=file_id)
    kept, new, gone = before & after, after - before, before - after
    assert len(after) == second["progress"]["total"]
    assert len(new) <= 2 and len(gone) <= 2, (len(new), len(gone))
    assert len(kept) >= len(before) - 2
    assert any("herons, not rivers" in get_chunks(stores, chat["id"], [i])[i]["text"] for i in new)
    assert all(get_chunks(stores, chat["id"], [i])[i]["text"] == texts_before[i] for i in kept)
    assert state.documents.stores.keywords.count(file_id=file_id) == len(after)
    # Kept chunks after the edit moved (the rewrite is shorter): their offsets were refreshed;
    # those before it did not move and were left alone. Every citation points at its text.
    new_text = "\n\n".join(paragraphs)
    for chunk in get_chunks(stores, chat["id"], sorted(after)).values():
        meta = chunk["metadata"]
        assert new_text[meta["start_char"] : meta["end_char"]] == chunk["text"]

    same = await client.put(
        f"/chats/{chat['id']}/files/{file_id}",
        files={"file": ("book.txt", "\n\n".join(paragraphs).encode(), "text/plain")},
        headers=ALICE,
    )
    assert same.status_code == 200 and same.json()["version"] == 2  # unchanged bytes: no job


@pytest.mark.parametrize("lost", ["vectors", "keyword rows"])
async def test_replace_after_a_crashed_run_diffs_against_the_vector_store(
    app_client: tuple[httpx.AsyncClient, Any], lost: str
) -> None:
    """A finished job leaves the file settled, and its re-ingest diffs against the keyword
    index; after a run that died mid-way, against the vector store. Here one store lost the
    file's chunks: its vectors (a run killed between the two deletes), or its keyword rows
    (deleted first by earlier versions). The replace must embed every chunk again and end
    with both stores holding the same chunks, not keep chunks that lack a vector or a row."""
    client, state = app_client
    stores = state.documents.stores
    chat = await create_chat(client, "alice", title="crashed")
    text = long_text(12)
    [file_id] = accepted_ids(await upload(client, chat["id"], [("a.txt", text.encode())]))
    assert (await wait_final(client, chat["id"], file_id))["status"] == "indexed"
    async with state.sessionmaker() as session:
        file = await session.get(ChatFile, uuid.UUID(file_id))
        assert file is not None and file.chunks_settled
        ids = sorted(stores.vectors.ids(chat["id"], file_id=file_id))
        settled = stores_chunks(stores, chat_id=chat["id"], file_id=file_id, settled=True)
        assert settled == stores_chunks(stores, chat_id=chat["id"], file_id=file_id, settled=False)
        assert sorted(settled) == ids
        # Chroma keeps only what it filters on; citation metadata is the keyword index's.
        kept = stores.vectors.metadata(chat["id"], ids).values()
        assert {tuple(sorted(meta)) for meta in kept} == {("chat_id", "file_id", "owner_id")}

        if lost == "vectors":
            stores.vectors.delete_ids(chat["id"], ids)
        else:
            stores.keywords.delete_file(file_id)
        file.chunks_settled = False
        await session.commit()
    unsettled = stores_chunks(stores, chat_id=chat["id"], file_id=file_id, settled=False)
    assert all(meta == {} for meta in unsettled.values())  # nothing counts as kept

    replaced = await client.put(
        f"/chats/{chat['id']}/files/{file_id}",
        files={"file": ("a.txt", (text + "\n\nOne more paragraph.").encode(), "text/plain")},
        headers=ALICE,
    )
    assert replaced.status_code == 202, replaced.text
    second = await wait_final(client, chat["id"], file_id)
    assert second["status"] == "indexed"
    after = stores.vectors.ids(chat["id"], file_id=file_id)
    assert set(stores.keywords.file_chunks(file_id=file_id)) == after
    assert len(after) == second["progress"]["total"]
    assert len(after & set(ids)) >= len(ids) - 1  # same chunks, embedded again
    new_text = text + "\n\nOne more paragraph."
    for chunk in get_chunks(stores, chat["id"], sorted(after)).values():
        meta = chunk["metadata"]
        assert new_text[meta["start_char"] : meta["end_char"]] == chunk["text"]


async def test_other_users_files_are_not_found(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, _ = app_client
    chat = await create_chat(client, "alice", title="private")
    [file_id] = accepted_ids(await upload(client, chat["id"], [("a.txt", b"Alice's secret plan.")]))
    await wait_final(client, chat["id"], file_id)
    bob = as_user("bob")
    for method, path in [
        ("GET", f"/chats/{chat['id']}/files"),
        ("GET", f"/chats/{chat['id']}/files/{file_id}"),
        ("DELETE", f"/chats/{chat['id']}/files/{file_id}"),
    ]:
        response = await client.request(method, path, headers=bob)
        assert response.status_code == 404, (method, path, response.text)
        assert 200 <= (await client.request(method, path, headers=ALICE)).status_code < 300
    response = await upload(client, chat["id"], [("x.txt", b"bob was here")], user="bob")
    assert response.status_code == 404
    unknown = await client.get(f"/chats/{chat['id']}/files/{uuid.uuid4()}", headers=ALICE)
    assert unknown.status_code == 404 and unknown.json()["error"] == "FileNotFound"


@pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)
async def test_failed_provider_is_retried_then_failed(
    doc_settings: Any, db: Any, tmp_path: Any
) -> None:
    """Embeddings from a server that answers errors: attempts with backoff, then `failed`;
    from one that is down (nothing listens): no attempt spent, the file waits, `queued`,
    saying what for (docs/architecture.md, "Faults")."""

    from ragline.config import Provider
    from tests.fake_providers import FakeProvider, JsonHandler, _serving
    from tests.services import free_port

    class Failing(JsonHandler):
        def do_POST(self) -> None:  # http.server's naming
            self._answer(500, {"error": "model crashed"})

    failing = FakeProvider(url="")
    with _serving(Failing, failing):
        broken, down = (
            doc_settings.model_copy(
                update={
                    "embed_provider": Provider.OLLAMA,
                    "ollama_port": port,
                    "ollama_embed_model": "nomic-embed-text",
                    "ingest_max_attempts": 3,
                }
            )
            for port in (int(failing.url.rsplit(":", 1)[1]), free_port())
        )
        async with running_app(broken) as (client, _state):
            chat = await create_chat(client, "alice", title="broken")
            [file_id] = accepted_ids(
                await upload(client, chat["id"], [("a.txt", b"Some text to embed.")])
            )
            body = await wait_final(client, chat["id"], file_id, limit_s=60)
    assert body["status"] == "failed"
    assert "gave up after 3 attempts" in body["error"]
    assert "answered 500" in body["error"]

    async with running_app(down) as (client, _state):
        chat = await create_chat(client, "alice", title="down")
        [file_id] = accepted_ids(
            await upload(client, chat["id"], [("b.txt", b"Other text to embed.")])
        )
        for _ in range(600):
            path = f"/chats/{chat['id']}/files/{file_id}"
            body = (await client.get(path, headers=ALICE)).json()
            if body["error"]:
                break
            await asyncio.sleep(0.1)
    assert body["status"] in ("queued", "parsing", "embedding"), body  # never failed
    assert body["error"].startswith("waiting for the service to come back"), body
    assert "unreachable" in body["error"]
