"""Outages of ragline's dependencies, each at least two minutes long, against a production-
shaped deployment (``tests/faults/stack.py``): the API answers 503 JSON or degrades as
documented (docs/architecture.md, "Faults"), never 500 and never hangs; files accepted
before or during an outage end ``indexed`` after it without spending their attempts
(``INGEST_MAX_ATTEMPTS=2``); and everything recovers by itself, with no restart of ragline.

Three deployments run their outages at the same time, so the suite waits for about two and
a half minutes of outage once:

- providers: the chat and embedding providers stopped for 2 minutes, the Chroma server for
  2 minutes from 20 s in (worker and Redis up: the worker keeps failing on them);
- redis: Redis (sessions, rate limits, embedding cache, the queue) stopped for 2 minutes;
- worker+database: the `ragline worker` process stopped for 2 minutes, and the backends
  of the deployment's database terminated every 5 s for 2.5 minutes (into the worker's
  catch-up after its restart).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN, ThrowawayPostgres
from tests.documents.helpers import long_text
from tests.faults.stack import USER, FaultStack, fault_stack, final_status
from tests.helpers import create_chat, running_app

OUTAGE_S = 120.0
CHROMA_LAG_S = 20.0  # the Chroma server stops this much later than the providers
DB_EXTRA_S = 30.0  # backends are still terminated this long after the worker is back
REQUEST_LIMIT_S = 30.0  # an answer must come within this: no hang
TERMINATE_EVERY_S = 5.0  # a flapping database: every connection ended this often
MAX_ATTEMPTS = 2
QUESTION = "What changed near the rivers?"
# What a request may answer during an outage: its success, or 503 (202 for an upload).
DEGRADED = {200, 202, 503}


class Probe:
    """Every request of one deployment's outage: statuses seen, 503 error names, and the
    files accepted (to follow until ``indexed``)."""

    def __init__(self, client: httpx.AsyncClient, chat_id: str) -> None:
        self.client = client
        self.chat_id = chat_id
        self.seen: Counter[tuple[str, int]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.checks: Counter[tuple[str, str]] = Counter()  # /readyz: (check, status)
        self.accepted: list[str] = []

    async def request(self, name: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            async with asyncio.timeout(REQUEST_LIMIT_S):  # an outage must not hang a request
                response = await self.client.request(method, url, headers=USER, **kwargs)
        except TimeoutError:
            raise AssertionError(f"{name}: no answer within {REQUEST_LIMIT_S} s") from None
        self.seen[name, response.status_code] += 1
        if response.status_code >= 500:
            assert response.status_code == 503, f"{name}: {response.text[:500]}"
            assert response.headers["content-type"].startswith("application/json"), name
            error = response.json()["error"]
            self.errors[name, error if isinstance(error, str) else error["type"]] += 1
        return response

    async def round(self, *, upload: bool) -> dict[str, int]:
        """Each kind of request once; returns their statuses."""
        chat = f"/chats/{self.chat_id}"
        question = {"text": QUESTION}
        openai = {"model": self.chat_id, "messages": [{"role": "user", "content": QUESTION}]}
        calls: dict[str, tuple[str, str, dict[str, Any]]] = {
            "files": ("GET", f"{chat}/files", {}),
            "chats": ("GET", "/chats", {}),
            "search": ("POST", f"{chat}/search", {"json": {"query": "rivers"}}),
            "chat": ("POST", f"{chat}/chat", {"json": question}),
            "stream": ("POST", f"{chat}/chat/stream", {"json": question}),
            "v1": ("POST", "/v1/chat/completions", {"json": openai}),
        }
        if upload:
            text = long_text(2, marker=uuid.uuid4().hex).encode()
            name = f"during-{len(self.accepted)}.txt"
            calls["upload"] = ("POST", f"{chat}/upload", {"files": {"files": (name, text)}})
        statuses = {}
        for name, (method, url, kwargs) in calls.items():
            response = await self.request(name, method, url, **kwargs)
            statuses[name] = response.status_code
            if name == "upload" and response.status_code == 202:
                [result] = response.json()["files"]
                assert result["status"] == "accepted", result
                self.accepted.append(result["file_id"])
        readyz = await self.client.get("/readyz")
        self.seen["readyz", readyz.status_code] += 1
        for check, result in readyz.json()["checks"].items():
            self.checks[check, result["status"]] += 1
        statuses["readyz"] = readyz.status_code
        return statuses

    def summary(self) -> str:
        return json.dumps(
            {
                "statuses": {f"{k} {s}": n for (k, s), n in sorted(self.seen.items())},
                "errors": {f"{k} {e}": n for (k, e), n in sorted(self.errors.items())},
                "readyz": {f"{k} {s}": n for (k, s), n in sorted(self.checks.items()) if s != "ok"},
            }
        )


async def _seeded(client: httpx.AsyncClient, title: str) -> str:
    """An assistant with one indexed file, and its question asked once (all up)."""
    chat = await create_chat(client, "alice", title=title, temperature=0.0)
    files = {"files": ("before.txt", long_text(3, marker="seed").encode())}
    response = await client.post(f"/chats/{chat['id']}/upload", files=files, headers=USER)
    assert response.status_code == 202, response.text
    file_id = response.json()["files"][0]["file_id"]
    assert (await final_status(client, chat["id"], file_id, within=120))["status"] == "indexed"
    answer = await client.post(f"/chats/{chat['id']}/chat", json={"text": QUESTION}, headers=USER)
    assert answer.status_code == 200, answer.text
    return str(chat["id"])


@asynccontextmanager
async def _probing(stack: FaultStack, title: str) -> AsyncIterator[Probe]:
    """The API of ``stack`` in-process (a 500 is an answer, not an exception), seeded."""
    async with running_app(stack.settings, raise_app_exceptions=False) as (client, _):
        yield Probe(client, await _seeded(client, title))


async def _switch(stack: FaultStack, names: tuple[str, ...], *, up: bool) -> None:
    for name in names:
        service = stack.services[name]
        await asyncio.to_thread(service.up if up else service.down)


async def _until(deadline: float, probe: Probe, stack: FaultStack, **checks: Any) -> None:
    """Probe every ~2 s until ``deadline`` (monotonic); uploads in the first rounds; each
    round checks that no accepted file failed or spent an attempt."""
    while time.monotonic() < deadline:
        statuses = await probe.round(upload=len(probe.accepted) < 3)
        for name, allowed in checks.items():
            assert name not in statuses or statuses[name] in allowed, (name, statuses)
        for file_id in probe.accepted:
            status, attempts = await asyncio.to_thread(stack.attempts, file_id)
            assert status != "failed" and attempts == 0, (file_id, status, attempts)
        await asyncio.sleep(2)


async def _recovered(probe: Probe, *reported: tuple[str, str]) -> str:
    """After the outage, with no restart of ragline: every accepted file ends indexed and
    every request succeeds; /readyz reported each ``(check, status)`` meanwhile. Returns
    the outage's summary."""
    assert probe.accepted, "no upload was accepted during the outage"
    for file_id in probe.accepted:
        body = await final_status(probe.client, probe.chat_id, file_id, within=150)
        assert body["status"] == "indexed", body
    statuses = await probe.round(upload=False)
    assert set(statuses.values()) == {200}, statuses  # recovered: everything answers
    for check in reported:
        assert probe.checks[check], (check, probe.checks)
    return probe.summary()


