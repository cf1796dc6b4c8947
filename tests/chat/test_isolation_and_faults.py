"""Retrieval never crosses users, even when asked to; providers and stores that fail
give 503 or an `error` event, store an error message, and leave the server up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragline.config import Settings
from tests.chat.helpers import QUESTION, parse_sse, seeded_chat, with_llm_down
from tests.documents.helpers import accepted_ids, upload, wait_final
from tests.helpers import as_user, create_chat, running_app
from tests.services import (
    LLAMA_MODEL_ALIAS,
    chroma_server,
    embedded_env,
    free_port,
    llama_server,
    ragline_server,
    stop_process,
)

ALICE, BOB = as_user("alice"), as_user("bob")
EMBEDDED = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)
SECRET = "Alice's notebook says the password of the vault is Quixotrelium."


@EMBEDDED
async def test_other_users_chunks_never_come_back(doc_settings: Settings, db: Any) -> None:
    settings = doc_settings.model_copy(update={"llm_max_tokens": 4})
    async with running_app(settings) as (client, _state):
        alice_chat = await create_chat(client, "alice", title="a")
        [secret_id] = accepted_ids(
            await upload(client, alice_chat["id"], [("secret.txt", SECRET.encode())])
        )
        bob_chat, bob_ids = await seeded_chat(client, "bob")
        assert (await wait_final(client, alice_chat["id"], secret_id))["status"] == "indexed"

        with_alices_files = {"files": {secret_id: {"queried": True}}}
        for params in ({}, with_alices_files):
            found = await client.post(
                f"/chats/{bob_chat}/search",
                json={"query": "Quixotrelium vault password", "k": 50, "params": params},
                headers=BOB,
            )
            assert found.status_code == 200
            assert secret_id not in {r["file_id"] for r in found.json()["results"]}
            assert all("Quixotrelium" not in r["text"] for r in found.json()["results"])
            answer = await client.post(
                f"/chats/{bob_chat}/chat",
                json={"text": "What is Quixotrelium?", "params": params},
                headers=BOB,
            )
            assert answer.status_code == 200
            assert secret_id not in {s["file_id"] for s in answer.json()["sources"]}
            assert all("Quixotrelium" not in s["snippet"] for s in answer.json()["sources"])
        # Bob cannot even address Alice's assistant.
        crossed = await client.post(
            f"/chats/{alice_chat['id']}/search", json={"query": "Quixotrelium"}, headers=BOB
        )
        assert crossed.status_code == 404
        # Positive control: Alice gets her chunk, by search and as a source.
        mine = await client.post(
            f"/chats/{alice_chat['id']}/chat", json={"text": "What is Quixotrelium?"}, headers=ALICE
        )
        assert mine.json()["sources"][0]["file_id"] == secret_id
        assert bob_ids  # Bob's assistant has files of its own


@EMBEDDED
async def test_llm_down_before_first_token_is_503(doc_settings: Settings, db: Any) -> None:
    settings = with_llm_down(doc_settings)
    async with running_app(settings) as (client, _state):
        chat_id, _ids = await seeded_chat(client, "alice")
        for path in ("chat", "chat/stream"):
            response = await client.post(
                f"/chats/{chat_id}/{path}", json={"text": QUESTION}, headers=ALICE
            )
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"] == "LLMUnavailableError"
        history = (await client.get(f"/messages/{chat_id}", headers=ALICE)).json()["items"]
        assert [(m["role"], m["status"]) for m in history] == [
            ("user", "complete"),
            ("assistant", "error"),
        ] * 2
        assert (await client.get("/healthz")).status_code == 200


async def test_llm_stopped_mid_stream_ends_with_error_event(tmp_path: Path) -> None:
    """Through a real `ragline serve` (an in-process ASGI client would only see the body
    once the whole answer is done) and a real llama.cpp server, killed after one delta."""
    with llama_server() as (url, llm_process):
        env = embedded_env(
            tmp_path / "data",
            free_port(),
            LLM_PROVIDER="openai",
            IONOS_BASE_URL=url,
            IONOS_MODEL=LLAMA_MODEL_ALIAS,
            LLM_MAX_TOKENS="400",
        )
        with ragline_server(tmp_path, env) as (base, _server):
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                chat_id, _ids = await seeded_chat(client, "alice")
                events: list[tuple[str, Any]] = []
                async with client.stream(
                    "POST",
                    f"/chats/{chat_id}/chat/stream",
                    json={"text": "Write a long essay about valves and pumps."},
                    headers=ALICE,
                ) as response:
                    assert response.status_code == 200
                    buffer = ""
                    async for text in response.aiter_text():
                        buffer += text
                        while "\n\n" in buffer:
                            block, buffer = buffer.split("\n\n", 1)
                            events.extend(parse_sse(block))
                            if len(events) == 1:  # the first delta has arrived
                                llm_process.kill()
                names = [name for name, _ in events]
                assert names[0] == "delta" and names[-1] == "error", names
                assert "sources" not in names and "done" not in names
                assert events[-1][1]["error"] == "GenerationFailed"
                history = (await client.get(f"/messages/{chat_id}", headers=ALICE)).json()
                assert [(m["role"], m["status"]) for m in history["items"]] == [
                    ("user", "complete"),
                    ("assistant", "error"),
                ]
                assert (await client.get("/healthz")).status_code == 200


async def test_chroma_server_down_is_503(settings: Settings, db: Any, tmp_path: Any) -> None:
    with chroma_server(tmp_path / "chroma") as (host, port, process):
        update = {
            "chroma_host": host,
            "chroma_port": port,
            "chroma_collection_name": "down-test",
            "llm_max_tokens": 4,
        }
        async with running_app(settings.model_copy(update=update)) as (client, _state):
            chat_id, _ids = await seeded_chat(client, "alice")
            stop_process(process)
            for path, body in (("search", {"query": "valve"}), ("chat", {"text": QUESTION})):
                response = await client.post(f"/chats/{chat_id}/{path}", json=body, headers=ALICE)
                assert response.status_code == 503, response.text
                assert json.loads(response.text)["error"] == "StoresUnavailable"
            assert (await client.get("/healthz")).status_code == 200
