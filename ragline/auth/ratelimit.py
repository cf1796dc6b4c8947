"""Per-user rate limits on chat, upload and sign-in (the ``limits`` library, moving window).

Counters live in Redis when it is configured (shared by every ragline process), else in
memory (the embedded default is one process). When Redis is down the limits fail open: a
request is let through and a warning logged, since refusing every chat because a counter
is unavailable would be worse than a burst.
"""

from __future__ import annotations

import logging
import math
import time
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from ragline.config import Settings
from ragline.errors import TooManyRequests

logger = logging.getLogger(__name__)


class Limit(StrEnum):
    CHAT = "chat"
    UPLOAD = "upload"
    SIGNIN = "signin"


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        storage: Storage
        if settings.redis_url:
            storage = RedisStorage(
                settings.redis_url.replace("redis://", "async+redis://", 1),
                implementation="redispy",
                key_prefix="ragline:ratelimit",
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
            )
        else:
            storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        rules = {
            Limit.CHAT: settings.rate_limit_chat,
            Limit.UPLOAD: settings.rate_limit_upload,
            Limit.SIGNIN: settings.rate_limit_signin,
        }
        self._items: dict[Limit, RateLimitItem] = {
            kind: parse(rule) for kind, rule in rules.items() if rule.strip()
        }

    async def hit(self, kind: Limit, who: str) -> None:
        """Count one request of ``who``; ``TooManyRequests`` (429, Retry-After) over the limit."""
        item = self._items.get(kind)
        if item is None:
            return
        try:
            if await self._limiter.hit(item, kind.value, who):
                return
            stats = await self._limiter.get_window_stats(item, kind.value, who)
        except Exception as exc:  # the storage's own errors: Redis down means fail open
            logger.warning("rate limit %s not applied (counter store unavailable): %s", kind, exc)
            return
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            f"Too many {kind.value} requests; retry in {retry} s.",
            headers={"Retry-After": str(retry)},
        )