async def _providers(stack: FaultStack, report: dict[str, str]) -> None:
    async with _probing(stack, "providers") as probe:
        start = time.monotonic()
        answers = {"chat": {503}, "stream": {503}, "v1": {503}, "upload": {202}}
        await _switch(stack, ("llm", "embeddings"), up=False)
        # Models down: degraded but ready (readiness reports them, never fails on them).
        await _until(start + CHROMA_LAG_S, probe, stack, readyz={200}, **answers)
        await _switch(stack, ("chroma",), up=False)
        await _until(start + OUTAGE_S, probe, stack, search={503}, readyz={503}, **answers)
        await _switch(stack, ("llm", "embeddings"), up=True)
        await _until(start + OUTAGE_S + CHROMA_LAG_S, probe, stack, search={503}, readyz={503})
        await _switch(stack, ("chroma",), up=True)
        down = (("chroma", "down"), ("llm", "degraded"), ("embeddings", "degraded"))
        report["providers"] = await _recovered(probe, *down)


async def _redis(stack: FaultStack, report: dict[str, str]) -> None:
    async with _probing(stack, "redis") as probe:
        start = time.monotonic()
        await _switch(stack, ("redis",), up=False)
        # Degraded, not down: rate limits open, no embedding cache, uploads wait for the
        # queue; readiness says so (redis and queue down).
        ok = {name: {200} for name in ("files", "chats", "search", "chat", "stream", "v1")}
        await _until(start + OUTAGE_S, probe, stack, upload={202}, readyz={503}, **ok)
        await _switch(stack, ("redis",), up=True)
        down = (("redis", "down"), ("queue", "down"), ("ingestion", "degraded"))
        report["redis"] = await _recovered(probe, *down)


