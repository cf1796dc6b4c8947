"""Single calls to every operation of ragline's OpenAPI document, aimed at real objects,
and the checks every fuzzed answer goes through (here and in :mod:`tests.fuzz.links`).

Each example draws an operation (uniformly), then a case for it (valid data, or data that
breaks the schema one case in four), aims its ids at live objects (:mod:`tests.fuzz.world`),
sends it and checks the answer: no server error (a 502 or 503 only where the route declares
it), a declared status code, a body that matches the declared schema. Findings are kept,
one example per (route, kind, status), instead of stopping the run.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.world import World

CHECKS = [status_code_conformance, response_schema_conformance]
DECLARED_SERVER_ERRORS = {502, 503}
NEGATIVE_EVERY = 4
REFUSED = {400, 422}
DEV = {"X-Ragline-Dev-User": "dev"}
SETTINGS = settings(
    deadline=None,
    database=None,
    phases=[Phase.generate],  # findings are collected, not raised: nothing to shrink
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Finding:
    route: str
    kind: str
    status: int
    message: str
    request: str
    count: int = 1


@dataclass
class Report:
    histogram: Counter[tuple[str, int]] = field(default_factory=Counter)
    findings: dict[tuple[str, str, int], Finding] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, Finding] = field(default_factory=dict)
    unavailable: dict[tuple[str, int], str] = field(default_factory=dict)
    """The first body of each declared 502/503 per route (printed: why the model or a
    store was unavailable)."""
    """Cases valid by the document that the server refused (400/422): the document's
    request schemas are looser than the server's (not a failure; printed)."""

    @property
    def cases(self) -> int:
        return sum(self.histogram.values())

    def add(
        self, case: Case[Any], status: int, kind: str, message: str, headers: dict[str, str]
    ) -> None:
        key = (_route(case), kind, status)
        if key in self.findings:
            self.findings[key].count += 1
        else:
            request = case.as_curl_command(headers=headers)
            self.findings[key] = Finding(key[0], kind, status, message.strip(), request)

    def refused(self, case: Case[Any], body: str) -> None:
        route = _route(case)
        if route in self.refusals:
            self.refusals[route].count += 1
        else:
            request = case.as_curl_command(headers=DEV)
            self.refusals[route] = Finding(route, "refused", 0, body, request)

    def lines(self, title: str) -> list[str]:
        """The per-route status histogram, then the findings."""
        per_route: dict[str, Counter[int]] = {}
        for (route, status), count in self.histogram.items():
            per_route.setdefault(route, Counter())[status] = count
        phases = ", ".join(f"{count} {name}" for name, count in self.phases.items())
        lines = [f"{title}: {self.cases} cases in {self.seconds:.0f} s ({phases})"]
        for route in sorted(per_route, key=lambda r: (r.split(" ")[1], r)):
            counts = "  ".join(f"{s}x{n}" for s, n in sorted(per_route[route].items()))
            lines.append(f"  {route:<44} {counts}")
        lines.append(f"  findings: {len(self.findings)}")
        for finding in self.findings.values():
            lines.append(f"  - {finding.route} {finding.status} {finding.kind} x{finding.count}")
            lines.extend(f"      {line}" for line in finding.message.splitlines()[:6])
            lines.append(f"      {finding.request[:600]}")
        for (route, status), body in sorted(self.unavailable.items()):
            lines.append(f"  declared {status} on {route}, first: {body}")
        lines.append(f"  valid by the document, refused (400/422): {len(self.refusals)} routes")
        for refusal in self.refusals.values():
            lines.append(f"  - {refusal.route} x{refusal.count}: {refusal.message[:300]}")
            lines.append(f"      {refusal.request[:300]}")
        return lines


def _route(case: Case[Any]) -> str:
    return f"{case.method.upper()} {case.path}"


def _declared(case: Case[Any]) -> set[str]:
    return set(case.operation.definition.raw.get("responses", {}))


def check_one(
    case: Case[Any], response: Any, report: Report, *, headers: dict[str, str] = DEV
) -> None:
    status = response.status_code
    report.histogram[(_route(case), status)] += 1
    if status >= 500 and not (status in DECLARED_SERVER_ERRORS and str(status) in _declared(case)):
        report.add(case, status, "server error", response.text[:400], headers)
    elif status >= 500:
        report.unavailable.setdefault((_route(case), status), response.text[:300])
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        for failure in group.exceptions:
            message = f"{failure.title}\n{failure.message}"
            report.add(case, status, type(failure).__name__, message, headers)


def run(
    schema: OpenApiSchema,
    world: World,
    session: requests.Session,
    *,
    cases: int,
    seed_value: int | None,
    report: Report,
) -> None:
    """Fuzz ``cases`` cases into ``report``; a fixed ``seed_value`` repeats the run."""
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    positive = [op.as_strategy(GenerationMode.POSITIVE) for op in operations]
    negative = [op.as_strategy(GenerationMode.NEGATIVE) for op in operations]
    before = report.cases

    def fuzz(data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(operations) - 1), label="operation")
        broken = data.draw(st.integers(0, NEGATIVE_EVERY - 1), label="negative") == 0
        case = data.draw((negative if broken else positive)[index], label="case")
        world.aim(case)
        response = case.call(session=session)
        check_one(case, response, report)
        if not broken and response.status_code in REFUSED:
            report.refused(case, response.text)
        if response.status_code < 300:
            world.learn(case, response.status_code, _json(response))

    # Hypothesis counts the examples it could draw (a rejected draw sends nothing): run
    # again, with the next seed, until ``cases`` were sent.
    attempt = 0
    while report.cases - before < cases:
        test = given(st.data())(fuzz)
        test = settings(SETTINGS, max_examples=cases - (report.cases - before))(test)
        seed(random.randrange(2**32) if seed_value is None else seed_value + attempt)(test)()
        attempt += 1
    report.phases["single calls at seeded objects"] = report.cases - before


def _json(response: Any) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None
