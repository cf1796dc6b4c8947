"""Typed errors that carry their HTTP status, rendered in one JSON shape.

Every 4xx/5xx answer is ``{"error": "<Name>", "detail": ...}``; validation errors put
the list of field problems in ``detail``. Clients never see a stack trace.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class RaglineError(Exception):
    """Base of every error a client may see. Subclasses set ``status_code``."""

    status_code: int = 500

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


def _status_name(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.title().replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"


async def _ragline_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RaglineError)
    return JSONResponse(
        error_body(exc.name, exc.detail), status_code=exc.status_code, headers=exc.headers
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        error_body(_status_name(exc.status_code), exc.detail),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _field_problem(problem: dict[str, Any]) -> dict[str, Any]:
    """Keep what a client needs (where, what, which kind); drop echoed input and context."""
    return {
        "loc": list(problem.get("loc", ())),
        "msg": problem.get("msg"),
        "type": problem.get("type"),
    }


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_field_problem(p) for p in exc.errors()]
    return JSONResponse(error_body("ValidationError", problems), status_code=422)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        error_body("InternalServerError", "Internal server error."), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RaglineError, _ragline_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled)
