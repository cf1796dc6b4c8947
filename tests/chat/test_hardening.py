"""Chats under a crowd and under long input (issue 16, findings 1, 2 and 6): no database
connection is held while the model writes, a user's answers in progress are capped (429),
prompts are fitted to the model's window (422 when the question cannot fit), and a client
that leaves mid-stream keeps the text it was sent (status ``aborted``)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragline.config import Settings
from tests.chat.helpers import parse_sse
from tests.fake_providers import CHAT_MODEL, openai_chat_server
from tests.helpers import as_user, create_chat, running_app
from tests.openai_api.helpers import via
from tests.services import embedded_env, free_port, ragline_server

ALICE, BOB = as_user("alice"), as_user("bob")
LONG_QUESTION = ("Which of the valves described in the pump manuals was made first? " * 300)[
    :19_600
]


class HeldModel:
    """The fake OpenAI model holds every stream before its ``at``-th piece until released,
    counting the streams it holds: a deliberately slow model, without sleeping."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.release = threading.Event()
        self.held = 0
        self._lock = threading.Lock()

    def __enter__(self) -> HeldModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # a failed test must not leave the server's threads waiting

    def before_piece(self, n: int) -> None:
        if n == self.at:
            with self._lock:
                self.held += 1
            assert self.release.wait(timeout=120), "the test never released the model"


