from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ragline.health.schemas import ReadinessBody
from ragline.health.service import readiness
from ragline.lifespan import app_state

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessBody,
    responses={503: {"model": ReadinessBody, "description": "A dependency is down."}},
)
async def readyz(request: Request) -> JSONResponse:
    """The database, Redis (when configured), the ingestion queue and the Chroma server
    (when configured) answer: 200, else 503. The chat and embedding models (``degraded``
    when unreachable) and ingestion (``degraded`` when files wait untouched for over a
    minute: no worker running) are reported without failing readiness."""
    result = await readiness(app_state(request))
    body: dict[str, Any] = {
        "status": "ready" if result.ready else "not_ready",
        "checks": result.checks,
    }
    return JSONResponse(body, status_code=200 if result.ready else 503)
