"""Convex fusion of completed dense and keyword scores; reciprocal rank fusion of the
rankings of several queries."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ragline.rag.query.fusion import convex_fusion, reciprocal_rank_fusion


def test_every_candidate_scored_by_both_retrievers() -> None:
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}  # c: a keyword-only candidate, completed
    keyword = {"c": 12.0, "a": 2.0}  # b matches no query term: BM25 0

    fused = {f.id: f for f in convex_fusion(dense, keyword, alpha=0.5)}

    # dense min-max over {a,b,c}: a 1, b 0.5, c 0; keyword over {a:2, b:0, c:12}.
    assert fused["a"].score == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 12)
    assert fused["b"].score == pytest.approx(0.5 * 0.5)
    assert fused["c"].score == pytest.approx(0.5 * 1.0)
    assert fused["b"].keyword is None and fused["b"].dense == 0.5


def test_order_and_tie_rule() -> None:
    # x and y tie on the fused score; x has the higher dense score, so x first.
    dense = {"x": 1.0, "y": 0.0, "z": 0.5}
    keyword = {"x": 0.0, "y": 10.0, "z": 0.0}
    order = [f.id for f in convex_fusion(dense, keyword, alpha=0.5)]
    assert order == ["x", "y", "z"]

    # Equal scores everywhere: the smaller id first, so the order is repeatable.
    same = convex_fusion({"q": 0.3, "p": 0.3}, {}, alpha=0.5)
    assert [f.id for f in same] == ["p", "q"]


def test_a_candidate_without_a_vector_counts_as_the_dense_minimum() -> None:
    fused = {f.id: f for f in convex_fusion({"a": 0.8, "b": 0.4}, {"gone": 5.0}, alpha=0.5)}
    assert fused["gone"].dense is None
    assert fused["gone"].score == pytest.approx(0.5)
    assert fused["a"].score == pytest.approx(0.5)


def test_single_signal_keeps_its_order() -> None:
    dense_only = convex_fusion({"a": 0.2, "b": 0.9, "c": 0.5}, {}, alpha=0.5)
    keyword_only = convex_fusion({}, {"a": 1.0, "b": 3.0, "c": 2.0}, alpha=0.5)
    assert [f.id for f in dense_only] == ["b", "c", "a"]
    assert [f.id for f in keyword_only] == ["b", "c", "a"]


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float


def _hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(id_, score) for id_, score in pairs]


def test_rankings_of_two_queries_take_turns() -> None:
    # A rewrite that drifted finds x, y, z with high scores; the question as asked finds a.
    drifted = _hits(("x", 0.9), ("y", 0.8), ("z", 0.7))
    as_asked = _hits(("a", 0.6), ("b", 0.5), ("c", 0.4))
    # The first of each, in the rankings' order, then the second of each: scores play no part.
    assert [h.id for h in reciprocal_rank_fusion([drifted, as_asked], k=3)] == ["x", "a", "y"]
    assert [h.id for h in reciprocal_rank_fusion([as_asked, drifted], k=3)] == ["a", "x", "b"]


def test_a_chunk_both_queries_find_comes_first_as_met_first() -> None:
    first = _hits(("a", 0.9), ("b", 0.4))
    second = _hits(("c", 0.8), ("b", 0.7))
    fused = reciprocal_rank_fusion([first, second], k=10)
    assert [(h.id, h.score) for h in fused] == [("b", 0.4), ("a", 0.9), ("c", 0.8)]
    assert reciprocal_rank_fusion([first, []], k=1) == [first[0]]
    assert reciprocal_rank_fusion([], k=3) == []
