"""Scores of one answer, and the summary statistics of many.

Normalisation and token F1 follow SQuAD v1.1's evaluation script: lowercase, punctuation
removed, the articles *a*, *an*, *the* removed, whitespace collapsed; F1 over the bags of
tokens, the best over the gold answers. Punctuation is every Unicode punctuation character
(categories P*) as well as ASCII's (SQuAD's ``string.punctuation``, ``$`` included): a
typographic apostrophe or dash goes as ASCII's does.

*Contains-match*: a gold answer's normalised tokens occur, contiguous and whole, in the
normalised prediction (``"8"`` is not found in ``"1987"``). Only gold answers of
at most :data:`CONTAINS_MAX_TOKENS` tokens take part; a question without one has no
contains-match (``None``), rather than a free pass or a certain miss.

*Right*: contains-match, or F1 >= :data:`RIGHT_F1`. *Wrong*: everything else, including a
failed request.

*Flagged*: the server marked the answer as (partly) unsupported by its sources, read from
the ``done`` event (see :func:`flagged`).
"""

from __future__ import annotations

import math
import re
import statistics
import string
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

CONTAINS_MAX_TOKENS = 30
RIGHT_F1 = 0.5
HIT_K = 5
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    text = "".join(ch for ch in text.lower() if not _punctuation(ch))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def tokens(text: str) -> list[str]:
    return normalise(text).split()


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = tokens(prediction), tokens(gold)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, answers: Iterable[str]) -> float:
    return max((token_f1(prediction, answer) for answer in answers), default=0.0)


def contains_match(prediction: str, answers: Iterable[str]) -> bool | None:
    eligible = [normalise(a) for a in answers if len(tokens(a)) <= CONTAINS_MAX_TOKENS]
    if not eligible:
        return None
    padded = f" {normalise(prediction)} "
    return any(f" {answer} " in padded for answer in eligible if answer)


def is_right(f1: float, contains: bool | None) -> bool:
    return contains is True or f1 >= RIGHT_F1


def hit_at(files: Sequence[str | None], gold: Collection[str], k: int = HIT_K) -> bool:
    """A gold document is among the files of the first ``k`` chunks."""
    return any(name in gold for name in files[:k] if name is not None)


def flagged(done: Mapping[str, Any]) -> bool | None:
    """Whether the ``done`` event marks the answer as not (fully) supported by its sources:
    ``supported`` false (ragline sends ``supported`` and the ``unsupported`` claims), else a
    non-empty ``unsupported``; ``None`` when the server sent neither."""
    supported = done.get("supported")
    if isinstance(supported, bool):
        return not supported
    unsupported = done.get("unsupported")
    if isinstance(unsupported, list):
        return bool(unsupported)
    return None


# --- summaries ----------------------------------------------------------------------------
def mean(values: Iterable[float]) -> float | None:
    kept = list(values)
    return statistics.fmean(kept) if kept else None


def share(values: Iterable[bool | None]) -> float | None:
    """The share of true values among those that are not ``None``."""
    kept = [value for value in values if value is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
