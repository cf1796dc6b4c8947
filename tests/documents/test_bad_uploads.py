"""Bad files: a clear 4xx or `failed` with a reason; nothing written outside the data
directory; the server stays up; one bad file does not reject the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents.helpers import upload, wait_final
from tests.helpers import as_user, create_chat, running_app
from tests.rag.ingest import builders

ALICE = as_user("alice")
pytestmark = pytest.mark.parametrize("doc_settings", ["embedded-chroma"], indirect=True)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_rejected_at_upload_with_reasons(
    app_client: tuple[httpx.AsyncClient, Any], tmp_path: Path
) -> None:
    client, state = app_client
    chat = await create_chat(client, "alice", title="bad files")
    bomb = tmp_path / "bomb.docx"
    builders.write_zip_bomb_docx(bomb, zeros_mb=300)
    batch = [
        ("empty.txt", b""),
        ("image.txt", builders.png_bytes()),
        ("program.pdf", builders.elf_bytes()),
        ("archive.docx", builders.plain_zip_bytes()),
        ("bomb.docx", bomb.read_bytes()),
        ("../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"),
        ("good.md", b"# Fine\n\nThis one is fine."),
    ]
    outside_before = _files_under(tmp_path.parent) - _files_under(state.settings.ragline_data_dir)
    response = await upload(client, chat["id"], batch)
    assert response.status_code == 202, response.text
    results = {r["name"]: r for r in response.json()["files"]}
    for name in ("empty.txt", "image.txt", "program.pdf", "archive.docx", "bomb.docx"):
        assert results[name]["status"] == "rejected", results[name]
        assert len(results[name]["reason"]) > 10
    assert "empty" in results["empty.txt"]["reason"].lower()
    assert results["passwd"]["status"] == "accepted"  # a label only, never a path
    assert results["good.md"]["status"] == "accepted"
    for name in ("passwd", "good.md"):
        assert (await wait_final(client, chat["id"], results[name]["file_id"]))[
            "status"
        ] == "indexed"

    stored = _files_under(state.settings.ragline_data_dir / "files")
    assert all(p.parent.parent.name == "objects" for p in stored)
    assert len(stored) == 2  # rejected files leave nothing behind
    outside_after = _files_under(tmp_path.parent) - _files_under(state.settings.ragline_data_dir)
    assert outside_after - outside_before <= {bomb}
    assert (await client.get("/healthz")).status_code == 200


async def test_failed_while_parsing_with_reasons(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, state = app_client
    chat = await create_chat(client, "alice", title="unparseable")
    good = builders.pdf_bytes(["A page about otters."])
    response = await upload(
        client,
        chat["id"],
        [
            ("locked.pdf", builders.encrypted_pdf_bytes(["secret"], user_password="pw")),
            ("cut.pdf", good[: len(good) // 2]),
            ("blank.pdf", builders.pdf_bytes(["", ""])),  # valid, but no text at all
        ],
    )
    body = response.json()
    results = {r["name"]: r for r in body.get("files") or body["detail"]}
    reasons = {}
    for name, result in results.items():
        if result["status"] == "rejected":  # refused at upload already: fine too
            reasons[name] = result["reason"]
            continue
        body = await wait_final(client, chat["id"], result["file_id"])
        assert body["status"] == "failed", body
        assert state.documents.stores.vectors.count(file_id=result["file_id"]) == 0
        reasons[name] = body["error"]
    assert "encrypt" in reasons["locked.pdf"].lower()
    assert "truncated" in reasons["cut.pdf"].lower() or "damaged" in reasons["cut.pdf"].lower()
    assert results["blank.pdf"]["status"] == "accepted"  # only parsing can tell
    assert "no text" in reasons["blank.pdf"].lower()


async def test_all_rejected_answers_422(app_client: tuple[httpx.AsyncClient, Any]) -> None:
    client, _ = app_client
    chat = await create_chat(client, "alice", title="nothing good")
    response = await upload(client, chat["id"], [("a.txt", b""), ("b.txt", builders.png_bytes())])
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "NoFileAccepted"
    assert [r["status"] for r in body["detail"]] == ["rejected", "rejected"]


async def test_oversize_and_malformed_requests(doc_settings: Any, db: Any) -> None:

    small = doc_settings.model_copy(update={"upload_max_bytes": 10_000, "upload_max_files": 3})
    async with running_app(small) as (client, _state):
        chat = await create_chat(client, "alice", title="limits")
        # A file over UPLOAD_MAX_BYTES refuses the request as it streams (test_upload_limits).
        big = await upload(
            client, chat["id"], [("big.txt", b"x " * 6_000), ("ok.txt", b"fine text")]
        )
        assert big.status_code == 413 and "UPLOAD_MAX_BYTES" in big.json()["detail"]

        huge = await upload(client, chat["id"], [("huge.txt", b"y" * 3_200_000)])
        assert huge.status_code == 413 and huge.json()["error"] == "PayloadTooLarge"

        many = await upload(client, chat["id"], [(f"{i}.txt", b"text") for i in range(4)])
        assert many.status_code == 400, many.text
        assert "files" in many.json()["detail"].lower()

        not_multipart = await client.post(
            f"/chats/{chat['id']}/upload", json={"file": "x"}, headers=ALICE
        )
        assert not_multipart.status_code == 400
        no_files = await client.post(
            f"/chats/{chat['id']}/upload",
            data={"note": "hi"},
            files={"x": ("", b"")},
            headers=ALICE,
        )
        assert no_files.status_code in (400, 422)
        assert (await client.get("/healthz")).status_code == 200
