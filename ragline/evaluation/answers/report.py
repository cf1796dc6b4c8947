"""The figures of a run (:func:`build_report`), as JSON (:func:`write_json`) and as tables
(:func:`render`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ragline.evaluation.answers.metrics import (
    CONTAINS_MAX_TOKENS,
    HIT_K,
    RIGHT_F1,
    mean,
    percentile,
    share,
)
from ragline.evaluation.answers.run import AnswerRow, Run

DEFINITIONS = {
    "f1": "SQuAD token F1 (lowercase; Unicode punctuation and a/an/the removed), best gold answer",
    "contains": (
        f"a gold answer of <= {CONTAINS_MAX_TOKENS} tokens occurs, as whole normalised tokens, "
        "in the normalised answer; share of the questions that have such a gold answer"
    ),
    "right": f"contains-match or F1 >= {RIGHT_F1}; a failed request is wrong",
    "answer_tokens": "mean length of the answers in normalised tokens",
    "hit_at_5": (
        f"a gold document among the files of the top {HIT_K} chunks: single questions via "
        "POST /chats/{id}/search as asked; chain turns via the answer's `sources` event"
    ),
    "flagged": (
        "the `done` event marks the answer unsupported (`unsupported` non-empty, or "
        "`supported` false); shares over every answer of the run; n/a when never sent"
    ),
    "ttft_s": "request sent -> first `delta` with text, at the client",
    "latency_s": "request sent -> `done` event, at the client",
    "fresh_chat": "single questions, chains' first turns and standalone forms (no history)",
    "follow_up": "chain turns after the first, asked in their chain (history + rewrite)",
}


@dataclass(frozen=True, slots=True)
class Quality:
    count: int
    f1: float | None
    contains: float | None
    right: float | None
    answer_tokens: float | None
    hit_at_5: float | None
    errors: int


@dataclass(frozen=True, slots=True)
class ChainFigures:
    kind: str
    follow_ups: int
    hit_in_chain: float | None
    """The follow-up as asked in its chain: the answer's sources (rewritten query)."""
    hit_standalone: float | None
    """The gold standalone form asked in a fresh chat: its answer's sources."""
    hit_as_typed: float | None
    """The follow-up's own words searched alone (no history, no rewrite)."""
    f1_in_chain: float | None
    f1_standalone: float | None
    right_in_chain: float | None
    right_standalone: float | None


@dataclass(frozen=True, slots=True)
class Timing:
    count: int
    ttft_median_s: float | None
    ttft_p90_s: float | None
    latency_median_s: float | None
    latency_p90_s: float | None


@dataclass(frozen=True, slots=True)
class Supported:
    answers: int
    """Answers whose ``done`` event said whether they are supported."""
    flagged: float | None
    wrong_flagged: float | None
    right_flagged: float | None


@dataclass(frozen=True, slots=True)
class AnswersReport:
    dataset: str
    split: str
    url: str
    documents: int
    assistants: int
    setup_s: float
    questions: Quality
    by_format: dict[str, Quality]
    chains: list[ChainFigures]
    timing: dict[str, Timing]
    supported: Supported | None
    prompt_tokens_mean: float | None
    definitions: dict[str, str]
    rows: list[AnswerRow]


def quality(rows: Sequence[AnswerRow], hit: Callable[[AnswerRow], bool | None]) -> Quality:
    return Quality(
        count=len(rows),
        f1=mean(row.f1 for row in rows),
        contains=share(row.contains for row in rows),
        right=share(row.right for row in rows),
        answer_tokens=mean(row.answer_tokens for row in rows if row.error is None),
        hit_at_5=share(hit(row) for row in rows),
        errors=sum(row.error is not None for row in rows),
    )


def chain_figures(rows: Sequence[AnswerRow], kind: str) -> ChainFigures:
    follow = [r for r in rows if r.kind == kind and r.mode == "chain" and r.turn != 1]
    alone = [r for r in rows if r.kind == kind and r.mode == "standalone"]
    return ChainFigures(
        kind=kind,
        follow_ups=len(follow),
        hit_in_chain=share(r.hit_sources for r in follow),
        hit_standalone=share(r.hit_sources for r in alone),
        hit_as_typed=share(r.hit_search for r in follow),
        f1_in_chain=mean(r.f1 for r in follow),
        f1_standalone=mean(r.f1 for r in alone),
        right_in_chain=share(r.right for r in follow),
        right_standalone=share(r.right for r in alone),
    )


def timing(rows: Iterable[AnswerRow]) -> Timing:
    answered = [row for row in rows if row.error is None]
    ttft = [row.ttft_s for row in answered if row.ttft_s is not None]
    latency = [row.latency_s for row in answered if row.latency_s is not None]
    return Timing(
        count=len(answered),
        ttft_median_s=percentile(ttft, 50),
        ttft_p90_s=percentile(ttft, 90),
        latency_median_s=percentile(latency, 50),
        latency_p90_s=percentile(latency, 90),
    )


