"""`ragline eval answers`: the answer and retrieval metrics on hand-computed cases, and the
client's reading of Server-Sent Events."""

from __future__ import annotations

import pytest

from ragline.evaluation.answers.client import sse_events
from ragline.evaluation.answers.metrics import (
    best_f1,
    contains_match,
    flagged,
    hit_at,
    is_right,
    normalise,
    percentile,
    share,
    token_f1,
    tokens,
)


def test_normalisation_is_squad_s_with_unicode_punctuation() -> None:
    assert normalise("The Eastern Republic of Uruguay.") == "eastern republic of uruguay"
    assert normalise("An apple, a pear and THE plum!") == "apple pear and plum"
    assert (
        normalise("two\u2019s complement")
        == normalise("two's") + " complement"
        == "twos complement"
    )
    assert normalise("US$211.9 billion") == "us2119 billion"  # "$" is SQuAD punctuation
    assert normalise("  theory  of\tanything ") == "theory of anything"  # words, not prefixes
    assert tokens("[50, 1000]") == ["50", "1000"]


def test_token_f1_counts_shared_tokens_once_each() -> None:
    # "the" goes: prediction [paris, is, capital] against [paris]: P 1/3, R 1.
    assert token_f1("Paris is the capital", "Paris") == pytest.approx(0.5)
    # A repeated token matches as often as it occurs in both: P 1/2, R 1/2.
    assert token_f1("Gates Gates", "Bill Gates") == pytest.approx(0.5)
    assert token_f1("Bill Gates and Paul Allen", "bill gates and paul allen.") == 1.0
    assert token_f1("", "Sicily") == 0.0
    assert token_f1("nothing in common", "Sicily") == 0.0
    assert best_f1("It is RAII.", ["Resource Acquisition Is Initialization", "RAII"]) == (
        pytest.approx(0.5)  # [it, is, raii] against [raii]; the long form shares only "is"
    )


def test_contains_match_wants_whole_tokens_of_short_gold_answers() -> None:
    answer = "Microsoft was founded on April 4, 1975, in Albuquerque."
    assert contains_match(answer, ["April 4, 1975"]) is True
    assert contains_match(answer, ["April 5, 1975"]) is False
    assert contains_match("It happened in 1987.", ["8"]) is False  # not inside a token
    assert contains_match("The answer is 8.", ["8"]) is True
    long = " ".join(f"word{n}" for n in range(31))
    assert contains_match(long, [long]) is None  # only gold answers of <= 30 tokens count
    assert contains_match("word0 is short", [long, "word0"]) is True
    thirty = " ".join(f"w{n}" for n in range(30))
    assert contains_match(f"so {thirty}.", [thirty]) is True


def test_right_is_contains_or_f1_of_one_half() -> None:
    assert is_right(0.1, True)
    assert is_right(0.5, None)
    assert is_right(0.5, False)
    assert not is_right(0.49, False)
    assert not is_right(0.49, None)


def test_hit_at_5_looks_at_the_first_five_chunks_files() -> None:
    gold = {"docs/gold.pdf", "docs/also.pdf"}
    assert hit_at(["a", "docs/gold.pdf"], gold)
    assert hit_at(["a", None, "b", "c", "docs/also.pdf", "d"], gold)
    assert not hit_at(["a", "b", None, "c", "d", "docs/gold.pdf"], gold)  # sixth
    assert hit_at(["a", "b", None, "c", "d", "docs/gold.pdf"], gold, k=6)
    assert not hit_at([], gold)


def test_flagged_reads_the_done_event() -> None:
    assert flagged({"message_id": "m", "supported": False, "unsupported": [{"text": "9"}]})
    assert flagged({"message_id": "m", "supported": True, "unsupported": []}) is False
    assert flagged({"unsupported": [{"text": "1234", "start": 0, "end": 4}]}) is True
    assert flagged({"unsupported": []}) is False
    assert flagged({"message_id": "m"}) is None  # a server without the check


def test_summaries() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([float(n) for n in range(1, 11)], 90) == pytest.approx(9.1)
    assert percentile([7.0], 90) == 7.0
    assert percentile([], 50) is None
    assert share([True, None, False, True]) == pytest.approx(2 / 3)
    assert share([None]) is None


def test_server_sent_events_are_read_as_they_come() -> None:
    lines = iter(
        [
            "event: delta",
            'data: {"text": "Hel"}',
            "",
            ": a comment",
            "event: delta",
            'data: {"text": "lo"}',
            "",
            "event: done",
            'data: {"message_id": "m", "supported": true}',
        ]
    )
    events = sse_events(lines)
    assert next(events) == ("delta", {"text": "Hel"})
    assert next(lines) == ": a comment"  # the first event came before the rest was read
    assert list(events) == [
        ("delta", {"text": "lo"}),
        ("done", {"message_id": "m", "supported": True}),
    ]
