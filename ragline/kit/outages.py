"""Is this error a dependency being down (database, Redis, Chroma server, a model
provider), rather than a fault of the request or of the data?

One classifier for the two places that must tell: the API answers 503 instead of 500
(``ragline.errors``), and an ingestion job waits for the dependency instead of spending one
of the file's attempts (``ragline.documents.jobs``). The exception and the errors it was
raised from (``__cause__``, ``__context__``) are looked at, since wrappers such as
``EmbeddingError`` or the OpenAI client's ``APIConnectionError`` keep the transport error
they were raised from.
"""

from __future__ import annotations

import httpx
import psycopg
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

_MAX_DEPTH = 8
# Transport errors that mean "could not reach it" or "it went away", not "it refused".
_HTTP_DOWN = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


def unavailable_dependency(exc: BaseException) -> str | None:
    """``"database"``, ``"redis"`` or ``"service"`` (an HTTP dependency: Chroma server,
    model provider) when ``exc`` or an error it came from says that dependency is
    unreachable or dropped the connection; ``None`` otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_DEPTH:
        seen.add(id(current))
        found = _classify(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _classify(exc: BaseException) -> str | None:
    if isinstance(exc, sa_errors.DBAPIError):
        # A dropped or refused connection (pg_terminate_backend, a restart, a failover):
        # SQLAlchemy marks it invalidated, psycopg raises OperationalError (AdminShutdown,
        # ...). SQLite's OperationalError is not an outage (a missing table, a bad file).
        if exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError):
            return "database"
        return None
    if isinstance(exc, psycopg.OperationalError):  # psycopg_pool's PoolTimeout too
        return "database"
    if isinstance(exc, sa_errors.TimeoutError):  # no pooled connection came free
        return "database"
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return "redis"
    if isinstance(exc, _HTTP_DOWN):
        return "service"
    if isinstance(exc, ConnectionError):  # refused, reset, aborted (the OS's own)
        return "service"
    return None
