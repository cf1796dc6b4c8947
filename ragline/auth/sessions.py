"""Server-side browser sessions in Redis, and the short-lived state of a sign-in.

The cookie holds only a random opaque id (256 bits); Redis keys hold its SHA-256, so a
leak of the Redis keyspace does not hand out live cookies. A session records who signed
in (user row, tenant, object id, name, email, groups, roles) and when; no Entra token is
kept. Idle timeout: the key's TTL, renewed on use; absolute timeout: the creation time,
checked on every read. Every sign-in creates a new id (no fixation). Redis unavailable
means no session can be checked: callers answer 401 (fail closed), never 500.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

SESSION_PREFIX = "ragline:session:"
SIGNIN_PREFIX = "ragline:signin:"
SIGNIN_TTL_SECONDS = 600


class SessionStoreUnavailable(Exception):
    """Redis could not be reached or answered an error."""


@dataclass(frozen=True, slots=True)
class SessionData:
    user_id: str
    tenant_id: str
    subject: str
    name: str | None
    email: str | None
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class PendingSignin:
    """What /redirect needs to finish a sign-in started by /signin."""

    code_verifier: str
    nonce: str
    return_to: str | None = None


def _key(prefix: str, token: str) -> str:
    return prefix + hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: Redis, *, idle_seconds: int, absolute_seconds: float) -> None:
        self._redis = redis
        self._idle = idle_seconds
        self._absolute = absolute_seconds

    async def create(self, data: SessionData) -> str:
        session_id = secrets.token_urlsafe(32)
        await self._call(
            self._redis.set(
                _key(SESSION_PREFIX, session_id), json.dumps(asdict(data)), ex=self._idle
            )
        )
        return session_id

    async def get(self, session_id: str) -> SessionData | None:
        """The live session, its idle timer renewed; None when unknown or expired."""
        key = _key(SESSION_PREFIX, session_id)
        raw = await self._call(self._redis.get(key))
        if raw is None:
            return None
        data = SessionData(**json.loads(raw))
        remaining = data.created_at + self._absolute - time.time()
        if remaining <= 0:
            await self._call(self._redis.delete(key))
            return None
        await self._call(self._redis.expire(key, max(1, int(min(self._idle, remaining)))))
        return data

    async def delete(self, session_id: str) -> None:
        await self._call(self._redis.delete(_key(SESSION_PREFIX, session_id)))

    async def start_signin(self, state: str, pending: PendingSignin) -> None:
        await self._call(
            self._redis.set(
                _key(SIGNIN_PREFIX, state), json.dumps(asdict(pending)), ex=SIGNIN_TTL_SECONDS
            )
        )

    async def finish_signin(self, state: str) -> PendingSignin | None:
        """The sign-in started with ``state``, at most once (GETDEL): a replayed or forged
        state finds nothing."""
        raw = await self._call(self._redis.getdel(_key(SIGNIN_PREFIX, state)))
        return PendingSignin(**json.loads(raw)) if raw is not None else None

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise SessionStoreUnavailable(str(exc)) from exc
