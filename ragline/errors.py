"""Typed errors that carry their HTTP status, rendered in one JSON shape.

Every 4xx/5xx answer is ``{"error": "<Name>", "detail": ...}``; validation errors put
the list of field problems in ``detail``. Clients never see a stack trace.

Under ``/v1`` (the OpenAI-compatible facade) the same errors take OpenAI's shape, which its
clients parse: ``{"error": {"message", "type", "param", "code"}}``, ``type`` from the status
(400/404 ``invalid_request_error``, 401 ``authentication_error``, 403 ``permission_error``,
429 ``rate_limit_error``, 5xx ``server_error``), ``code`` the error's own (``model_not_found``,
``rate_limit_exceeded``, ...) or its name in snake_case; validation errors are 400 there, as
on OpenAI, naming the first parameter at fault.
"""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragline.kit.outages import unavailable_dependency
from ragline.rag.embeddings.base import EmbeddingError

logger = logging.getLogger(__name__)
OPENAI_PREFIX = "/v1"
_OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


class RaglineError(Exception):
    """Base of every error a client may see. Subclasses set ``status_code``."""

    status_code: int = 500
    code: str | None = None
    """``code`` of the OpenAI-shaped body (``/v1``); ``None``: the name in snake_case."""
    param: str | None = None
    """The request parameter at fault, for the OpenAI-shaped body."""

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = detail if detail is not None else self.default_detail()
        self.headers = headers
        super().__init__(str(self.detail))

    @property
    def name(self) -> str:
        return type(self).__name__

    def default_detail(self) -> str:
        return HTTPStatus(self.status_code).phrase


class BadRequest(RaglineError):
    status_code = 400


class Unauthorized(RaglineError):
    status_code = 401


class Forbidden(RaglineError):
    status_code = 403


class NotFound(RaglineError):
    status_code = 404


class PayloadTooLarge(RaglineError):
    status_code = 413


class UnsupportedMediaType(RaglineError):
    status_code = 415


class Unprocessable(RaglineError):
    status_code = 422


class TooManyRequests(RaglineError):
    status_code = 429
    code = "rate_limit_exceeded"


class ServiceUnavailable(RaglineError):
    status_code = 503


class ChatNotFound(NotFound):
    def default_detail(self) -> str:
        return "No such chat."


class AvatarNotFound(NotFound):
    def default_detail(self) -> str:
        return "This chat has no avatar."


class FileNotFound(NotFound):
    def default_detail(self) -> str:
        return "No such file in this chat."


class FavouriteNotFound(NotFound):
    def default_detail(self) -> str:
        return "This chat is not a favourite."


class InvalidAvatar(Unprocessable):
    pass


class AvatarTooLarge(PayloadTooLarge):
    pass


def error_body(error: str, detail: Any) -> dict[str, Any]:
    return {"error": error, "detail": jsonable_encoder(detail)}


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def openai_error_body(
    message: str, *, status: int, code: str | None, param: str | None = None
) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else _OPENAI_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def openai_error(exc: RaglineError) -> dict[str, Any]:
    """``exc`` in OpenAI's shape (the response body, or the last event of a /v1 stream)."""
    return openai_error_body(
        _message(exc.detail),
        status=exc.status_code,
        code=exc.code or _snake_case(exc.name),
        param=exc.param,
    )


def openai_internal_error() -> dict[str, Any]:
    return openai_error_body(
        "The server had an error while processing your request.", status=500, code=None
    )


def _message(detail: Any) -> str:
    return detail if isinstance(detail, str) else json.dumps(jsonable_encoder(detail))


def _snake_case(name: str) -> str:
    """``LLMUnavailableError`` -> ``llm_unavailable_error``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _status_name(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.title().replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"


def _openai(request: Request) -> bool:
    return is_openai_path(request.url.path)


async def _ragline_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RaglineError)
    body = openai_error(exc) if _openai(request) else error_body(exc.name, exc.detail)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    name = _status_name(exc.status_code)
    if _openai(request):
        body = openai_error_body(
            _message(exc.detail), status=exc.status_code, code=_snake_case(name)
        )
    else:
        body = error_body(name, exc.detail)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _field_problem(problem: dict[str, Any]) -> dict[str, Any]:
    """Keep what a client needs (where, what, which kind); drop echoed input and context."""
    return {
        "loc": list(problem.get("loc", ())),
        "msg": problem.get("msg"),
        "type": problem.get("type"),
    }


def _openai_validation(problems: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's 400 for a malformed request: the first problem, its parameter named."""
    first = problems[0]
    param: str | None = _param(first["loc"])
    code: str | None
    if first["type"] == "json_invalid":
        message, code, param = "We could not parse the JSON body of your request.", None, None
    elif first["type"] == "missing":
        message, code = f"Missing required parameter: '{param}'.", "missing_required_parameter"
    else:
        reason = str(first["msg"]).removeprefix("Value error, ")
        message = f"Invalid value for '{param}': {reason}."
        code = "invalid_type" if str(first["type"]).endswith("_type") else "invalid_value"
    if len(problems) > 1:
        message += f" ({len(problems) - 1} more problem(s) in this request.)"
    return openai_error_body(message, status=400, code=code, param=param)


def _param(loc: list[Any]) -> str:
    """``["body", "messages", 0, "content"]`` -> ``messages[0].content``; the members of a
    union that pydantic names in ``loc`` (``str``, ``list[str]``, ``ContentPart``) are left
    out: OpenAI's parameters are lower-case names."""
    parts = loc[1:] if loc and loc[0] in _LOCATIONS else loc
    path = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}"
        for part in parts
        if isinstance(part, int) or not _union_member(str(part))
    )
    return path.lstrip(".") or "body"


def _union_member(part: str) -> bool:
    return "[" in part or part[:1].isupper() or part in {"str", "int", "float", "bool", "none"}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_field_problem(p) for p in exc.errors()]
    if _openai(request):
        return JSONResponse(_openai_validation(problems), status_code=400)
    return JSONResponse(error_body("ValidationError", problems), status_code=422)


class DependencyUnavailable(ServiceUnavailable):
    """The database, Redis, the Chroma server or a provider could not be reached."""


RETRY_AFTER_S = 5
_DEPENDENCY_NAMES = {"database": "database", "redis": "Redis", "service": "a backing service"}
# Where a dependency's connection error can surface unwrapped (see ragline.kit.outages).
_DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    sa_errors.DBAPIError,
    sa_errors.TimeoutError,
    psycopg.Error,
    redis_errors.RedisError,
    httpx.TransportError,
    OSError,
    EmbeddingError,  # a provider's connection error, wrapped
)


async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
    """A dependency that is down answers 503 (with ``Retry-After``), never 500; any other
    error of these types is unhandled (500)."""
    dependency = unavailable_dependency(exc)
    if dependency is None:
        return await _unhandled(request, exc)
    logger.warning(
        "%s %s: %s unavailable: %s: %s",
        *(request.method, request.url.path, dependency, type(exc).__name__, exc),
    )
    error = DependencyUnavailable(
        f"{_DEPENDENCY_NAMES[dependency].capitalize()} is unavailable; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
    return await _ragline_error(request, error)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    if unavailable_dependency(exc) is not None:  # wrapped in another error on its way up
        return await _dependency_error(request, exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _openai(request):
        return JSONResponse(openai_internal_error(), status_code=500)
    return JSONResponse(
        error_body("InternalServerError", "Internal server error."), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RaglineError, _ragline_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for error_type in _DEPENDENCY_ERRORS:
        app.add_exception_handler(error_type, _dependency_error)
    app.add_exception_handler(Exception, _unhandled)
