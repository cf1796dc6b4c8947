"""Errors on /v1 take OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`,
OpenAI's status codes), so OpenAI clients raise the right exception; other routes keep
ragline's. What ragline cannot honour is refused before anything runs; a model that is
down answers 503 JSON, never an empty stream; a failure mid-stream is its last event."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from ragline.config import Settings
from tests.chat.helpers import with_llm_down
from tests.fake_providers import openai_chat_server
from tests.helpers import as_user, create_chat, running_app
from tests.openai_api.helpers import ALICE, data_lines, stored_history, unlimited, via

HI = [{"role": "user", "content": "Hi"}]


def openai_error(response: httpx.Response, status: int, kind: str, code: str | None) -> Any:
    """The error object, after checking the status, the shape, ``type`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error = body["error"]
    assert (error["type"], error["code"]) == (kind, code), error
    assert isinstance(error["message"], str) and error["message"]
    return error


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    (
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        "tools",
        "unsupported_parameter",
    ),
    ({"tool_choice": "required"}, "tool_choice", "unsupported_parameter"),
    ({"functions": [{"name": "f"}]}, "functions", "unsupported_parameter"),
    ({"n": 2}, "n", "unsupported_value"),
    ({"response_format": {"type": "json_object"}}, "response_format", "unsupported_value"),
    ({"logprobs": True}, "logprobs", "unsupported_parameter"),
    (
        {"messages": [{"role": "tool", "content": "42", "tool_call_id": "c"}]},
        "messages[0].role",
        "unsupported_value",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ]
        },
        "messages[0].content",
        "unsupported_value",
    ),
    ({"messages": [*HI, {"role": "assistant", "content": "Hello"}]}, "messages", "invalid_value"),
    ({"messages": [{"role": "system", "content": "Be brief."}]}, "messages", "invalid_value"),
    ({"messages": [{"role": "user", "content": " "}]}, "messages[0].content", "invalid_value"),
    ({"messages": []}, "messages", "invalid_value"),
    ({"messages": "hi"}, "messages", "invalid_type"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ({"temperature": 3}, "temperature", "invalid_value"),
    ({"top_p": -0.1}, "top_p", "invalid_value"),
    ({"max_tokens": 0}, "max_tokens", "invalid_value"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
]


async def test_refused_and_malformed_requests_are_400(settings: Settings, db: Any) -> None:
    async with running_app(unlimited(settings)) as (client, _state):
        await _refused_and_malformed(client)


async def _refused_and_malformed(client: httpx.AsyncClient) -> None:
    chat = await create_chat(client, "alice")
    for fields, param, code in REFUSED:
        for stream in (False, True):
            body = {"model": chat["id"], "messages": HI, "stream": stream, **fields}
            response = await client.post("/v1/chat/completions", json=body, headers=ALICE)
            error = openai_error(response, 400, "invalid_request_error", code)
            assert error["param"] == param, (fields, error)

    missing = await client.post("/v1/chat/completions", json={"messages": HI}, headers=ALICE)
    error = openai_error(missing, 400, "invalid_request_error", "missing_required_parameter")
    assert (error["param"], error["message"]) == ("model", "Missing required parameter: 'model'.")
    garbled = await client.post(
        "/v1/chat/completions",
        content=b"{not json",
        headers=ALICE | {"Content-Type": "application/json"},
    )
    assert openai_error(garbled, 400, "invalid_request_error", None)["param"] is None
    # Other routes keep ragline's shape and 422.
    native = await client.post(f"/chats/{chat['id']}/chat", json={}, headers=ALICE)
    assert native.status_code == 422 and native.json()["error"] == "ValidationError"
    assert await stored_history(client, chat["id"]) == []


async def test_accepted_parameters_that_change_nothing(settings: Settings, db: Any) -> None:
    with openai_chat_server() as model:
        async with running_app(via(settings, model)) as (client, _state):
            chat = await create_chat(client, "alice")
            body = {
                "model": chat["id"],
                "messages": HI,
                "n": 1,
                "response_format": {"type": "text"},
                "tool_choice": "none",
                "seed": 7,
                "user": "someone",
                "presence_penalty": 0.5,
            }
            response = await client.post("/v1/chat/completions", json=body, headers=ALICE)
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"].startswith("You asked: Hi")


async def test_auth_model_and_route_errors(settings: Settings, db: Any) -> None:
    user = f"limited-{uuid.uuid4().hex[:8]}"  # rate-limit counters live in the shared Redis
    limited = settings.model_copy(update={"rate_limit_chat": "3/minute"})
    async with running_app(limited) as (client, _state):
        bogus = {"Authorization": "Bearer rl_not-a-key"}
        error = openai_error(
            await client.get("/v1/models", headers=bogus),
            401,
            "authentication_error",
            "unauthorized",
        )
        assert "API key" in error["message"]
        legacy = await client.get("/chats", headers=bogus)  # ragline's own shape elsewhere
        assert legacy.status_code == 401 and legacy.json()["error"] == "Unauthorized"
        route = await client.get("/v1/nope", headers=ALICE)
        openai_error(route, 404, "invalid_request_error", "not_found")

        alices = await create_chat(client, "alice")
        for model in (alices["id"], "gpt-4o", str(uuid.uuid4())):  # another user's, unknown
            response = await client.post(
                "/v1/chat/completions",
                json={"model": model, "messages": HI},
                headers=as_user(user),
            )
            error = openai_error(response, 404, "invalid_request_error", "model_not_found")
            assert error["param"] == "model" and model in error["message"]
        over = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": HI}, headers=as_user(user)
        )
        openai_error(over, 429, "rate_limit_error", "rate_limit_exceeded")
        assert int(over.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no storage involved
async def test_model_down_is_503_json(settings: Settings, db: Any) -> None:
    """The OpenAI provider retries twice before it gives up: a few seconds each."""
    async with running_app(unlimited(with_llm_down(settings))) as (client, _state):
        chat = await create_chat(client, "alice", title="down")
        for stream in (False, True):
            response = await client.post(
                "/v1/chat/completions",
                json={"model": chat["id"], "messages": HI, "stream": stream},
                headers=ALICE,
            )
            error = openai_error(response, 503, "server_error", "model_unavailable")
            assert "unreachable" in error["message"]
        assert await stored_history(client, chat["id"]) == []


async def test_failure_mid_answer(settings: Settings, db: Any) -> None:
    with openai_chat_server(fault="error") as model:
        async with running_app(via(settings, model)) as (client, _state):
            chat = await create_chat(client, "alice")
            body = {"model": chat["id"], "messages": HI}
            streamed = await client.post(
                "/v1/chat/completions", json=body | {"stream": True}, headers=ALICE
            )
            assert streamed.status_code == 200
            *chunks, last = data_lines(streamed.text)
            assert chunks[-1]["choices"][0]["delta"] == {"content": "You"}  # the first piece
            assert set(last) == {"error"}  # the last event, and no [DONE]
            assert (last["error"]["type"], last["error"]["code"]) == (
                "server_error",
                "generation_failed",
            )
            whole = await client.post("/v1/chat/completions", json=body, headers=ALICE)
            openai_error(whole, 502, "server_error", "generation_failed")
            assert await stored_history(client, chat["id"]) == []
