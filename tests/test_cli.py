"""The real server process: `ragline db upgrade` then `ragline serve`, as `make run` does;
the CLI's failures as one line on stderr (a traceback only with `ragline --debug`)."""

from __future__ import annotations

import subprocess
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import RAGLINE, embedded_env, free_port, ragline_server

NO_CHAT = "00000000-0000-4000-8000-000000000000"


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
        assert ready["checks"].keys() == {"database", "queue", "llm", "embeddings", "ingestion"}
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


def _ragline(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAGLINE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """stderr, which must be exactly one line and no traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def _document(tmp_path: Path) -> str:
    path = tmp_path / "note.txt"
    path.write_text("The lighthouse keeper logs the weather at dawn.")
    return str(path)


def test_ingest_without_a_server_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = embedded_env(tmp_path / "data", port)
    ingest = ("ingest", _document(tmp_path), "--chat", NO_CHAT)

    result = _ragline(*ingest, env=env, cwd=tmp_path)
    assert result.returncode == 3
    assert _one_line(result) == (
        f"ragline: no ragline server answers at http://127.0.0.1:{port} (connection refused; "
        "start one with `make run` or `ragline serve`, or set RAGLINE_URL)"
    )
    other = free_port()
    named = _ragline(*ingest, env=env | {"RAGLINE_URL": f"http://127.0.0.1:{other}"}, cwd=tmp_path)
    assert f"answers at http://127.0.0.1:{other} " in _one_line(named)
    malformed = _ragline(*ingest, env=env | {"RAGLINE_URL": "localhost:4000"}, cwd=tmp_path)
    assert malformed.returncode == 2
    assert _one_line(malformed) == (
        "ragline: RAGLINE_URL must be an http:// or https:// URL, got 'localhost:4000'"
    )

    debug = _ragline("--debug", *ingest, env=env, cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ServerUnreachable" in debug.stderr
    assert "ConnectError" in debug.stderr  # the cause is shown too


class _Answers(BaseHTTPRequestHandler):
    """Answers an upload like ragline for an unknown chat (404 ``ChatNotFound``), or with
    a 401 (token ``expired``), or like a proxy with its HTML error page (token ``proxy``)."""

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        status, kind = {"expired": 401, "proxy": 502}.get(token, 404), "application/json"
        body = b'{"error": "ChatNotFound", "detail": "No such chat."}'
        if status == 401:
            body = b'{"error": "Unauthorized", "detail": "Invalid token."}'
        elif status == 502:
            kind, body = "text/html", b"<html>\n<h1>502 Bad Gateway</h1>\n</html>"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def _answering() -> Iterator[str]:
    """A loopback HTTP server (a thread) that answers like :class:`_Answers`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_ingest_finds_the_server_from_port_ragline_url_or_url(tmp_path: Path) -> None:
    """Each run reaches the answering server through one source, while the sources it
    outranks point at ports where nothing listens."""
    ingest = ("ingest", _document(tmp_path), "--chat", NO_CHAT)
    dead = f"http://127.0.0.1:{free_port()}"
    dotenv_dir = tmp_path / "with-dotenv"
    dotenv_dir.mkdir()
    with _answering() as url:
        port = url.rsplit(":", 1)[1]
        env = embedded_env(tmp_path / "data", int(port))
        (dotenv_dir / ".env").write_text(f"PORT={port}\n")
        runs = [
            (env, tmp_path, ()),  # PORT
            ({k: v for k, v in env.items() if k != "PORT"}, dotenv_dir, ()),  # PORT in .env
            (env | {"PORT": str(free_port()), "RAGLINE_URL": url + "/"}, tmp_path, ()),
            (env | {"RAGLINE_URL": dead}, tmp_path, ("--url", url)),
        ]
        results = [_ragline(*ingest, *extra, env=e, cwd=cwd) for e, cwd, extra in runs]
    for result in results:
        assert result.returncode == 2, result.stderr
        assert _one_line(result) == f"ragline: {url} answered 404 ChatNotFound: No such chat."


def test_ingest_error_answers_are_one_line(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data", free_port())
    ingest = ("ingest", _document(tmp_path), "--chat", NO_CHAT)
    with _answering() as url:
        proxy = _ragline(*ingest, "--url", url, "--token", "proxy", env=env, cwd=tmp_path)
        refused = _ragline(*ingest, "--url", url, "--token", "expired", env=env, cwd=tmp_path)
    assert proxy.returncode == refused.returncode == 2
    assert _one_line(proxy) == (
        f"ragline: {url} answered 502 Bad Gateway: <html> <h1>502 Bad Gateway</h1> </html>"
    )
    assert _one_line(refused) == (
        f"ragline: {url} answered 401 Unauthorized: Invalid token. "
        "(pass --token or set RAGLINE_TOKEN)"
    )


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        (("serve",), {"LLM_PROVIDER": "ollama"}, "LLM_PROVIDER=ollama needs OLLAMA_MODEL"),
        (
            ("worker",),
            {"EMBED_PROVIDER": "openai", "CHROMA_HOST": "127.0.0.1", "EMBEDDED_WORKER": "false"},
            "EMBED_PROVIDER=openai needs IONOS_EMBED_MODEL",
        ),
        (
            ("db", "upgrade"),
            {"LLM_PROVIDER": "ionos", "EMBED_PROVIDER": "ollama"},
            "LLM_PROVIDER=ionos needs IONOS_MODEL (or OPENAI_MODEL); "
            "EMBED_PROVIDER=ollama needs OLLAMA_EMBED_MODEL",
        ),
        (("serve",), {"PORT": "forty"}, "PORT: Input should be a valid integer"),
    ],
)
def test_settings_problems_are_one_line_naming_the_variable(
    command: tuple[str, ...], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = _ragline(*command, env=embedded_env(tmp_path / "data", 4000) | env, cwd=tmp_path)
    assert result.returncode == 2
    assert _one_line(result).startswith(f"ragline: {message}")
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_serve_without_the_prepared_local_model(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data", free_port(), RAGLINE_MODEL_CACHE=str(tmp_path / "none"))
    result = _ragline("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("ragline: the local embedding model is not prepared in ")
    assert "run `ragline models prepare`" in line


def test_serve_with_a_missing_local_chat_model(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    env = embedded_env(tmp_path / "data", free_port(), LLM_LOCAL_MODEL=str(missing))
    result = _ragline("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert _one_line(result) == f"ragline: LLM_LOCAL_MODEL={missing} is not a file"


def test_debug_shows_the_traceback_of_a_settings_problem(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data", free_port(), LLM_PROVIDER="ollama")
    result = _ragline("--debug", "serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "OLLAMA_MODEL" in result.stderr
