"""Request bodies are as strict as their OpenAPI schema reads: a number is a JSON number
(not ``false``, not ``"0.5"``), a boolean is ``true`` or ``false`` (not ``0``), an integer
is not ``true``, and names hold no control characters (so a leading ``\\r`` cannot be
trimmed into passing ``maxLength``). Each refusal changes nothing in the database."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot
from tests.helpers import as_user, create_chat, multipart_chat

ALICE = as_user("alice")
FILE_ID = "00000000-0000-4000-8000-000000000001"


async def refused(
    client: httpx.AsyncClient, db: AsyncEngine, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    """The request answers 422 ``ValidationError`` (400 in OpenAI's shape under /v1) and
    leaves the database as it was."""
    before = await snapshot(db)
    response = await client.request(method, url, headers=ALICE, **kwargs)
    assert response.status_code == (400 if url.startswith("/v1") else 422), response.text
    assert await snapshot(db) == before, "a refused request changed the database"
    return response.json()  # type: ignore[no-any-return]


def fields_at_fault(body: dict[str, Any]) -> set[str]:
    if isinstance(body["error"], dict):  # OpenAI's shape
        return {body["error"]["param"]}
    return {str(problem["loc"][-1]) for problem in body["detail"]}


CREATE = [
    ("temperature", False),
    ("temperature", True),
    ("temperature", "0.5"),
    ("title", "\r" + "t" * 200),  # 201 characters, 200 once trimmed
    ("title", "ok\x00"),
    ("title", "two\nlines"),
    ("model", "\x1b[31mred"),
    ("description", "bell\x07"),
    ("context", "nul\x00byte"),
]


async def test_create_refuses_loose_values(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    for field, value in CREATE:
        body = {"title": "ok", field: value}
        problem = await refused(client, db, "POST", "/chats", json=body)
        assert fields_at_fault(problem) == {field}, (field, value, problem)
        # The same in the multipart form's `chat` field.
        problem = await refused(client, db, "POST", "/chats", **multipart_chat(body, None))
        assert fields_at_fault(problem) == {field}, (field, value, problem)


UPDATE = [
    ("remove_avatar", 0),
    ("remove_avatar", 1),
    ("remove_avatar", "false"),
    ("temperature", False),
    ("title", "\rx"),
]


async def test_update_refuses_loose_values(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    chat = await create_chat(client, "alice", title="strict")
    for field, value in UPDATE:
        problem = await refused(client, db, "PUT", f"/chats/{chat['id']}", json={field: value})
        assert fields_at_fault(problem) == {field}, (field, value, problem)


async def test_what_the_schema_allows_still_passes(client: httpx.AsyncClient) -> None:
    """An integer is a number (and 2.0 an integer); text keeps its tabs and line breaks;
    spaces are trimmed."""
    chat = await create_chat(
        client,
        "alice",
        title="  Spaced  ",
        temperature=1,
        description="Line one\r\nLine two",
        context="Rules:\n\t1. Be brief.",
    )
    assert chat["title"] == "Spaced"
    assert chat["temperature"] == 1.0
    assert chat["context"] == "Rules:\n\t1. Be brief."
    response = await client.put(
        f"/chats/{chat['id']}", json={"remove_avatar": False, "temperature": 0}, headers=ALICE
    )
    assert response.status_code == 200, response.text
    assert response.json()["temperature"] == 0.0
    search = await client.post(
        f"/chats/{chat['id']}/search", json={"query": "rules", "k": 2.0}, headers=ALICE
    )
    assert search.status_code == 200, search.text  # 2.0 is an integer in JSON Schema


QUESTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("chat", {"text": "hello\x00"}, "text"),
    ("chat/stream", {"text": "hi", "params": {"files": {FILE_ID: {"queried": 1}}}}, "queried"),
    ("search", {"query": "otters", "k": True}, "k"),
    ("search", {"query": "otters", "k": "5"}, "k"),
    ("search", {"query": "\x00"}, "query"),
]


async def test_chat_and_search_refuse_loose_values(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    chat = await create_chat(client, "alice", title="strict")
    for route, body, field in QUESTIONS:
        problem = await refused(client, db, "POST", f"/chats/{chat['id']}/{route}", json=body)
        assert fields_at_fault(problem) == {field}, (route, body, problem)


OPENAI = [
    ("temperature", False),
    ("top_p", "1"),
    ("max_tokens", 1.5),
    ("max_tokens", True),
    ("n", True),
    ("stream", "true"),
    ("stream", 1),
    ("logprobs", 0),
    ("stream_options", {"include_usage": 1}),
]


async def test_openai_request_refuses_loose_values(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    chat = await create_chat(client, "alice", title="strict")
    messages = [{"role": "user", "content": "hi"}]
    for field, value in OPENAI:
        body = {"model": chat["id"], "messages": messages, field: value}
        problem = await refused(client, db, "POST", "/v1/chat/completions", json=body)
        assert problem["error"]["param"].split(".")[0] == field, (field, value, problem)


async def test_control_characters_in_query_parameters_are_refused(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """Found by the long fuzz run: a NUL in ``q`` reached PostgreSQL (500: text cannot hold
    NUL). The schema says so too (``pattern``), and an integral JSON number is an integer."""
    await create_chat(client, "alice", title="otters")
    for q in ("a\x00b", "\x1b[31m", "line\rbreak"):
        body = await refused(client, db, "GET", "/chats/search", params={"q": q})
        assert fields_at_fault(body) == {"q"}
    found = await client.get("/chats/search", params={"q": "otter"}, headers=ALICE)
    assert found.json()["total"] == 1
    document = (await client.get("/openapi.json")).json()
    [q_param] = document["paths"]["/chats/search"]["get"]["parameters"][:1]
    assert "\\x00" in q_param["schema"]["pattern"]
