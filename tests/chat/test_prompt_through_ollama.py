"""The `ollama` provider through the whole answer path, against a loopback server speaking
Ollama's `/api/chat` wire format (no Ollama server can be installed here). Its answer is
deterministic, so the test can check exactly what ragline sent and streamed: the prompt
(system prompt, numbered passages with file and page, history, question), the chat's
temperature and model, and the follow-up rewrite."""

from __future__ import annotations

from typing import Any

import pytest

from ragline.config import Provider, Settings
from tests.chat.helpers import FACT, QUESTION, parse_sse, seeded_chat
from tests.fake_providers import CHAT_MODEL, fake_reply, ollama_chat_server
from tests.helpers import as_user, running_app

ALICE = as_user("alice")
pytestmark = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)


async def test_prompt_sources_and_memory_through_ollama(doc_settings: Settings, db: Any) -> None:
    with ollama_chat_server(models=(CHAT_MODEL, "mistral")) as ollama:
        host, port = ollama.url.removeprefix("http://").split(":")
        settings = doc_settings.model_copy(
            update={
                "llm_provider": Provider.OLLAMA,
                "ollama_host": host,
                "ollama_port": int(port),
                "ollama_model": CHAT_MODEL,
                "llm_max_tokens": 100,
            }
        )
        async with running_app(settings) as (client, _state):
            chat_id, ids = await seeded_chat(client, "alice")
            await client.put(
                f"/chats/{chat_id}",
                json={"context": "You are the museum's archivist.", "temperature": 0.3},
                headers=ALICE,
            )
            response = await client.post(
                f"/chats/{chat_id}/chat/stream", json={"text": QUESTION}, headers=ALICE
            )
            events = parse_sse(response.text)
            deltas = [data["text"] for name, data in events if name == "delta"]
            sent = ollama.requests[-1]["body"]
            assert deltas == fake_reply(sent["messages"])  # streamed piece by piece
            assert sent["model"] == CHAT_MODEL and sent["stream"] is True
            assert sent["options"] == {"temperature": 0.3, "num_predict": 100}
            system, question = sent["messages"][0], sent["messages"][-1]
            assert [m["role"] for m in sent["messages"]] == ["system", "user"]
            assert question == {"role": "user", "content": QUESTION}
            assert system["content"].startswith("You are the museum's archivist.")
            assert "[1] (history.pdf, page 2)" in system["content"] and FACT in system["content"]
            sources = events[-2][1]["sources"]
            assert sources[0]["file_id"] == ids["history.pdf"] and sources[0]["page"] == 2

            # Second turn: the follow-up is rewritten first, then answered with the history.
            await client.put(f"/chats/{chat_id}", json={"model": "mistral"}, headers=ALICE)
            before = len(ollama.requests)
            follow = await client.post(
                f"/chats/{chat_id}/chat", json={"text": "And when?"}, headers=ALICE
            )
            assert follow.status_code == 200, follow.text
            rewrite, answer = (r["body"] for r in ollama.requests[before:])
            assert rewrite["options"]["temperature"] == 0.0
            assert "Last question: And when?" in rewrite["messages"][-1]["content"]
            assert answer["model"] == "mistral"  # the chat's own model
            roles = [m["role"] for m in answer["messages"]]
            assert roles == ["system", "user", "assistant", "user"]
            assert answer["messages"][1]["content"] == QUESTION
            assert answer["messages"][2]["content"] == "".join(deltas)
            assert follow.json()["text"] == "".join(fake_reply(answer["messages"]))
