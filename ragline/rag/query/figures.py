"""Numbers and dates in text, each with every value its spelling may stand for.

A figure keeps all its readings, so that two spellings of one value meet: "5,738" is 5738
with an English thousands separator and 5.738 with a German decimal comma, "5.738" the
same the other way round, so both stand for both values; "5,738.00", "1.234,5", "5 738",
"5'738" and "1,234,567" have one reading. Currency signs and codes, ``%`` / "percent" and
the sign are part of a figure's text but not of its value (sources state falls in words,
"fell by 5%", that answers write "-5%"). A scale word multiplies: "4.2 million" stands for
4200000 and for 4.2 (tables put the unit in a header). Digits glued to letters belong to
a name, not a figure ("COVID-19", "GPT-4", "A4").

Dates: ISO and other numeric forms (``2021-03-12``, ``12/03/2021``: day or month first,
both readings kept), "12 March 2021", "March 12, 2021" (ordinals allowed), "12 March",
"March 2021". A date's keys are at its own precision; a source's full date also counts for
its month-and-year and its day-and-month. Bare years are numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

Key = Decimal | tuple[str, int, int] | tuple[str, int, int, int]
"""A number's value, or a date: ``("ymd", y, m, d)``, ``("ym", y, m)``, ``("md", m, d)``."""


@dataclass(frozen=True, slots=True)
class Figure:
    start: int
    end: int
    keys: frozenset[Key]


_NOT_IN_WORD = r"(?<![^\W_])(?<![^\W\d_]-)(?<!\d[.,])"  # not after a letter, digit, "A-", "1."
_CURRENCY = r"[$€£¥₹]|(?:USD|EUR|GBP|CHF|JPY|CAD|AUD)\b"
_NUMBER = re.compile(
    _NOT_IN_WORD
    + r"(?:[-\u2212](?=[$€£¥₹\d]))?"  # a sign
    + rf"(?:(?:{_CURRENCY})\s?)?"
    + r"(?P<digits>\d{1,3}(?P<sep>[,.'\u2019\u00a0\u2009\u202f ])\d{3}(?!\d)"
    + r"(?:(?P=sep)\d{3}(?!\d))*(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    + r"(?:st|nd|rd|th)?"
    + r"(?:\s?(?P<scale>thousand|million|billion|trillion)\b|(?P<abbr>bn|mn|[kKM])\b)?"
    + rf"(?:\s?(?:%|percent\b|per\s?cent\b)|\s?(?:{_CURRENCY}))?"
)
_SCALES = {
    "thousand": Decimal(10**3),
    "k": Decimal(10**3),
    "million": Decimal(10**6),
    "mn": Decimal(10**6),
    "m": Decimal(10**6),
    "billion": Decimal(10**9),
    "bn": Decimal(10**9),
    "trillion": Decimal(10**12),
}
_NUMBER_WORDS = {
    word: Decimal(n)
    for n, words in enumerate(
        (
            "zero",
            "one first",
            "two second",
            "three third",
            "four fourth",
            "five fifth",
            "six sixth",
            "seven seventh",
            "eight eighth",
            "nine ninth",
            "ten tenth",
            "eleven eleventh",
            "twelve twelfth dozen",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        )
    )
    for word in words.split()
} | {"thirty": Decimal(30), "fifty": Decimal(50), "hundred": Decimal(100)}

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (
    r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)(?![^\W\d_])"
)
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?(?![^\W_])"
_YEAR = r"(?P<year>\d{4})(?!\d)"
_DATES = [
    re.compile(rf"{_NOT_IN_WORD}{_YEAR}(?P<s>[-/.])(?P<m>\d{{1,2}})(?P=s)(?P<d>\d{{1,2}})(?!\d)"),
    re.compile(rf"{_NOT_IN_WORD}(?P<a>\d{{1,2}})(?P<s>[-/.])(?P<b>\d{{1,2}})(?P=s){_YEAR}"),
    re.compile(rf"{_NOT_IN_WORD}{_DAY}(?:\s+of)?\s+{_MONTH}(?:,?\s+{_YEAR})?"),
    re.compile(rf"{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?"),
    re.compile(rf"{_MONTH},?\s+(?:of\s+)?{_YEAR}"),
]
# Most texts hold no date: two quick searches (a literal or a set first) decide which forms
# to look for, a tenth of the time of the forms' own searches.
_NUMERIC_DATE_HINT = re.compile(r"[-/.]\d{1,2}[-/.]")
_MONTH_HINT = re.compile(_MONTH)


