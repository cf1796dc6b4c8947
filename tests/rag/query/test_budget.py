"""The prompt budget: what must fit whole, passages best first, history with what is left;
the estimate stays above the real tokenizer's count for the texts it was measured on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from ragline.rag.llm.base import ChatMessage
from ragline.rag.llm.local import LocalLLM
from ragline.rag.providers import minilm_tokenizer
from ragline.rag.query.budget import (
    MIN_QUESTION_TOKENS,
    PromptBudget,
    PromptTooLong,
    estimate_tokens,
    fit_prompt,
)
from ragline.rag.query.retrieve import RetrievedChunk

SCIFACT = Path(__file__).resolve().parents[4] / "shared" / "data" / "beir-scifact"


def words(text: str) -> int:
    return len(text.split())


def chunk(n: int, length: int) -> RetrievedChunk:
    return RetrievedChunk(
        id=f"c{n}",
        file_id="f",
        file_name=f"doc{n}.txt",
        text=" ".join(["word"] * length),
        score=1.0 / n,
        dense_score=None,
        keyword_score=None,
        page=None,
        section=None,
        start_char=0,
        end_char=length * 5,
    )


def test_passages_best_first_while_they_fit_then_history() -> None:
    budget = PromptBudget(window=400, answer_tokens=50, count=words)
    history = [
        ChatMessage("user", "an earlier question " * 5),
        ChatMessage("assistant", "an earlier answer " * 5),
    ]
    room = budget.check("Be brief.", "What now?")
    chunks = [chunk(1, 120), chunk(2, 200), chunk(3, 60), chunk(4, 60)]

    fitted = fit_prompt(
        budget,
        room=room,
        system_prompt="Be brief.",
        history=history,
        chunks=chunks,
        question="What now?",
        history_tokens=1000,
    )

    # a passage costs its words, its label's 2 and 2 more: 124, 204, 64, 64
    assert 124 + 64 + 64 <= room < 124 + 204
    assert [c.id for c in fitted.chunks] == ["c1", "c3", "c4"]  # 2 does not fit, 3 and 4 do
    assert fitted.messages[-1] == ChatMessage("user", "What now?")
    assert "[2] (doc3.txt)" in fitted.messages[0].content  # renumbered in the prompt
    # the history had what was left: room - 252 tokens, less than its 2 x (15 + 8)
    assert len([m for m in fitted.history if m.role != "system"]) <= 2


def test_history_gets_what_the_passages_leave() -> None:
    budget = PromptBudget(window=300, answer_tokens=20, count=words)
    history = [ChatMessage("user", f"turn {n} " + "filler " * 30) for n in range(6)]
    fitted = fit_prompt(
        budget,
        room=budget.check("", "And then?"),
        system_prompt="",
        history=history,
        chunks=[chunk(1, 150)],
        question="And then?",
        history_tokens=10_000,
    )
    assert [c.id for c in fitted.chunks] == ["c1"]
    kept = [m for m in fitted.history if m.role == "user"]
    assert 0 < len(kept) < 6 and kept[-1] == history[-1]  # the newest turns stay


def test_a_question_that_cannot_fit_raises() -> None:
    budget = PromptBudget(window=100, answer_tokens=20, count=words)
    with pytest.raises(PromptTooLong) as raised:
        budget.check("", "why " * 200)
    assert raised.value.available == 80 and raised.value.needed > 200
    assert budget.max_system_prompt() == 80 - budget.fixed_cost("", "") - MIN_QUESTION_TOKENS


def _texts() -> Iterator[str]:
    if SCIFACT.is_dir():
        corpus = next(SCIFACT.rglob("corpus.jsonl"))
        with corpus.open() as lines:
            yield from (json.loads(line)["text"][:3000] for line in islice(lines, 100))
    yield "Die Bundesregierung hat beschlossen, Genehmigungsverfahren zu beschleunigen. " * 20
    yield "机器学习是人工智能的一个分支，它使计算机能够从数据中学习。" * 20  # noqa: RUF001
    yield "🙂🚀🔥 " * 100
    yield Path(__file__).read_text()[:3000]


def test_the_estimate_is_above_the_embedded_models_own_count() -> None:
    """SmolLM2's byte-level BPE stands in for remote models' tokenizers of its kind."""
    estimate = estimate_tokens(minilm_tokenizer())
    llm = LocalLLM(n_ctx=2048, n_threads=1)
    try:
        for text in _texts():
            assert estimate(text) >= llm.count_tokens(text), text[:80]
    finally:
        llm._close()
