"""Supported claims: are the numbers, dates and names of an answer in its sources?

No model judges the answer (the install cannot afford one); the check is lexical, lenient
with figures (any reading of a spelling counts) and strict with names. The *claims* of an
answer are its figures (numbers: integers, decimals, thousands separators, percentages,
currency amounts, negatives; dates: see :mod:`ragline.rag.query.figures`) and its names:
runs of capitalised words, joined by a space or a hyphen, or by a lowercase particle
between two of them ("Bank of England").

A claim is supported when a source holds it: a figure with one of the values its spelling
may stand for (``5,738.00`` = ``5738``, ``4.2 million`` = ``4,200,000``, ``12 March
2021`` = ``2021-03-12``); a name when one source holds all its words, case-insensitively
and without accents ("Gdańsk" = "GDANSK", "Kowalczyk's" = "Kowalczyk"). The ``context`` —
the question, the user's earlier turns, the system prompt — counts as sources: what the
user said, the answer may repeat.

Never claims: citation markers (``[1]``, ``[1, 2]``, ``[2-3]``) and list markers (``1.``,
``2)`` at the start of a line), which the prompt asks for; and capitalised common words,
which carry no fact: English stopwords (NLTK's, as the keyword index uses: "The", "I",
"This") and the words answers open sentences with ("However", "Based", "Unfortunately").
Sentence starts need no other special case: any other capitalised common word ("Tomatoes
need sun") is in the passages it was drawn from, and the match ignores case. A word that
begins a sentence and appears nowhere else is flagged, like any unknown name.

Measured: the 112 gold answers of ``docs-qa``, each in a sentence, are all supported by
their own documents (85 of them flagged against another document); of 20 answers of the
embedded SmolLM2 to its questions, given a passage around the gold answer, 8 were flagged,
for invented figures, dates and places, save two capitalised bullet words and one word the
token limit cut short.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ragline.rag.query import figures
from ragline.rag.stores.keyword.tokenize import STOPWORDS


@dataclass(frozen=True, slots=True)
class Span:
    """A claim of the answer: ``answer[start:end] == text``."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    unsupported: list[Span]

    @property
    def supported(self) -> bool:
        """True when every claim of the answer is in a source (or it makes none)."""
        return not self.unsupported


OPENERS = frozenset(
    """
    according additionally also although answer answers based briefly certainly conclusion
    consequently context finally first firstly furthermore great hello hence hi however
    importantly indeed instead interestingly lastly let meanwhile moreover nevertheless
    next nonetheless notably note ok okay overall passage passages please question
    regarding second secondly similarly sorry source sources specifically still summary
    sure thank thanks therefore third thus unfortunately yes yet
    """.split()  # noqa: SIM905
)
COMMON = STOPWORDS | OPENERS
"""Capitalised, these are not names."""
PARTICLES = frozenset("of de del der den van von da di du la le y".split())  # noqa: SIM905
"""Lowercase words inside a name: "Bank of England", "Ludwig van Beethoven"."""

_CITATION = re.compile(r"\[\s*\d+(?:\s*[-\u2013,;]\s*\d+)*\s*\]")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*\u2022][ \t]+)?\(?\d{1,3}[.)](?=\s)", re.MULTILINE)
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
# "Kowalczyk's" -> "kowalczyk", "I'm" -> "i", "Don't" -> "don" (a stopword, as NLTK has it)
_CLITIC = re.compile(r"['\u2019](?:s|m|d|t|re|ve|ll)$")
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NAME_GAPS = frozenset({" ", "-", "\u00a0"})


@dataclass(frozen=True, slots=True)
class _Evidence:
    keys: set[figures.Key]
    """Every figure of every source."""
    words: list[set[str]]
    """Each source's words, folded."""


def check_claims(answer: str, sources: Sequence[str], context: Sequence[str] = ()) -> ClaimCheck:
    """The claims of ``answer`` that no source backs. ``sources``: the passages the model
    was given; ``context``: other text the answer may repeat (question, system prompt)."""
    evidence = _evidence([*sources, *context])
    taken = bytearray(len(answer))
    for marker in (*_CITATION.finditer(answer), *_LIST_MARKER.finditer(answer)):
        _take(taken, marker.start(), marker.end())
    unsupported: list[Span] = []
    found = sorted(figures.dates(answer), key=lambda f: (f.start, -f.end))
    for figure in [*found, *figures.numbers(answer)]:
        if not _free(taken, figure.start, figure.end):
            continue
        _take(taken, figure.start, figure.end)
        if not figure.keys & evidence.keys:
            unsupported.append(Span(answer[figure.start : figure.end], figure.start, figure.end))
    for start, end, words in _names(answer, taken):
        if not any(words <= source for source in evidence.words):
            unsupported.append(Span(answer[start:end], start, end))
    return ClaimCheck(sorted(unsupported, key=lambda span: span.start))


def fold(text: str) -> str:
    """Casefolded, without accents: "Gdańsk" -> "gdansk"."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    return _COMBINING.sub("", unicodedata.normalize("NFKD", folded))


def _words(text: str) -> set[str]:
    return {_CLITIC.sub("", word) for word in set(_WORD.findall(fold(text)))}


def _evidence(texts: Sequence[str]) -> _Evidence:
    words = [_words(text) for text in texts]
    keys: set[figures.Key] = set()
    for text, its_words in zip(texts, words, strict=True):
        keys |= figures.evidence(text, its_words)
    return _Evidence(keys, words)


def _take(taken: bytearray, start: int, end: int) -> None:
    taken[start:end] = b"\x01" * (end - start)


def _free(taken: bytearray, start: int, end: int) -> bool:
    return not any(taken[start:end])


def _names(answer: str, taken: bytearray) -> list[tuple[int, int, set[str]]]:
    """``(start, end, folded content words)`` of each name in the answer's free text."""
    tokens = [m for m in _WORD.finditer(answer) if _free(taken, m.start(), m.end())]
    runs: list[list[re.Match[str]]] = []
    run: list[re.Match[str]] = []
    for i, token in enumerate(tokens):
        joined = bool(run) and answer[run[-1].end() : token.start()] in _NAME_GAPS
        if token[0][0].isupper():
            if not joined:
                runs.append(run := [])
            run.append(token)
        elif (
            joined
            and token[0] in PARTICLES
            and i + 1 < len(tokens)
            and tokens[i + 1][0][0].isupper()
            and answer[token.end() : tokens[i + 1].start()] in _NAME_GAPS
        ):
            run.append(token)
        else:
            run = []
    names = []
    for run in runs:
        content = [t for t in run if t[0][0].isupper() and _key(t[0]) not in COMMON]
        if content:
            words = {_key(token[0]) for token in content}
            names.append((content[0].start(), content[-1].end(), words))
    return names


def _key(word: str) -> str:
    return _CLITIC.sub("", fold(word))
