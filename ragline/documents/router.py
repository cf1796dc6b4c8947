"""Files of an assistant: thin HTTP layer over ``documents.service``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from ragline.auth.ratelimit import Limit
from ragline.deps import CurrentUser, SessionDep, rate_limited
from ragline.documents import service
from ragline.documents.multipart import read_upload_form
from ragline.documents.runtime import Documents
from ragline.documents.schemas import FileRead, IngestionSummary, UploadResponse
from ragline.errors import (
    BadRequest,
    ChatNotFound,
    FileNotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
    error_body,
)
from ragline.kit.pagination import Page, PageDep
from ragline.kit.responses import RATE_LIMITED, SIGNED_IN, VALIDATION, errors_for
from ragline.lifespan import app_state

router = APIRouter(tags=["documents"], responses=errors_for(SIGNED_IN))
# An upload: not multipart or no file (400), too large (413), a type not accepted (415),
# no file accepted (422, each file's reason listed), over the upload rate (429).
_UPLOAD = (
    ChatNotFound,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    VALIDATION,
    *RATE_LIMITED,
)
_FILE = errors_for(ChatNotFound, FileNotFound, VALIDATION)


def get_documents(request: Request) -> Documents:
    return app_state(request).documents


DocumentsDep = Annotated[Documents, Depends(get_documents)]


def _upload_body(max_files: int | None) -> dict[str, Any]:
    files: dict[str, Any] = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "minItems": 1,
        "description": "One or several files (field name `files` or `file`).",
    }
    if max_files is not None:
        files |= {"maxItems": max_files, "description": "The new version (field `files`)."}
    schema = {"type": "object", "properties": {"files": files}, "required": ["files"]}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


_UPLOAD_BODY = _upload_body(None)
_REPLACE_BODY = _upload_body(1)


@asynccontextmanager
async def _uploads(
    request: Request, documents: Documents, *, max_files: int
) -> AsyncIterator[list[UploadFile]]:
    """The request's files, each checked against ``UPLOAD_MAX_BYTES`` and the file-name
    limit while it streams (see ``documents.multipart``); their temporary files are
    removed on exit."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("Send the files as multipart/form-data.")
    form = await read_upload_form(
        request,
        max_files=max_files,
        max_file_bytes=documents.settings.upload_max_bytes,
        max_name=service.MAX_NAME,
    )
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise BadRequest("No file in the request (use the field name `files`).")
        yield files
    finally:
        await form.close()


@router.post(
    "/chats/{chat_id}/upload",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadResponse,
    openapi_extra=_UPLOAD_BODY,
    responses=errors_for(_UPLOAD),
    dependencies=[rate_limited(Limit.UPLOAD)],
)
async def upload(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    documents: DocumentsDep,
    chat_id: uuid.UUID,
) -> Response:
    """Accept files for ingestion; each gets its own result (accepted, duplicate, rejected)."""
    max_files = documents.settings.upload_max_files
    async with _uploads(request, documents, max_files=max_files) as uploads:
        results = await service.upload_files(
            session=session, owner=user, chat_id=chat_id, uploads=uploads, documents=documents
        )
    body = UploadResponse(files=results).model_dump(mode="json")
    if all(result.status == "rejected" for result in results):
        return JSONResponse(error_body("NoFileAccepted", body["files"]), status_code=422)
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)


@router.get(
    "/chats/{chat_id}/files",
    response_model=Page[FileRead],
    responses=errors_for(ChatNotFound, VALIDATION),
)
async def list_files(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, page: PageDep
) -> Page[FileRead]:
    return await service.list_files(session=session, owner=user, chat_id=chat_id, params=page)


@router.get(
    "/chats/{chat_id}/ingestion",
    response_model=IngestionSummary,
    responses=errors_for(ChatNotFound, VALIDATION),
)
async def ingestion_summary(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID
) -> IngestionSummary:
    """How many of the assistant's files are in each status, and chunk progress overall."""
    return await service.ingestion_summary(session=session, owner=user, chat_id=chat_id)


@router.get("/chats/{chat_id}/files/{file_id}", response_model=FileRead, responses=_FILE)
async def read_file(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, file_id: uuid.UUID
) -> FileRead:
    """Status (queued → parsing → embedding → indexed | failed), progress and error."""
    return await service.read_file(session=session, owner=user, chat_id=chat_id, file_id=file_id)


@router.put(
    "/chats/{chat_id}/files/{file_id}",
    response_model=FileRead,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_REPLACE_BODY,
    responses={
        200: {"model": FileRead, "description": "Same bytes: nothing to do."},
        **errors_for(_UPLOAD, FileNotFound, service.DuplicateFile),
    },
    dependencies=[rate_limited(Limit.UPLOAD)],
)
async def replace_file(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    documents: DocumentsDep,
    chat_id: uuid.UUID,
    file_id: uuid.UUID,
    response: Response,
) -> FileRead:
    """Upload a new version; unchanged chunks keep their vectors."""
    async with _uploads(request, documents, max_files=1) as uploads:
        file, started = await service.replace_file(
            session=session,
            owner=user,
            chat_id=chat_id,
            file_id=file_id,
            upload=uploads[0],
            documents=documents,
        )
    if not started:
        response.status_code = status.HTTP_200_OK
    return file


@router.delete(
    "/chats/{chat_id}/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_FILE
)
async def delete_file(
    user: CurrentUser,
    session: SessionDep,
    documents: DocumentsDep,
    chat_id: uuid.UUID,
    file_id: uuid.UUID,
) -> Response:
    """Remove the file's vectors, keyword rows, stored bytes and record."""
    await service.delete_file(
        session=session, owner=user, chat_id=chat_id, file_id=file_id, documents=documents
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