async def _until(condition: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 90
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_a_crowd_of_chats_holds_no_connection_and_others_get_through(
    settings: Settings, db: Any
) -> None:
    """50 chats at once from one user while the model is held: the first
    CHAT_MAX_CONCURRENT_PER_USER wait for the model, the others answer 429 at once; another
    user meanwhile lists, creates and reads assistants (the pool has 2 + 2 connections);
    once the model goes on, the held ones answer 200. Never a 5xx."""
    held = HeldModel(at=1)
    with openai_chat_server(before_piece=held.before_piece) as model, held:
        app_settings = via(settings, model, db_pool_size=2, db_pool_timeout_seconds=10.0)
        cap = app_settings.chat_max_concurrent_per_user
        async with running_app(app_settings) as (client, _state):
            chat = await create_chat(client, "alice", title="crowd")

            async def ask(n: int) -> httpx.Response:
                return await client.post(
                    f"/chats/{chat['id']}/chat", json={"text": f"Question {n}?"}, headers=ALICE
                )

            tasks = [asyncio.create_task(ask(n)) for n in range(50)]
            await _until(lambda: sum(t.done() for t in tasks) >= 50 - cap, "refusals")
            await _until(lambda: held.held >= cap, "the model holding the admitted chats")

            listed = await asyncio.wait_for(client.get("/chats", headers=BOB), 20)
            created = await asyncio.wait_for(
                client.post("/chats", json={"title": "bob's"}, headers=BOB), 20
            )
            read = await asyncio.wait_for(
                client.get(f"/chats/{created.json()['id']}", headers=BOB), 20
            )
            assert (listed.status_code, created.status_code, read.status_code) == (200, 201, 200)
            refused = [t.result() for t in tasks if t.done()]
            assert {r.status_code for r in refused} == {429}
            assert refused[0].json()["error"] == "TooManyAnswers"
            assert refused[0].headers["Retry-After"] == "1"

            held.release.set()
            answers = await asyncio.gather(*tasks)
            assert Counter(r.status_code for r in answers) == {200: cap, 429: 50 - cap}
            assert len(model.requests) == cap
            history = await client.get(f"/messages/{chat['id']}", headers=ALICE)
            assert history.json()["total"] == 2 * cap  # the refused ones stored nothing


async def test_a_question_too_long_for_the_window_answers_422_and_stores_nothing(
    settings: Settings, db: Any
) -> None:
    with openai_chat_server() as model:
        async with running_app(via(settings, model)) as (client, _state):
            chat = await create_chat(client, "alice", title="long")
            body = {"text": LONG_QUESTION}
            native = await client.post(f"/chats/{chat['id']}/chat", json=body, headers=ALICE)
            stream = await client.post(f"/chats/{chat['id']}/chat/stream", json=body, headers=ALICE)
            facade = await client.post(
                "/v1/chat/completions",
                json={"model": chat["id"], "messages": [{"role": "user", "content": body["text"]}]},
                headers=ALICE,
            )
            for response in (native, stream, facade):
                assert response.status_code == 422, response.text
                assert "context window" in response.text
            assert native.json()["error"] == "QuestionTooLong"
            assert facade.json()["error"]["code"] == "context_length_exceeded"
            assert model.requests == []
            history = await client.get(f"/messages/{chat['id']}", headers=ALICE)
            assert history.json()["total"] == 0

            fits = await client.post(
                f"/chats/{chat['id']}/chat", json={"text": LONG_QUESTION[:4000]}, headers=ALICE
            )
            assert fits.status_code == 200, fits.text


async def test_an_assistant_context_the_window_cannot_hold_is_refused(
    settings: Settings, db: Any
) -> None:
    long_context = ("You are a careful assistant for the pump manuals. " * 400)[:20_000]
    async with running_app(settings) as (client, _state):
        made = await client.post(
            "/chats", json={"title": "t", "context": long_context}, headers=ALICE
        )
        assert made.status_code == 422, made.text
        assert "LLM_CONTEXT_TOKENS" in made.text
        chat = await create_chat(client, "alice", title="t", context=long_context[:2000])
        changed = await client.put(
            f"/chats/{chat['id']}", json={"context": long_context}, headers=ALICE
        )
        assert changed.status_code == 422, changed.text
        kept = await client.get(f"/chats/{chat['id']}", headers=ALICE)
        assert kept.json()["context"] == long_context[:2000]
        listed = await client.get("/chats", headers=ALICE)
        assert listed.json()["total"] == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_prompt_is_fitted_to_a_real_model_window(
    settings: Settings, db: Any, llm_server: str
) -> None:
    """llama.cpp's server (2,048-token window, its own tokenizer) is given five long
    passages and a long question: passages are left out until the prompt fits, instead of
    the server refusing it."""
    update = {
        "llm_provider": "openai",
        "ionos_base_url": llm_server,
        "ionos_model": "SmolLM2-135M-Instruct",
        "llm_context_tokens": 2048,
        "llm_max_tokens": 8,
        "retrieval_top_k": 5,
        "rate_limit_chat": "",
    }
    from tests.documents.helpers import accepted_ids, upload, wait_final

    async with running_app(settings.model_copy(update=update)) as (client, _state):
        chat = await create_chat(client, "alice", title="pumps", temperature=0.0)
        files = [
            (
                f"pump{n}.txt",
                (f"Pump {n} moves water through the valve of station {n}. " * 60).encode(),
            )
            for n in range(5)
        ]
        for file_id in accepted_ids(await upload(client, chat["id"], files)):
            assert (await wait_final(client, chat["id"], file_id))["status"] == "indexed"
        question = "Which pump moves water through the valve of which station? " * 70
        answer = await client.post(
            f"/chats/{chat['id']}/chat", json={"text": question}, headers=ALICE
        )
        assert answer.status_code == 200, answer.text
        assert 1 <= len(answer.json()["sources"]) < 5
        assert answer.json()["usage"]["prompt_tokens"] + 8 <= 2048


def test_a_client_that_leaves_mid_stream_keeps_the_text_it_was_sent(tmp_path: Path) -> None:
    """A real `ragline serve`: the client reads two pieces of a streamed answer and hangs
    up while the model is held; the exchange is stored as ``aborted`` with those pieces."""
    held = HeldModel(at=3)
    with openai_chat_server(before_piece=held.before_piece) as model, held:
        env = embedded_env(
            tmp_path / "data",
            free_port(),
            LLM_PROVIDER="openai",
            IONOS_BASE_URL=f"{model.url}/v1",
            IONOS_MODEL=CHAT_MODEL,
        )
        with (
            ragline_server(tmp_path, env) as (base, _process),
            httpx.Client(base_url=base, timeout=60) as c,
        ):
            chat = c.post("/chats", json={"title": "left"}, headers=ALICE).json()
            received: list[str] = []
            with c.stream(
                "POST", f"/chats/{chat['id']}/chat/stream", json={"text": "Why?"}, headers=ALICE
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data: ") and len(received) < 2:
                        [(_, data)] = parse_sse(f"event: delta\n{line}")
                        received.append(data["text"])
                    if len(received) == 2:
                        break
            assert received == ["You", " asked:"]

            def stored() -> list[dict[str, Any]]:
                page = c.get(f"/messages/{chat['id']}", headers=ALICE).json()
                return page["items"]  # type: ignore[no-any-return]

            # stored while the model is still held: the server noticed the client leave
            deadline = 60.0
            while len(stored()) < 2 and deadline > 0:
                threading.Event().wait(0.2)
                deadline -= 0.2
            held.release.set()
            question, answer = stored()
            assert (question["role"], question["text"]) == ("user", "Why?")
            assert (answer["status"], answer["text"]) == ("aborted", "You asked:")
