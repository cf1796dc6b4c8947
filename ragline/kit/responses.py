"""The error answers each route declares in the OpenAPI document, in the one error shape.

A route names the errors it can raise (``responses=errors_for(ChatNotFound, VALIDATION)``);
a router names those of every route it holds (``APIRouter(responses=errors_for(*SIGNED_IN))``).
Each status gets the JSON error body's schema and a description naming the errors behind it.
Under ``/v1`` the body is OpenAI's (``errors_for(..., openai=True)``), and its validation
errors are 400, as on OpenAI.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from ragline.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    RaglineError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

ResponsesDoc = dict[int | str, dict[str, Any]]
Cause = type[RaglineError] | int

VALIDATION = 422
"""FastAPI's request validation (``ValidationError``: path, query or body); 400 on ``/v1``."""

SIGNED_IN: tuple[Cause, ...] = (Unauthorized, Forbidden, ServiceUnavailable)
"""Every route that needs the caller: no or an invalid credential (401); not allowed, or a
read-only API key that tries to write (403); the identity provider or Graph down (503)."""

RATE_LIMITED: tuple[Cause, ...] = (TooManyRequests,)
BODY_LIMIT: tuple[Cause, ...] = (PayloadTooLarge,)
"""Any request body over the body-size limit (``kit.body_limit``)."""
JSON_BODY: tuple[Cause, ...] = (BadRequest, VALIDATION, PayloadTooLarge)
"""A JSON body: not text FastAPI can decode (400), invalid (422), too large (413)."""

_MEANINGS = {
    400: "The request is malformed",
    401: "No credential, or an invalid, expired or revoked one",
    403: "Signed in, but not allowed to do this",
    404: "No such object for this user",
    409: "Conflicts with the current state",
    413: "The request body or a file is too large",
    415: "Unsupported media type",
    422: "Invalid parameters or body",
    429: "Too many requests; retry after Retry-After seconds",
    502: "The language model failed mid-answer",
    503: "A service it needs is down (identity provider, language model, store)",
}


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer outside ``/v1``."""

    error: str = Field(description="The error's name, e.g. ChatNotFound or ValidationError.")
    detail: Any = Field(
        description="A message; for ValidationError the list of field problems "
        "({loc, msg, type}); for NoFileAccepted each file's result."
    )


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorBody(BaseModel):
    """Every 4xx/5xx answer under ``/v1``, in OpenAI's shape."""

    error: OpenAIErrorDetail


def _name(cause: Cause) -> str:
    if isinstance(cause, int):
        return "ValidationError" if cause == VALIDATION else HTTPStatus(cause).phrase
    return cause.__name__


def _status(cause: Cause, *, openai: bool) -> int:
    if isinstance(cause, int):
        return 400 if openai and cause == VALIDATION else cause
    return cause.status_code


def errors_for(*causes: Cause | Iterable[Cause], openai: bool = False) -> ResponsesDoc:
    """``responses=`` for the errors ``causes`` (error classes, or statuses such as
    :data:`VALIDATION`): one entry per status, the error body as its schema."""
    names: dict[int, list[str]] = {}
    for cause in _flatten(causes):
        named = names.setdefault(_status(cause, openai=openai), [])
        if _name(cause) not in named:
            named.append(_name(cause))
    model = OpenAIErrorBody if openai else ErrorBody
    return {
        status: {"model": model, "description": _describe(status, named)}
        for status, named in sorted(names.items())
    }


def _flatten(causes: Iterable[Cause | Iterable[Cause]]) -> list[Cause]:
    flat: list[Cause] = []
    for cause in causes:
        if isinstance(cause, int | type):
            flat.append(cause)
        else:
            flat.extend(cause)
    return flat


def _describe(status: int, names: list[str]) -> str:
    meaning = _MEANINGS.get(status) or HTTPStatus(status).phrase
    return f"{meaning}: {', '.join(names)}."


def drop_default_validation(document: dict[str, Any]) -> dict[str, Any]:
    """Remove the 422 that FastAPI declares by itself (its own ``HTTPValidationError`` body,
    which ragline never sends) from the routes that declare no 422: each route declares its
    own validation errors with :func:`errors_for`. In place, and idempotent."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document
