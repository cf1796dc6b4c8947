"""Callers that present ``Authorization: Bearer …``: API keys (``rl_…``) with either provider."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ragline.auth.identity import USER, AuthMethod, Principal
from ragline.errors import Unauthorized

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def bearer(request: Request) -> str | None:
    """The bearer credential, None without an Authorization header; 401 when malformed."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or " " in value:
        raise Unauthorized(
            "The Authorization header must be 'Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return value


def is_api_key(raw: str) -> bool:
    from ragline.api_keys.service import API_KEY_PREFIX

    return raw.startswith(API_KEY_PREFIX)


async def api_key_principal(db: AsyncSession, raw: str) -> Principal:
    """The owner of a valid API key; 401 for anything else (also for tokens the configured
    provider cannot check, e.g. an Entra token without Entra settings)."""
    from ragline.api_keys.service import authenticate_key

    if not is_api_key(raw):
        raise Unauthorized("Unknown bearer credential.", headers=BEARER_CHALLENGE)
    found = await authenticate_key(session=db, raw_key=raw)
    if found is None:
        raise Unauthorized("Invalid, revoked or expired API key.", headers=BEARER_CHALLENGE)
    user, key = found
    return Principal(
        tenant_id=user.tenant_id,
        subject=user.subject,
        name=user.name,
        email=user.email,
        roles=frozenset({USER}),
        method=AuthMethod.API_KEY,
        read_only=str(key.scope) == "read",
        user_id=str(user.id),
    )
