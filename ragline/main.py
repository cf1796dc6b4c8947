"""``create_app()``: settings, lifespan, middleware, error handlers, routers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from ragline import __version__
from ragline.admin.router import router as admin_router
from ragline.api_keys.router import router as api_keys_router
from ragline.assistants.router import router as assistants_router
from ragline.auth.router import router as auth_router
from ragline.chat.router import router as chat_router
from ragline.config import Settings, get_settings
from ragline.documents.router import router as documents_router
from ragline.errors import install_error_handlers
from ragline.favourites.router import router as favourites_router
from ragline.health.router import router as health_router
from ragline.kit.body_limit import BodyLimit, BodyLimitMiddleware
from ragline.kit.responses import drop_default_validation
from ragline.lifespan import lifespan_for
from ragline.openai_api.router import router as openai_router

DOCS_STATIC_URL = "/static/docs"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.refuse_unsafe()
    # Swagger UI and ReDoc assets are served by ragline itself: /docs works offline.
    app = FastAPIOffline(
        title="ragline",
        version=__version__,
        description="Self-hostable RAG backend: assistants over your own files.",
        lifespan=lifespan_for(settings),
        static_url=DOCS_STATIC_URL,
    )
    if settings.frontend_url:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[settings.frontend_url.rstrip("/")],
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    upload_limit = BodyLimit(settings.upload_max_request_bytes, "UPLOAD_MAX_REQUEST_BYTES")
    other_limit = BodyLimit(settings.avatar_max_bytes + 1024 * 1024, "AVATAR_MAX_BYTES + 1 MiB")
    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=lambda path: (
            upload_limit if "/upload" in path or "/files/" in path else other_limit
        ),
    )
    install_error_handlers(app)
    routers = (
        health_router,
        auth_router,
        assistants_router,
        documents_router,
        favourites_router,
        api_keys_router,
        chat_router,
        openai_router,
        admin_router,
    )
    for router in routers:
        app.include_router(router)
    document = app.openapi  # FastAPI's, which caches the document it builds
    app.openapi = lambda: drop_default_validation(document())  # type: ignore[method-assign]
    return app