def supported(rows: Sequence[AnswerRow]) -> Supported | None:
    known = [row for row in rows if row.flagged is not None]
    if not known:
        return None
    return Supported(
        answers=len(known),
        flagged=share(row.flagged for row in known),
        wrong_flagged=share(row.flagged for row in known if not row.right),
        right_flagged=share(row.flagged for row in known if row.right),
    )


def build_report(run: Run, *, dataset: str, split: str, url: str, documents: int) -> AnswersReport:
    singles = [row for row in run.rows if row.mode == "single"]
    formats = sorted({row.format for row in singles})
    prompt_tokens = [row.prompt_tokens for row in run.rows if row.prompt_tokens is not None]
    return AnswersReport(
        dataset=dataset,
        split=split,
        url=url,
        documents=documents,
        assistants=len(run.assistants),
        setup_s=run.setup_s,
        questions=quality(singles, lambda row: row.hit_search),
        by_format={
            f: quality([r for r in singles if r.format == f], lambda row: row.hit_search)
            for f in formats
        },
        chains=[
            chain_figures(run.rows, kind)
            for kind in sorted({row.kind for row in run.rows if row.mode != "single"})
        ],
        timing={
            "fresh_chat": timing(r for r in run.rows if r.mode != "chain" or r.turn == 1),
            "follow_up": timing(r for r in run.rows if r.mode == "chain" and r.turn != 1),
        },
        supported=supported(run.rows),
        prompt_tokens_mean=mean(prompt_tokens),
        definitions=DEFINITIONS,
        rows=run.rows,
    )


def write_json(report: AnswersReport, path: Path) -> None:
    path.write_text(
        json.dumps(dataclasses.asdict(report), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


# --- the tables ---------------------------------------------------------------------------
def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def render(report: AnswersReport, console: Console) -> None:
    console.print(
        f"[bold]{report.dataset}[/] {report.split} against {report.url}: "
        f"{report.documents} documents in each of {report.assistants} assistants "
        f"(loaded in {report.setup_s:.1f} s)"
    )
    table = Table(title=f"Single questions (hit@{HIT_K}: search as asked)")
    for column in ("format", "n", "F1", "contains", "right", f"hit@{HIT_K}", "tokens", "errors"):
        table.add_column(column, justify="left" if column == "format" else "right")
    for name, q in [*report.by_format.items(), ("all", report.questions)]:
        table.add_row(
            f"[bold]{name}[/]" if name == "all" else name,
            str(q.count),
            _number(q.f1),
            _share(q.contains),
            _share(q.right),
            _share(q.hit_at_5),
            _number(q.answer_tokens, 1),
            str(q.errors),
        )
    console.print(table)
    if report.chains:
        chains = Table(
            title=f"Follow-up turns: hit@{HIT_K} and F1 in their chain, of their standalone "
            "form in a fresh chat (alone), of their words searched as typed"
        )
        for column in (
            "kind",
            "n",
            "hit chain",
            "hit alone",
            "hit typed",
            "F1 chain",
            "F1 alone",
            "right chain",
            "right alone",
        ):
            chains.add_column(column, justify="left" if column == "kind" else "right")
        for c in report.chains:
            chains.add_row(
                c.kind,
                str(c.follow_ups),
                _share(c.hit_in_chain),
                _share(c.hit_standalone),
                _share(c.hit_as_typed),
                _number(c.f1_in_chain),
                _number(c.f1_standalone),
                _share(c.right_in_chain),
                _share(c.right_standalone),
            )
        console.print(chains)
    times = Table(title="Latency at the client")
    for column in ("answers", "n", "TTFT median", "TTFT p90", "total median", "total p90"):
        times.add_column(column, justify="left" if column == "answers" else "right")
    for name, t in report.timing.items():
        times.add_row(
            name.replace("_", " "),
            str(t.count),
            _seconds(t.ttft_median_s),
            _seconds(t.ttft_p90_s),
            _seconds(t.latency_median_s),
            _seconds(t.latency_p90_s),
        )
    console.print(times)
    s = report.supported
    console.print(
        "supported check: "
        + (
            "n/a (the server sends no `supported`)"
            if s is None
            else f"{_share(s.flagged)} of {s.answers} answers flagged; wrong answers flagged "
            f"{_share(s.wrong_flagged)}, right answers flagged {_share(s.right_flagged)}"
        )
        + "; prompt tokens per answer: "
        + _number(report.prompt_tokens_mean, 0)
    )
