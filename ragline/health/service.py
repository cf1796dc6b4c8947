"""Readiness: the dependencies answer (else 503: take this instance out of the load
balancer); the model providers and stalled ingestion are reported as ``degraded``
without failing it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ragline.health.checks import run_check
from ragline.health.dependencies import dependency_checks
from ragline.health.ingestion import ingestion_check
from ragline.health.models import model_checks
from ragline.lifespan import AppState


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: dict[str, dict[str, Any]]


async def readiness(state: AppState) -> Readiness:
    """All checks at once, each bounded by ``CHECK_TIMEOUT_S``."""
    checks = dependency_checks(state) | model_checks(state)
    checks["ingestion"] = ingestion_check(state)
    results = await asyncio.gather(*(run_check(check) for check in checks.values()))
    outcome = dict(zip(checks, results, strict=True))
    ready = all(outcome[name]["status"] == "ok" for name, c in checks.items() if c.required)
    return Readiness(ready=ready, checks=outcome)
