"""/v1/chat/completions is stateless: the client's conversation reaches the model whole
(with the assistant's system prompt and retrieved passages), the client's sampling settings
override the assistant's, and nothing is read from or written to the stored history.
Against a loopback server speaking OpenAI's wire format, which records every request."""

from __future__ import annotations

from typing import Any

import pytest

from ragline.config import Settings
from tests.chat.helpers import FACT, QUESTION, seeded_chat
from tests.fake_providers import CHAT_MODEL, fake_reply, openai_chat_server
from tests.helpers import create_chat, running_app
from tests.openai_api.helpers import ALICE, data_lines, stored_history, streamed_text, via

ARCHIVIST = "You are the museum's archivist."
CONVERSATION = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": "Marta Kowalczyk invented it."},
    {"role": "user", "content": "And in which city?"},
]


@pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)
async def test_the_clients_conversation_reaches_the_model_whole(
    doc_settings: Settings, db: Any
) -> None:
    with openai_chat_server() as model:
        async with running_app(via(doc_settings, model)) as (client, _state):
            chat_id, ids = await seeded_chat(client, "alice")
            await client.put(f"/chats/{chat_id}", json={"context": ARCHIVIST}, headers=ALICE)
            # A stored exchange that the facade must neither read nor extend.
            native = await client.post(
                f"/chats/{chat_id}/chat", json={"text": "What is kept here?"}, headers=ALICE
            )
            assert native.status_code == 200, native.text
            stored = await stored_history(client, chat_id)
            assert len(stored) == 2

            for stream in (False, True):
                before = len(model.requests)
                response = await client.post(
                    "/v1/chat/completions",
                    json={"model": chat_id, "messages": CONVERSATION, "stream": stream},
                    headers=ALICE,
                )
                assert response.status_code == 200, response.text
                rewrite, sent = (request["body"] for request in model.requests[before:])
                # The follow-up is rewritten for retrieval from the client's own turns.
                transcript = rewrite["messages"][-1]["content"]
                assert QUESTION in transcript and "Last question: And in which city?" in transcript
                messages = sent["messages"]
                assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
                assert messages[1:] == CONVERSATION[1:]
                system = messages[0]["content"]
                assert system.startswith(f"{ARCHIVIST}\n\nAnswer in one sentence.\n\n")
                assert "[1] (history.pdf, page 2)" in system and FACT in system
                assert "What is kept here?" not in str(messages)
                reply = "".join(fake_reply(messages))
                if stream:
                    chunks = data_lines(response.text)
                    assert streamed_text(chunks) == reply
                    sources = chunks[-2]["sources"]  # on the chunk with finish_reason
                else:
                    assert response.json()["choices"][0]["message"]["content"] == reply
                    sources = response.json()["sources"]
                assert sources[0]["file_id"] == ids["history.pdf"] and sources[0]["page"] == 2

            assert await stored_history(client, chat_id) == stored


async def test_sampling_parameters_override_the_assistants(settings: Settings, db: Any) -> None:
    with openai_chat_server() as model:
        async with running_app(via(settings, model, llm_max_tokens=100)) as (client, _state):
            chat = await create_chat(client, "alice", temperature=0.3)
            question = [{"role": "user", "content": "Where do herons nest?"}]
            reply = fake_reply(question)  # You asked: Where do herons nest? Here is my answer.

            async def ask(**fields: Any) -> tuple[dict[str, Any], str]:
                """What the model server received, and the answer ragline gave."""
                response = await client.post(
                    "/v1/chat/completions",
                    json={"model": chat["id"], "messages": question, **fields},
                    headers=ALICE,
                )
                assert response.status_code == 200, response.text
                if fields.get("stream"):
                    text = streamed_text(data_lines(response.text))
                else:
                    text = response.json()["choices"][0]["message"]["content"]
                return model.requests[-1]["body"], text

            sent, text = await ask()
            assert (sent["model"], sent["temperature"], sent["max_tokens"]) == (
                CHAT_MODEL,
                0.3,
                100,
            )
            assert "top_p" not in sent and "stop" not in sent and text == "".join(reply)

            sent, text = await ask(max_tokens=3)
            assert sent["max_tokens"] == 3 and text == "".join(reply[:3])
            sent, text = await ask(max_tokens=5000, stream=True)
            assert sent["max_tokens"] == 100  # clamped to LLM_MAX_TOKENS
            sent, _ = await ask(max_tokens=6, max_completion_tokens=4)
            assert sent["max_tokens"] == 4

            sent, text = await ask(temperature=1.1, top_p=0.5, stop="Here")
            assert (sent["temperature"], sent["top_p"], sent["stop"]) == (1.1, 0.5, ["Here"])
            assert text == "You asked: Where do herons nest? "
            sent, text = await ask(temperature=0, stop=["is my", "zz"], stream=True)
            assert (sent["temperature"], sent["stop"]) == (0, ["is my", "zz"])
            assert text == "You asked: Where do herons nest? Here "

            assert await stored_history(client, chat["id"]) == []


async def test_stream_chunks_as_openai_sends_them(settings: Settings, db: Any) -> None:
    with openai_chat_server() as model:
        async with running_app(via(settings, model)) as (client, _state):
            chat = await create_chat(client, "alice")

            async def stream(**fields: Any) -> list[Any]:
                response = await client.post(
                    "/v1/chat/completions",
                    json={"model": chat["id"], "messages": [{"role": "user", "content": "Hi"}]}
                    | {"stream": True, **fields},
                    headers=ALICE,
                )
                assert response.status_code == 200, response.text
                assert response.headers["content-type"].startswith("text/event-stream")
                return data_lines(response.text)

            *chunks, usage, done = await stream(stream_options={"include_usage": True})
            assert done == "[DONE]"
            assert {c["object"] for c in [*chunks, usage]} == {"chat.completion.chunk"}
            assert len({c["id"] for c in [*chunks, usage]}) == 1
            assert chunks[0]["choices"] == [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ]
            pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
            assert pieces == fake_reply(model.requests[-1]["body"]["messages"])
            assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
            assert chunks[-1]["sources"] == []  # the assistant holds no files
            assert all(c["usage"] is None for c in chunks)
            assert usage["choices"] == []
            sent = model.requests[-1]["body"]["messages"]
            prompt_tokens = sum(len(m["content"].split()) for m in sent)  # the server's count
            assert usage["usage"] == {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(pieces),
                "total_tokens": prompt_tokens + len(pieces),
            }

            *chunks, done = await stream()  # no usage asked for: none sent
            assert done == "[DONE]" and all("usage" not in chunk for chunk in chunks)
            assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
            assert await stored_history(client, chat["id"]) == []
