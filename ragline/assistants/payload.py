"""Request bodies for create/update: JSON, or multipart with a ``chat`` JSON field and an
optional avatar ``file`` (the replaced system's form). One parser serves both routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from ragline.assistants.avatars import Avatar, process_avatar, read_limited
from ragline.assistants.schemas import ChatCreate, ChatUpdate
from ragline.errors import BadRequest, UnsupportedMediaType
from ragline.lifespan import app_state

T = TypeVar("T", bound=BaseModel)
MAX_JSON_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ChatPayload(Generic[T]):
    data: T
    avatar: Avatar | None


def _invalid(exc: ValidationError, *prefix: str) -> RequestValidationError:
    return RequestValidationError(
        [{**e, "loc": (*prefix, *e["loc"])} for e in exc.errors(include_url=False)]
    )


async def _parse(request: Request, model: type[T]) -> ChatPayload[T]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    settings = app_state(request).settings
    if content_type == "application/json":
        body = await request.body()
        if len(body) > MAX_JSON_BYTES:
            raise BadRequest(f"JSON body is larger than {MAX_JSON_BYTES} bytes.")
        try:
            return ChatPayload(model.model_validate_json(body or b"null"), None)
        except ValidationError as exc:
            raise _invalid(exc, "body") from exc
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            raw = form.get("chat")
            if not isinstance(raw, str):
                raise RequestValidationError(
                    [
                        {
                            "loc": ("body", "chat"),
                            "msg": "Field required (JSON text)",
                            "type": "missing",
                        }
                    ]
                )
            try:
                data = model.model_validate_json(raw)
            except ValidationError as exc:
                raise _invalid(exc, "body", "chat") from exc
            upload = form.get("file")
            avatar = None
            if isinstance(upload, UploadFile):
                content = read_limited(upload.file, limit=settings.avatar_max_bytes)
                avatar = process_avatar(content, max_side=settings.avatar_max_side)
            return ChatPayload(data, avatar)
    raise UnsupportedMediaType("Send application/json, or multipart/form-data with a 'chat' field.")


async def create_payload(request: Request) -> ChatPayload[ChatCreate]:
    return await _parse(request, ChatCreate)


async def update_payload(request: Request) -> ChatPayload[ChatUpdate]:
    return await _parse(request, ChatUpdate)


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """Document both accepted bodies, since the parser reads the request itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["chat"],
                        "properties": {
                            "chat": {"type": "string", "description": f"{model.__name__} as JSON"},
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "Avatar: PNG, JPEG, WebP or GIF; re-encoded.",
                            },
                        },
                    }
                },
            },
        }
    }
