"""How CLI commands reach a running ragline server, and how they say it failed.

The address: ``--url``, else ``RAGLINE_URL``, else ``http://127.0.0.1:$PORT`` (the port
`ragline serve` binds), else port 4000; variables from the environment or ``.env``, as
the server reads them. Failures are one sentence each (the CLI prints ``ragline: ...``):
no server answering (connection refused, timeout, unknown host) is ``ServerUnreachable``;
an error answer is ``ServerRefused``, naming the API's error and detail
(``{"error": "ChatNotFound", "detail": "No such chat."}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragline.config import Settings

DEFAULT_PORT: int = Settings.model_fields["port"].default
UNAUTHORIZED_HINT = " (pass --token or set RAGLINE_TOKEN)"


class ClientError(Exception):
    """A failure talking to a ragline server, said in one sentence."""

    exit_code = 2


class ServerUnreachable(ClientError):
    """Nothing answered at the address (or stopped answering): try again later."""

    exit_code = 3


class ServerRefused(ClientError):
    """The server answered with an error."""


class ServerAddress(BaseSettings):
    """Only what a client needs: the server's own settings are not read (nor checked)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    ragline_url: str | None = None
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)

    @field_validator("ragline_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def server_url(explicit: str | None = None) -> str:
    """The server to talk to: ``explicit`` (``--url``), ``RAGLINE_URL``, ``PORT``, 4000."""
    if explicit:
        url, source = explicit, "--url"
    else:
        try:
            address = ServerAddress()
        except ValidationError as exc:
            raise ClientError(f"PORT is not a port number: {exc.errors()[0]['msg']}") from exc
        url, source = address.ragline_url or f"http://127.0.0.1:{address.port}", "RAGLINE_URL"
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ClientError(f"{source} must be an http:// or https:// URL, got {url!r}")
    return url.strip().rstrip("/")


@contextmanager
def server_errors(url: str) -> Iterator[None]:
    """Turns httpx's transport errors into ``ServerUnreachable`` naming ``url``."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ServerUnreachable(
            f"no ragline server answers at {url} ({_reason(exc)}; start one with `make run` "
            "or `ragline serve`, or set RAGLINE_URL)"
        ) from exc
    except httpx.TimeoutException as exc:
        raise ServerUnreachable(f"the ragline server at {url} stopped answering (timeout)") from exc
    except httpx.TransportError as exc:
        raise ServerUnreachable(f"the connection to {url} failed ({_reason(exc)})") from exc


def json_body(response: httpx.Response) -> Any:
    """The body of a successful answer; ``ServerRefused`` for an error or a non-JSON body."""
    if response.is_error:
        raise ServerRefused(refusal(response))
    try:
        return response.json()
    except ValueError as exc:
        raise ServerRefused(
            f"{_origin(response)} answered {response.status_code} without JSON: "
            "is it a ragline server?"
        ) from exc


def refusal(response: httpx.Response) -> str:
    """``http://127.0.0.1:4000 answered 404 ChatNotFound: No such chat.``"""
    name, detail = response.reason_phrase or "Error", _one_line(response.text)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        name, detail = body["error"], _detail(body.get("detail"))
    hint = UNAUTHORIZED_HINT if response.status_code == 401 else ""
    return f"{_origin(response)} answered {response.status_code} {name}: {detail}{hint}"


def _detail(detail: Any) -> str:
    """A detail as one line; validation problems as ``loc: msg; ...``."""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(map(str, item.get('loc', [])))}: {item.get('msg')}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return _one_line(str(detail))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _origin(response: httpx.Response) -> str:
    url = response.request.url
    return f"{url.scheme}://{url.netloc.decode()}"


def _reason(exc: Exception) -> str:
    """``[Errno 111] Connection refused`` -> ``connection refused``."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)).strip()
    return (text[:1].lower() + text[1:]) if text else type(exc).__name__
