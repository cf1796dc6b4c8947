"""The real objects the fuzzer aims at: seeded before it starts, then kept up to date from
its own responses (created assistants, files and keys join; deleted ones leave).

A generated id (``chat_id``, ``file_id``, ``key_id``, ``/v1``'s ``model``) is replaced by a
live one for most cases, so those reach real objects; a tenth keep the generated value
(unknown: 404, or malformed: 422). The choice depends only on the generated value, so a
seeded run repeats itself.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from schemathesis import Case

KEEP_GENERATED = 10
"""One case in ``KEEP_GENERATED`` keeps its generated id."""
CHANGES = {"DELETE", "PUT"}
"""Methods that never aim at a protected object (it must stay as seeded)."""
SEED_TEXT = (
    b"The Zephyrine valve was invented by Marta Kowalczyk in 1931 in Gdansk.\n\n"
    b"Its patent covers a spring-loaded disc that closes against back-flow."
)


def _pick(value: object, choices: list[str]) -> str | None:
    """A live id for ``value`` (None: keep the generated one)."""
    digest = int.from_bytes(hashlib.sha256(repr(value).encode()).digest()[:8], "big")
    if not choices or digest % KEEP_GENERATED == 0:
        return None
    return choices[(digest // KEEP_GENERATED) % len(choices)]


@dataclass
class World:
    chats: list[str] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    protected: set[str] = field(default_factory=set)
    """Seeded objects no fuzzed PUT or DELETE may change (the indexed file, its chat, one
    key): the chat routes keep answering from them."""

    def aim(self, case: Case[Any]) -> None:
        """Point the case's ids at live objects (most of the time)."""
        changing = case.method.upper() in CHANGES
        path = case.path_parameters or {}
        if "chat_id" in path:
            chats = [c for c in self.chats if not (changing and c in self.protected)]
            if "file_id" in path:  # a file's route: its chat must hold files
                chats = [c for c in self.chats if self.files.get(c)] or chats
            chosen = _pick(path["chat_id"], chats)
            if chosen is not None:
                path["chat_id"] = chosen
        if "file_id" in path:
            files = self.files.get(str(path.get("chat_id")), [])
            files = [f for f in files if not (changing and f in self.protected)]
            chosen = _pick(path["file_id"], files)
            if chosen is not None:
                path["file_id"] = chosen
        if "key_id" in path:
            keys = [k for k in self.keys if not (changing and k in self.protected)]
            chosen = _pick(path["key_id"], keys)
            if chosen is not None:
                path["key_id"] = chosen
        if case.path == "/v1/chat/completions" and isinstance(case.body, dict):
            model = case.body.get("model")
            chosen = _pick(model, self.chats) if isinstance(model, str) else None
            if chosen is not None:
                case.body["model"] = chosen

    def learn(self, case: Case[Any], status: int, body: Any) -> None:
        """Follow the objects the case created or deleted."""
        method, route, path = case.method.upper(), case.path, case.path_parameters or {}
        chat_id = str(path.get("chat_id"))
        if route == "/chats" and method == "POST" and status == 201:
            self.chats.append(body["id"])
        elif route == "/chats/{chat_id}" and method == "DELETE" and status == 204:
            self.chats = [c for c in self.chats if c != chat_id]
            self.files.pop(chat_id, None)
        elif route == "/chats/{chat_id}/upload" and status == 202:
            accepted = [f["file_id"] for f in body["files"] if f["status"] == "accepted"]
            self.files.setdefault(chat_id, []).extend(accepted)
        elif route == "/chats/{chat_id}/files/{file_id}" and method == "DELETE" and status == 204:
            file_id = str(path.get("file_id"))
            self.files[chat_id] = [f for f in self.files.get(chat_id, []) if f != file_id]
        elif route == "/api-keys" and method == "POST" and status == 201:
            self.keys.append(body["id"])
        elif route == "/api-keys/{key_id}" and method == "DELETE" and status == 204:
            self.keys = [k for k in self.keys if k != str(path.get("key_id"))]


def seed(client: requests.Session, *, timeout: float = 300.0) -> World:
    """Two assistants (one with an indexed file, a conversation and a favourite), a file
    still to delete, and two API keys; the first of each kind protected from deletion."""
    world = World()

    def ok(response: requests.Response, status: int) -> Any:
        assert response.status_code == status, (response.request.url, response.text)
        return response.json() if response.content else None

    for title in ("Handbook", "Scratch"):
        body = {"title": title, "context": "Answer from the documents."}
        world.chats.append(ok(client.post("/chats", json=body), 201)["id"])
    handbook = world.chats[0]
    for name in ("valve.txt", "notes.md"):
        content = SEED_TEXT if name == "valve.txt" else b"# Notes\n\nSpare disc sizes: 12, 16."
        upload = client.post(f"/chats/{handbook}/upload", files=[("files", (name, content))])
        world.files.setdefault(handbook, []).append(ok(upload, 202)["files"][0]["file_id"])
    indexed = world.files[handbook][0]
    deadline = time.monotonic() + timeout
    while ok(client.get(f"/chats/{handbook}/files/{indexed}"), 200)["status"] != "indexed":
        assert time.monotonic() < deadline, "the seeded file was not indexed in time"
        time.sleep(0.2)
    ok(client.post(f"/chats/{handbook}/chat", json={"text": "Who invented the valve?"}), 200)
    ok(client.post(f"/favourites/{handbook}"), 201)
    for name in ("fuzz-kept", "fuzz-spare"):
        world.keys.append(ok(client.post("/api-keys", json={"name": name}), 201)["id"])
    world.protected = {handbook, indexed, world.keys[0]}
    return world
