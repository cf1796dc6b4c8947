"""Group ids for callers whose token overflowed its ``groups`` claim (Entra's groups
overage: more groups than a token carries). Asked of Microsoft Graph once with ragline's
own application token (client credentials; needs the ``GroupMember.Read.All`` application
permission), then cached in Redis for ``GRAPH_CACHE_SECONDS``.
"""

from __future__ import annotations

import json
import logging

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ragline.auth.graph import GraphClient, GraphUnavailable
from ragline.auth.tokens import TenantKeys
from ragline.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

GROUPS_PREFIX = "ragline:groups:"


class GroupResolver:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        keys: TenantKeys,
        graph: GraphClient,
        redis: Redis,
        client_id: str,
        client_secret: str,
        graph_base_url: str,
        ttl_seconds: int,
    ) -> None:
        self._http = http
        self._keys = keys
        self._graph = graph
        self._redis = redis
        self._client = (client_id, client_secret)
        self._scope = graph_base_url.rstrip("/") + "/.default"
        self._ttl = ttl_seconds

    async def of_user(self, *, tenant_id: str, object_id: str) -> list[str]:
        key = f"{GROUPS_PREFIX}{tenant_id}:{object_id}"
        try:
            cached = await self._redis.get(key)
        except (RedisError, OSError) as exc:
            logger.warning("group cache unavailable: %s", exc)
            cached = None
        if cached is not None:
            return [str(g) for g in json.loads(cached)]
        try:
            groups = await self._graph.group_ids(await self._app_token(), user=object_id)
        except GraphUnavailable as exc:
            logger.warning("could not read the caller's groups from Graph: %s", exc)
            raise ServiceUnavailable("Your groups could not be read from Microsoft Graph.") from exc
        await self.remember(tenant_id=tenant_id, object_id=object_id, groups=groups)
        return groups

    async def remember(self, *, tenant_id: str, object_id: str, groups: list[str]) -> None:
        try:
            await self._redis.set(
                f"{GROUPS_PREFIX}{tenant_id}:{object_id}", json.dumps(groups), ex=self._ttl
            )
        except (RedisError, OSError) as exc:
            logger.warning("could not cache groups: %s", exc)

    async def _app_token(self) -> str:
        metadata = await self._keys.metadata()
        client_id, client_secret = self._client
        try:
            response = await self._http.post(
                metadata.token_endpoint,
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "scope": self._scope,
                },
            )
            response.raise_for_status()
            return str(response.json()["access_token"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise GraphUnavailable(f"application token: {exc}") from exc
