"""Every answer says whether its numbers, dates and names are in its sources: the JSON
answer, the SSE ``done`` event, /v1 (whole and streamed) and the stored message, with the
spans of the claims that are not. The loopback model answers what each test chooses."""

from __future__ import annotations

from typing import Any

import pytest

from ragline.config import Settings
from tests.chat.helpers import QUESTION, parse_sse, seeded_chat
from tests.fake_providers import fake_reply, openai_chat_server
from tests.helpers import running_app
from tests.openai_api.helpers import ALICE, data_lines, stored_history, streamed_text, via

GROUNDED = "Marta Kowalczyk invented it in Gdansk in 1931 [1]."
ASKED = "When was the valve first sold?"
INVENTED = "It was first sold in 1932 by Jan Nowak [1]."
CLAIMS = [
    {"text": "1932", "start": 21, "end": 25},
    {"text": "Jan Nowak", "start": 29, "end": 38},
]
ANSWERS = {QUESTION: GROUNDED, ASKED: INVENTED}


def reply(messages: list[dict[str, Any]]) -> list[str]:
    """The chosen answer to a known question (one piece a word); otherwise the usual fake
    reply (a follow-up's rewrite, for one)."""
    question = messages[-1]["content"]
    if question not in ANSWERS:
        return fake_reply(messages)
    first, *rest = ANSWERS[question].split(" ")
    return [first, *(f" {word}" for word in rest)]


@pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)
async def test_answers_say_which_claims_their_sources_support(
    doc_settings: Settings, db: Any
) -> None:
    assert [INVENTED[c["start"] : c["end"]] for c in CLAIMS] == [c["text"] for c in CLAIMS]
    with openai_chat_server(reply=reply) as model:
        async with running_app(via(doc_settings, model)) as (client, _state):
            chat_id, _ids = await seeded_chat(client, "alice")

            grounded = await client.post(
                f"/chats/{chat_id}/chat", json={"text": QUESTION}, headers=ALICE
            )
            assert grounded.status_code == 200, grounded.text
            body = grounded.json()
            assert body["text"] == GROUNDED
            assert (body["supported"], body["unsupported"]) == (True, [])

            invented = await client.post(
                f"/chats/{chat_id}/chat", json={"text": ASKED}, headers=ALICE
            )
            assert invented.json()["text"] == INVENTED
            assert (invented.json()["supported"], invented.json()["unsupported"]) == (
                False,
                CLAIMS,
            )

            streamed = await client.post(
                f"/chats/{chat_id}/chat/stream", json={"text": ASKED}, headers=ALICE
            )
            events = parse_sse(streamed.text)
            assert "".join(data["text"] for name, data in events if name == "delta") == INVENTED
            done_name, done = events[-1]
            assert done_name == "done" and set(done) == {"message_id", "supported", "unsupported"}
            assert (done["supported"], done["unsupported"]) == (False, CLAIMS)

            history = await stored_history(client, chat_id)
            assert [(m["role"], m["supported"], m["unsupported"]) for m in history] == [
                ("user", None, []),
                ("assistant", True, []),
                ("user", None, []),
                ("assistant", False, CLAIMS),
                ("user", None, []),
                ("assistant", False, CLAIMS),
            ]
            assert history[-1]["id"] == done["message_id"]

            for stream in (False, True):
                response = await client.post(
                    "/v1/chat/completions",
                    json={
                        "model": chat_id,
                        "messages": [{"role": "user", "content": ASKED}],
                        "stream": stream,
                    },
                    headers=ALICE,
                )
                assert response.status_code == 200, response.text
                if stream:
                    chunks = data_lines(response.text)
                    assert streamed_text(chunks) == INVENTED
                    finish = chunks[-2]  # the chunk with finish_reason and sources
                    assert finish["choices"][0]["finish_reason"] == "stop" and finish["sources"]
                    assert all("supported" not in chunk for chunk in chunks[:-2])
                else:
                    finish = response.json()
                assert (finish["supported"], finish["unsupported"]) == (False, CLAIMS)

            schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
            for name in ("ChatAnswer", "MessageRead", "ChatCompletion"):
                assert {"supported", "unsupported"} <= set(schemas[name]["properties"]), name
            assert set(schemas["UnsupportedClaim"]["properties"]) == {"text", "start", "end"}
