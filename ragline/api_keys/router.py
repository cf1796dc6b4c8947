from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from ragline.api_keys import service
from ragline.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from ragline.deps import CurrentUser, SessionDep
from ragline.kit.responses import JSON_BODY, SIGNED_IN, VALIDATION, errors_for

router = APIRouter(prefix="/api-keys", tags=["api-keys"], responses=errors_for(SIGNED_IN))


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=errors_for(service.TooManyApiKeys, JSON_BODY),
)
async def create_api_key(
    user: CurrentUser, session: SessionDep, data: ApiKeyCreate
) -> ApiKeyCreated:
    """A new key that acts as you on every route. ``key`` is shown this once only."""
    key, raw_key = await service.create_key(session=session, user=user, data=data)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=raw_key)


@router.get("", response_model=list[ApiKeyOut])
async def list_api_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyOut]:
    """Your unrevoked keys, newest first, without their secrets."""
    keys = await service.list_keys(session=session, user=user)
    return [ApiKeyOut.model_validate(key) for key in keys]


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors_for(service.ApiKeyNotFound, VALIDATION),
)
async def revoke_api_key(user: CurrentUser, session: SessionDep, key_id: uuid.UUID) -> Response:
    """Revoke a key at once. 404 for an unknown or already revoked key."""
    await service.revoke_key(session=session, user=user, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
