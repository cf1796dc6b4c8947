"""One readiness check: a probe run within ``CHECK_TIMEOUT_S``, reported as a small dict.

The body of ``/readyz`` is public, so a failure is reported by its exception's type name
only (no host names, URLs or paths), except :class:`CheckFailed`, whose message a check
writes for the reader.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

CHECK_TIMEOUT_S = 2.0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One CA bundle for the HTTP clients the checks make per call: a client made without
    it loads the bundle itself, ~30 ms of CPU with the event loop blocked (measured)."""
    return httpx.create_ssl_context()


class CheckFailed(Exception):
    """The dependency answered, but not as it must (e.g. the configured model is missing)."""


@dataclass(frozen=True, slots=True)
class Check:
    probe: Callable[[], Awaitable[object]]
    required: bool = True
    """A required check that fails makes the instance not ready (503); any other is
    ``degraded`` and only reported."""
    details: Mapping[str, object] = field(default_factory=dict)
    """Fields shown with the result whatever it is (backend, provider, model)."""


async def run_check(check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await check.probe()
    except Exception as exc:
        reason = str(exc) if isinstance(exc, CheckFailed) else type(exc).__name__
        status = "down" if check.required else "degraded"
        return {"status": status, **check.details, "error": reason}
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return {"status": "ok", **check.details, "latency_ms": latency_ms}
