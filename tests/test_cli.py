"""The real server process: `ragline db upgrade` then `ragline serve`, as `make run` does."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import RAGLINE, embedded_env, free_port, ragline_server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    env = embedded_env(tmp_path / "data", free_port())
    with ragline_server(tmp_path, env) as (base, _):
        yield base


def test_serve_embedded_default(served: str, tmp_path: Path) -> None:
    assert (tmp_path / "data" / "ragline.db").is_file()
    with httpx.Client(base_url=served, timeout=10) as client:
        assert client.get("/readyz").json()["checks"].keys() == {"database"}
        docs = client.get("/docs")
        assert docs.status_code == 200 and "/static/docs/swagger-ui-bundle.js" in docs.text
        assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
        created = client.post("/chats", json={"title": "over the wire"})
        assert created.status_code == 201
        assert client.get("/chats").json()["total"] == 1


def test_serve_refuses_public_bind_in_development(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data", free_port())
    result = subprocess.run(
        [RAGLINE, "serve", "--host", "0.0.0.0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to bind" in result.stderr


def test_production_without_identity_refuses_to_start(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data", free_port()) | {"RAGLINE_ENV": "production"}
    result = subprocess.run(
        [RAGLINE, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no identity provider" in result.stderr
