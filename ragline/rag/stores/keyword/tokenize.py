"""The one tokenizer of the keyword index, shared by every backend so that a chunk and a
query become the same terms wherever they are stored.

Lowercase, split on anything that is not a letter or a digit, drop English stopwords
(NLTK's list, the one BEIR's BM25 baselines and Chroma's BM25 use) and stem with Snowball
English (Porter2) through PyStemmer, the C build of the Snowball stemmers.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no type hints

MAX_TERM_LENGTH = 40
"""Longer tokens are base64, hashes and the like: noise for ranking."""

STOPWORDS = frozenset(
    """
    a about above after again against ain all am an and any are aren as at be because been
    before being below between both but by can couldn d did didn do does doesn doing don
    down during each few for from further had hadn has hasn have haven having he her here
    hers herself him himself his how i if in into is isn it its itself just ll m ma me
    mightn more most mustn my myself needn no nor not now o of off on once only or other our
    ours ourselves out over own re s same shan she should shouldn so some such t than that
    the their theirs them themselves then there these they this those through to too under
    until up ve very was wasn we were weren what when where which while who whom why will
    with won wouldn y you your yours yourself yourselves
    """.split()  # noqa: SIM905
)

_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """The text's index terms, in order, repeats kept."""
    words = [
        word
        for word in _WORD.findall(text.lower())
        if word not in STOPWORDS and len(word) <= MAX_TERM_LENGTH
    ]
    return list(_stemmer().stemWords(words))


def term_counts(text: str) -> Counter[str]:
    """Term frequencies of the text (a query's counts weight repeated query terms)."""
    return Counter(terms(text))
