"""The stateful phase: Schemathesis's state machine over the links it infers from the
document (``POST /chats`` 201 -> ``GET /chats/{chat_id}``, ``GET /chats/{chat_id}/files``
200 -> ``DELETE /chats/{chat_id}/files/{file_id}``, ...), each scenario a chain of calls
that use the ids earlier answers returned.

It runs as a user of its own (``fuzz-links``): its chains create, change and delete that
user's objects, never the seeded ones the other phase aims at.
"""

from __future__ import annotations

import random
from typing import Any

import requests
from hypothesis import seed, settings
from hypothesis.errors import FlakyStrategyDefinition
from hypothesis.stateful import get_state_machine_test
from schemathesis import Case
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.runner import SETTINGS, Report, check_one

USER = {"X-Ragline-Dev-User": "fuzz-links"}
STEPS = 8
"""The most calls in one scenario."""
BATCH = 25
"""Scenarios per Hypothesis run: small, so that few replay a prefix (see below)."""


def run_links(
    schema: OpenApiSchema,
    session: requests.Session,
    *,
    cases: int,
    seed_value: int | None,
    report: Report,
) -> None:
    """Run scenarios until ``cases`` calls were made; findings go to ``report``."""
    machine = schema.as_state_machine()

    class Linked(machine):  # type: ignore[valid-type, misc]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"session": session, "headers": USER}

        def validate_response(self, response: Any, case: Case[Any], **kwargs: Any) -> None:
            check_one(case, response, report, headers=USER)

    before = report.cases
    attempt = 0
    while report.cases - before < cases:
        scenarios = min(BATCH, max(1, (cases - (report.cases - before)) // STEPS))
        test = get_state_machine_test(
            Linked,
            settings=settings(SETTINGS, max_examples=scenarios, stateful_step_count=STEPS),
            _min_steps=2,
        )
        try:
            seed(random.randrange(2**32) if seed_value is None else seed_value + attempt)(test)()
        except FlakyStrategyDefinition:
            # Which links a scenario may follow depends on the server's earlier answers,
            # which Hypothesis takes for an inconsistent strategy once a batch replays a
            # prefix: the batch ends there (its calls were checked) and the next begins.
            report.phases["linked batches cut short"] = (
                report.phases.get("linked batches cut short", 0) + 1
            )
        attempt += 1
    report.phases["linked scenarios"] = report.cases - before
