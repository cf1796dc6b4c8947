"""Supported claims: the numbers, dates and names of an answer, checked against its
sources without a model; each flagged span is where it says it is in the answer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ragline.rag.query.claims import ClaimCheck, Span, check_claims

REPORT = (
    "[1] (report.pdf, page 4)\nRevenue reached 5,738.00 EUR in 2020, up 12.5% on the year "
    "before, and orders were worth $4.2 million. The budget was approved on 12 March 2021; "
    "costs fell by 3 percent. Twelve plants joined."
)
VALVE = (
    "[2] (history.pdf, page 2)\nThe Zephyrine valve was invented by Marta Kowalczyk in 1931 "
    "in Gdańsk, with help from the Bank of England."
)
SOURCES = [REPORT, VALVE]


def check(answer: str, sources: Sequence[str] = SOURCES, context: Sequence[str] = ()) -> list[str]:
    """The unsupported claims' texts, after checking that every span's offsets are right."""
    result = check_claims(answer, sources, context)
    for span in result.unsupported:
        assert answer[span.start : span.end] == span.text, span
    assert result.supported is (not result.unsupported)
    return [span.text for span in result.unsupported]


@pytest.mark.parametrize(
    ("answer", "unsupported"),
    [
        # integers and decimals
        ("The plants opened in 1931 and 2020.", []),
        ("The plants opened in 1932.", ["1932"]),
        ("Revenue grew 12.5 on the year.", []),
        ("Revenue grew 12.4 on the year.", ["12.4"]),
        # thousands separators: compared as values
        ("Revenue was 5738 EUR.", []),
        ("Revenue was 5,738 EUR, or 5.738 or 5 738 elsewhere.", []),
        ("Revenue was 5,739 EUR.", ["5,739 EUR"]),
        # percentages and currency amounts: the sign or unit is part of the span
        ("Revenue grew 12.5 per cent; costs fell 3%.", []),
        ("Revenue grew 13%.", ["13%"]),
        ("Orders were worth $4,200,000, or 4.2 million dollars.", []),
        ("Orders were worth €4.3 million.", ["€4.3 million"]),
        ("Revenue was EUR 5,738.", []),
        # negative numbers: the value counts, not how a fall is written
        ("Costs changed by -3% in 2021.", []),
        ("Costs changed by -7.5%.", ["-7.5%"]),
        # number words in a source back digits
        ("12 plants joined.", []),
        # ranges and names with digits
        ("From 2020-2021, costs fell.", []),
        ("From 2019-2021, costs fell.", ["2019"]),
    ],
)
def test_numbers(answer: str, unsupported: list[str]) -> None:
    assert check(answer) == unsupported


@pytest.mark.parametrize(
    ("answer", "unsupported"),
    [
        ("The budget was approved on 12 March 2021.", []),
        ("The budget was approved on March 12, 2021.", []),
        ("The budget was approved on March 12th 2021.", []),
        ("The budget was approved on 2021-03-12.", []),
        ("The budget was approved on 12/03/2021.", []),
        ("The budget was approved in March 2021, on 12 March.", []),
        ("The budget was approved on 13 March 2021.", ["13 March 2021"]),
        ("The budget was approved on 2021-04-12.", ["2021-04-12"]),
        ("The budget was approved in April 2021.", ["April 2021"]),
        ("The valve dates from 1931.", []),
        ("The valve dates from 1913.", ["1913"]),
    ],
)
def test_dates(answer: str, unsupported: list[str]) -> None:
    assert check(answer) == unsupported


@pytest.mark.parametrize(
    ("answer", "unsupported"),
    [
        ("Marta Kowalczyk invented the Zephyrine valve in Gdańsk.", []),
        ("MARTA KOWALCZYK worked in Gdansk; it was Kowalczyk's valve.", []),
        ("It was invented by Marta Nowak in Warsaw.", ["Marta Nowak", "Warsaw"]),
        ("The Bank of England helped.", []),
        ("The Bank of Scotland helped.", ["Bank of Scotland"]),
        # all the words of a name in one source: not pieced together from two
        ("Marta Revenue invented it.", ["Marta Revenue"]),
        # capitalised common words are not names
        ("However, I don't know. Based on the passages, the answer is unclear.", []),
        ("Unfortunately, it's not there. The plants joined. Revenue grew.", []),
        # an opener outside the list is flagged, as an unknown name would be
        ("Remarkably, the valve is old.", ["Remarkably"]),
    ],
)
def test_names(answer: str, unsupported: list[str]) -> None:
    assert check(answer) == unsupported


def test_citation_and_list_markers_are_never_claims() -> None:
    answer = (
        "The answer has three parts [1]:\n"
        "1. Revenue grew [1][2].\n"
        "2) Costs fell [3, 4] [5-7].\n"
        "  - 10. Plants joined [12].\n"
        "(3) It is new [ 9 ]."
    )
    assert check(answer) == []
    assert check("Revenue grew [8] by 8%.") == ["8%"]  # the same number as a claim


def test_context_counts_as_a_source() -> None:
    question = "Did the Warsaw office spend 7,000 euros?"
    answer = "The Warsaw office spent 7000 euros in 2020."
    assert check(answer) == ["Warsaw", "7000"]
    assert check(answer, context=[question]) == []


def test_offsets_and_order_of_several_claims() -> None:
    answer = "Ана Петрова met Marta Kowalczyk in Oslo on 1 May 1999 with 4,5 kg."
    result = check_claims(answer, SOURCES)
    assert result == ClaimCheck(
        [
            Span("Ана Петрова", 0, 11),
            Span("Oslo", 35, 39),
            Span("1 May 1999", 43, 53),
            Span("4,5", 59, 62),
        ]
    )
    assert not result.supported
    assert check_claims("", SOURCES).supported
    assert check_claims("No figures, no names.", []).supported
