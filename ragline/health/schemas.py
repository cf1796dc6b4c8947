from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class CheckResult(BaseModel):
    """One dependency or provider; further fields per check (``backend``, ``provider``,
    ``model``)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "down", "degraded"]
    latency_ms: float | None = None
    error: str | None = None


class ReadinessBody(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]