async def _worker_and_database(stack: FaultStack, report: dict[str, str]) -> None:
    async with _probing(stack, "worker+database") as probe:
        start = time.monotonic()
        terminated = 0

        async def terminate_backends() -> None:
            nonlocal terminated
            while time.monotonic() < start + OUTAGE_S + DB_EXTRA_S:
                terminated += await asyncio.to_thread(stack.terminate_backends)
                await asyncio.sleep(TERMINATE_EVERY_S)

        terminator = asyncio.create_task(terminate_backends())
        await _switch(stack, ("worker",), up=False)
        everything = {name: DEGRADED for name in ("files", "chats", "search", "chat", "stream")}
        everything |= {"v1": DEGRADED, "upload": DEGRADED}
        await _until(start + OUTAGE_S, probe, stack, **everything)
        await _switch(stack, ("worker",), up=True)
        await _until(start + OUTAGE_S + DB_EXTRA_S, probe, stack, **everything)
        await terminator
        assert terminated > 0
        summary = await _recovered(probe, ("ingestion", "degraded"))  # files waited: no worker
        report["worker+database"] = f"{summary} backends terminated: {terminated}"


async def test_outages_answer_503_or_degrade_and_recover(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    retries = {"ingest_max_attempts": MAX_ATTEMPTS, "ingest_retry_base_seconds": 0.2}
    report: dict[str, str] = {}
    scenarios = {"providers": _providers, "redis": _redis, "worker+database": _worker_and_database}
    stacks = [
        fault_stack(
            tmp_path / name,
            admin_dsn=PG_ADMIN_DSN,
            database_url=throwaway_postgres.create("faults"),
            **retries,
        )
        for name in scenarios
    ]
    started = time.monotonic()
    with stacks[0] as first, stacks[1] as second, stacks[2] as third:
        results = await asyncio.gather(
            *(
                run(stack, report)
                for run, stack in zip(scenarios.values(), (first, second, third), strict=True)
            ),
            return_exceptions=True,
        )
    with capsys.disabled():  # what each outage answered, in `make test`'s output
        sys.stderr.write(f"\nfault suite: {time.monotonic() - started:.0f} s\n")
        for name, line in report.items():
            sys.stderr.write(f"  {name}: {line}\n")
    failures = {name: r for name, r in zip(scenarios, results, strict=True) if r is not None}
    assert not failures, "\n".join(f"{name}: {failure!r}" for name, failure in failures.items())
