"""The identity pieces, built once in the lifespan from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from ragline.auth.entra import EntraIdentity
from ragline.auth.graph import GraphClient, PhotoCache
from ragline.auth.groups import GroupResolver
from ragline.auth.identity import DevelopmentIdentity, IdentityProvider
from ragline.auth.ratelimit import RateLimits
from ragline.auth.sessions import SessionStore
from ragline.auth.signin import SigninServices
from ragline.auth.tokens import TenantKeys
from ragline.config import Settings, UnsafeConfigurationError

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class AuthRuntime:
    identity: IdentityProvider
    signin: SigninServices | None  # None: no Entra settings (development identity)
    rate_limits: RateLimits
    http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.http.aclose()


def discovery_url(settings: Settings) -> str:
    return (
        f"{settings.entra_authority_host.rstrip('/')}/{settings.tenant_id}"
        "/v2.0/.well-known/openid-configuration"
    )


def open_auth(settings: Settings, redis: Redis | None) -> AuthRuntime:
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
    rate_limits = RateLimits(settings)
    if not settings.entra_configured:
        if settings.is_production:  # Settings.refuse_unsafe says so first; belt and braces
            raise UnsafeConfigurationError("production needs Entra ID settings")
        return AuthRuntime(DevelopmentIdentity(), None, rate_limits, http)
    if redis is None:
        raise UnsafeConfigurationError("Entra ID sign-in needs REDIS_HOST (sessions)")
    keys = TenantKeys(
        http,
        discovery_url=discovery_url(settings),
        refresh_floor_seconds=settings.jwks_refresh_floor_seconds,
    )
    sessions = SessionStore(
        redis,
        idle_seconds=settings.session_idle_minutes * 60,
        absolute_seconds=settings.session_absolute_hours * 3600,
    )
    graph = GraphClient(http, base_url=settings.graph_base_url)
    groups = GroupResolver(
        http=http,
        keys=keys,
        graph=graph,
        redis=redis,
        client_id=settings.client_id or "",
        client_secret=settings.client_secret or "",
        graph_base_url=settings.graph_base_url,
        ttl_seconds=settings.graph_cache_seconds,
    )
    signin = SigninServices(
        settings=settings,
        http=http,
        keys=keys,
        sessions=sessions,
        graph=graph,
        photos=PhotoCache(redis, ttl_seconds=settings.graph_cache_seconds),
        groups=groups,
    )
    identity = EntraIdentity(settings=settings, keys=keys, sessions=sessions, groups=groups)
    return AuthRuntime(identity, signin, rate_limits, http)
