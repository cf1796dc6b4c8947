"""The fuzz runs' histograms and findings, printed in pytest's terminal summary (with or
without ``-s``)."""

from __future__ import annotations

import pytest

REPORTS: list[list[str]] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("fuzz: status per route, findings")
    for lines in REPORTS:
        for line in lines:
            terminalreporter.write_line(line)