def numbers(text: str) -> Iterator[Figure]:
    for match in _NUMBER.finditer(text):
        yield Figure(match.start(), match.end(), _number_keys(match))


def dates(text: str) -> Iterator[Figure]:
    """Every date of every form; forms may overlap (the caller picks)."""
    numeric, named = _DATES[:2], _DATES[2:]
    patterns = [
        *(numeric if _NUMERIC_DATE_HINT.search(text) else ()),
        *(named if _MONTH_HINT.search(text) else ()),
    ]
    for pattern in patterns:
        for match in pattern.finditer(text):
            keys = _date_keys(match.groupdict())
            if keys:
                yield Figure(match.start(), match.end(), keys)


def evidence(text: str, words: Iterable[str]) -> set[Key]:
    """All keys a source backs: its numbers, its dates at their own and coarser precision,
    and its number words (``words``: the source's words, casefolded)."""
    keys: set[Key] = {key for figure in numbers(text) for key in figure.keys}
    for figure in dates(text):
        for key in figure.keys:
            keys.add(key)
            if isinstance(key, tuple) and len(key) == 4:  # ("ymd", y, m, d)
                keys |= {("ym", key[1], key[2]), ("md", key[2], key[3])}
    keys.update(_NUMBER_WORDS[word] for word in words if word in _NUMBER_WORDS)
    return keys


def _number_keys(match: re.Match[str]) -> frozenset[Key]:
    values = _readings(match["digits"])
    scale = _SCALES.get((match["scale"] or match["abbr"] or "").lower())
    if scale is not None:
        values |= {value * scale for value in values}
    return frozenset(values)


def _readings(digits: str) -> set[Decimal]:
    separators = [char for char in digits if not char.isdigit()]
    parts = re.split(r"\D", digits)
    if not separators:
        return {Decimal(digits)}
    if len(set(separators)) > 1:  # "5,738.00", "1.234,5": the last one is the decimal point
        return {Decimal("".join(parts[:-1]) + "." + parts[-1])}
    if len(separators) > 1 or separators[0] not in ".,":  # "1,234,567", "5 738"
        return {Decimal("".join(parts))}
    whole, fraction = parts
    readings = {Decimal(f"{whole}.{fraction}")}
    if len(fraction) == 3 and whole != "0" and len(whole) <= 3:  # thousands, or decimals
        readings.add(Decimal(whole + fraction))
    return readings


def _date_keys(groups: dict[str, str | None]) -> frozenset[Key]:
    def number(*names: str) -> int | None:
        found = next((groups[name] for name in names if groups.get(name)), None)
        return int(found) if found else None

    year, day = number("year"), number("d", "day")
    candidates: list[tuple[int | None, int, int | None]]
    if (a := number("a")) is not None and (b := number("b")) is not None:  # 12/03/2021
        candidates = [(year, b, a), (year, a, b)]  # day first, or month first
    elif name := groups.get("month"):
        candidates = [(year, _MONTHS.index(name[:3].lower()) + 1, day)]
    else:
        candidates = [(year, number("m") or 0, day)]
    keys: set[Key] = set()
    for y, m, d in candidates:
        if not 1 <= m <= 12 or (d is not None and not 1 <= d <= 31):
            continue
        if y is not None and d is not None:
            keys.add(("ymd", y, m, d))
        elif y is not None:
            keys.add(("ym", y, m))
        elif d is not None:
            keys.add(("md", m, d))
    return frozenset(keys)
