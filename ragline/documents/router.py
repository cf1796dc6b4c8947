"""Files of an assistant: thin HTTP layer over ``documents.service``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from ragline.auth.ratelimit import Limit
from ragline.deps import CurrentUser, SessionDep, rate_limited
from ragline.documents import service
from ragline.documents.runtime import Documents
from ragline.documents.schemas import FileRead, IngestionSummary, UploadResponse
from ragline.errors import BadRequest, error_body
from ragline.kit.pagination import Page, PageDep
from ragline.lifespan import app_state

router = APIRouter(tags=["documents"])


def get_documents(request: Request) -> Documents:
    return app_state(request).documents


DocumentsDep = Annotated[Documents, Depends(get_documents)]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or several files (field name `files` or `file`).",
                        }
                    },
                }
            }
        },
    }
}


async def _uploads(request: Request, documents: Documents, *, max_files: int) -> list[UploadFile]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("Send the files as multipart/form-data.")
    form = await request.form(max_files=max_files, max_fields=max_files + 5)
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise BadRequest("No file in the request (use the field name `files`).")
    return files


@router.post(
    "/chats/{chat_id}/upload",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadResponse,
    openapi_extra=_UPLOAD_BODY,
    responses={422: {"description": "No file was accepted; each file's reason is listed."}},
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
    uploads = await _uploads(request, documents, max_files=documents.settings.upload_max_files)
    results = await service.upload_files(
        session=session, owner=user, chat_id=chat_id, uploads=uploads, documents=documents
    )
    body = UploadResponse(files=results).model_dump(mode="json")
    if all(result.status == "rejected" for result in results):
        return JSONResponse(error_body("NoFileAccepted", body["files"]), status_code=422)
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)


@router.get("/chats/{chat_id}/files", response_model=Page[FileRead])
async def list_files(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, page: PageDep
) -> Page[FileRead]:
    return await service.list_files(session=session, owner=user, chat_id=chat_id, params=page)


@router.get("/chats/{chat_id}/ingestion", response_model=IngestionSummary)
async def ingestion_summary(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID
) -> IngestionSummary:
    """How many of the assistant's files are in each status, and chunk progress overall."""
    return await service.ingestion_summary(session=session, owner=user, chat_id=chat_id)


@router.get("/chats/{chat_id}/files/{file_id}", response_model=FileRead)
async def read_file(
    user: CurrentUser, session: SessionDep, chat_id: uuid.UUID, file_id: uuid.UUID
) -> FileRead:
    """Status (queued → parsing → embedding → indexed | failed), progress and error."""
    return await service.read_file(session=session, owner=user, chat_id=chat_id, file_id=file_id)


@router.put(
    "/chats/{chat_id}/files/{file_id}",
    response_model=FileRead,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_UPLOAD_BODY,
    responses={200: {"model": FileRead, "description": "Same bytes: nothing to do."}},
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
    uploads = await _uploads(request, documents, max_files=1)
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


@router.delete("/chats/{chat_id}/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
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
