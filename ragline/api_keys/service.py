"""API keys: created and revoked by their owner, checked on every request that presents one.

A key is ``rl_`` + 43 URL-safe characters (256 random bits). It is returned once, by
``create_key``; the database keeps its SHA-256 digest and its first characters only.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ragline.api_keys.repository import ApiKeyRepository, find_by_hash
from ragline.api_keys.schemas import ApiKeyCreate
from ragline.errors import NotFound, RaglineError
from ragline.models import ApiKey, User
from ragline.models.base import utcnow

API_KEY_PREFIX = "rl_"  # tells keys from JWTs (which start with "eyJ")
MAX_ACTIVE_KEYS = 50
# What listings show: the prefix and 8 characters of the secret ("rl_AbCd1234").
SHOWN_CHARACTERS = len(API_KEY_PREFIX) + 8
# Longer than any key we issue: such a credential is refused before it is hashed.
_MAX_KEY_LENGTH = 128
# ``last_used_at`` is written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyNotFound(NotFound):
    def default_detail(self) -> str:
        return "No such API key."


class TooManyApiKeys(RaglineError):
    status_code = 409

    def default_detail(self) -> str:
        return f"At most {MAX_ACTIVE_KEYS} active API keys per user; revoke one first."


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


async def create_key(
    *, session: AsyncSession, user: User, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """A new key for ``user`` and the key itself, which is not stored and not shown again."""
    repository = ApiKeyRepository(session, owner_id=user.id)
    await repository.lock_owner()
    if await repository.count_active(utcnow()) >= MAX_ACTIVE_KEYS:
        raise TooManyApiKeys()
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        owner_id=user.id,
        name=data.name,
        scope=data.scope,
        expires_at=data.expires_at,
        prefix=raw_key[:SHOWN_CHARACTERS],
        key_hash=hash_key(raw_key),
    )
    session.add(key)
    await session.flush()
    return key, raw_key


async def list_keys(*, session: AsyncSession, user: User) -> Sequence[ApiKey]:
    """The user's unrevoked keys, newest first; expired ones too, until revoked."""
    return await ApiKeyRepository(session, owner_id=user.id).listing()


async def revoke_key(*, session: AsyncSession, user: User, key_id: uuid.UUID) -> None:
    """Revoke one of the user's keys. A revoked key is gone from the user's view: revoking
    it again is ``ApiKeyNotFound``, as is another user's key."""
    key = await ApiKeyRepository(session, owner_id=user.id).get_unrevoked(key_id)
    if key is None:
        raise ApiKeyNotFound()
    key.revoked_at = utcnow()
    await session.flush()


async def authenticate_key(*, session: AsyncSession, raw_key: str) -> tuple[User, ApiKey] | None:
    """The owner and the key for a valid, unrevoked, unexpired key; None for anything else.

    The key is found by its digest, never compared as a string: timing can reveal at most
    how much of the digest of a guess matches a stored digest, which says nothing about
    any key. ``last_used_at`` is written through the caller's session (committed with the
    request) and at most once per ``LAST_USED_RESOLUTION``.
    """
    if not raw_key.startswith(API_KEY_PREFIX) or len(raw_key) > _MAX_KEY_LENGTH:
        return None
    found = await find_by_hash(session, hash_key(raw_key))
    if found is None:
        return None
    key, user = found
    now = utcnow()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        await session.flush()
    return user, key
