"""Microsoft Graph, called only at sign-in with the user's delegated token: the profile
photo and, when the ID token's ``groups`` claim overflowed, the user's group ids. Both are
cached in Redis (``GRAPH_CACHE_SECONDS``); requests never call Graph, and the token is not
kept after sign-in.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

PHOTO_PREFIX = "ragline:photo:"
NO_PHOTO = b"-"
MAX_PHOTO_BYTES = 4 * 1024 * 1024
MAX_GROUP_PAGES = 50


class GraphUnavailable(Exception):
    """Graph could not be asked (network, 5xx, or an unexpected answer)."""


@dataclass(frozen=True, slots=True)
class Photo:
    content: bytes
    media_type: str


class GraphClient:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + "/v1.0"

    async def photo(self, token: str) -> Photo | None:
        """The signed-in user's photo, or None when they have none (Graph answers 404)."""
        try:
            response = await self._http.get(f"{self._base}/me/photo/$value", headers=_auth(token))
        except httpx.HTTPError as exc:
            raise GraphUnavailable(str(exc)) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200 or len(response.content) > MAX_PHOTO_BYTES:
            raise GraphUnavailable(f"photo: HTTP {response.status_code}")
        media_type = response.headers.get("content-type", "image/jpeg").split(";")[0]
        if not media_type.startswith("image/"):
            raise GraphUnavailable(f"photo: unexpected content type {media_type}")
        return Photo(content=response.content, media_type=media_type)

    async def group_ids(self, token: str, *, user: str = "me") -> list[str]:
        """Ids of the groups a user is a direct member of: ``/me/memberOf`` with a delegated
        token, ``/users/{object id}/memberOf`` with an application token; paged."""
        path = "me" if user == "me" else f"users/{quote(user, safe='')}"
        url: str | None = f"{self._base}/{path}/memberOf?$select=id"
        groups: list[str] = []
        for _ in range(MAX_GROUP_PAGES):
            if url is None:
                return groups
            try:
                response = await self._http.get(url, headers=_auth(token))
                response.raise_for_status()
                page = response.json()
            except (httpx.HTTPError, json.JSONDecodeError) as exc:
                raise GraphUnavailable(f"memberOf: {exc}") from exc
            groups += [
                str(item["id"])
                for item in page.get("value", [])
                if item.get("@odata.type", "#microsoft.graph.group") == "#microsoft.graph.group"
            ]
            url = page.get("@odata.nextLink")
        raise GraphUnavailable("memberOf: too many pages")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class PhotoCache:
    """Photos by user id in Redis; ``NO_PHOTO`` remembers that the user has none."""

    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def put(self, user_id: str, photo: Photo | None) -> None:
        value = (
            NO_PHOTO
            if photo is None
            else json.dumps(
                {"type": photo.media_type, "data": base64.b64encode(photo.content).decode()}
            ).encode()
        )
        try:
            await self._redis.set(PHOTO_PREFIX + user_id, value, ex=self._ttl)
        except (RedisError, OSError) as exc:
            logger.warning("could not cache the profile photo: %s", exc)

    async def get(self, user_id: str) -> Photo | None:
        """The cached photo; None when the user has none or it is not cached."""
        raw = await self._redis.get(PHOTO_PREFIX + user_id)
        if raw is None or raw == NO_PHOTO:
            return None
        document = json.loads(raw)
        return Photo(content=base64.b64decode(document["data"]), media_type=document["type"])
