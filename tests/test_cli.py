"""The real server process: `ragline db upgrade` then `ragline serve`, as `make run` does."""

from __future__ import annotations

import subprocess
import tomllib
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
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["checks"].keys() == {"database", "queue", "llm", "embeddings"}
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


def test_version_is_the_project_version(tmp_path: Path) -> None:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text())["project"]["version"]
    result = subprocess.run(
        [RAGLINE, "--version"],
        env=embedded_env(tmp_path / "data", free_port()),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, f"ragline {version}\n", "")
    assert not (tmp_path / "data").exists()  # printed before any settings or store is opened
