"""Which follow-ups need the conversation (and so a rewrite) and which stand alone."""

from __future__ import annotations

import pytest

from ragline.rag.query.followup import needs_history, words


@pytest.mark.parametrize(
    "question",
    [
        "Who founded Microsoft?",
        "who founded Microsoft",
        "And what is the capital of Argentina?",  # a leading "and" alone is no reference
        "But which Rust methods return None if there is overflow?",  # existential "there"
        "Is there a char type in Rust?",
        "And what is the subtotal on Gabriel Diaz's repair estimate?",
        "List the scalar types of Rust.",
    ],
)
def test_questions_that_stand_alone(question: str) -> None:
    assert not needs_history(question)


@pytest.mark.parametrize(
    "question",
    [
        "How much did Microsoft pay for it?",
        "What is its international dialing code?",
        "What\u2019s its population?",  # typographic apostrophe
        "Which division did he lead before that?",
        "What kind of devices are they?",
        "How do you create one from a string literal?",
        "Who lives there?",
        "What about Japan?",  # elliptic openings
        "And how about the second sheet?",
        "In which year?",  # fewer than two content words
        "And in which city?",
        "Why?",
        "Tell me more.",
        "",
        "Wie viel hat Microsoft dafür bezahlt?",  # not English: always rewritten
    ],
)
def test_questions_that_need_the_conversation(question: str) -> None:
    assert needs_history(question)


def test_words() -> None:
    assert words("Gabriel Diaz\u2019s estimate, isn't it?") == [
        "gabriel",
        "diaz",
        "'s",
        "estimate",
        "isn",
        "t",
        "it",
    ]
