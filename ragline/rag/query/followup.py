"""Whether a follow-up question needs the conversation to be understood (no model).

A follow-up is rewritten into a standalone query before retrieval only when it needs the
conversation: the rewrite is one more model call before the answer's first token, and a
small model's rewrite can drift to the previous topic ("who founded Microsoft?" after a
question about Albania became a question about Albania). The rule, on the words:

- a word that points back (*it*, *its*, *they*, *this*, *that*, *he*, *one*, *there* —
  not the *there* of "is there" —, *former*, *same*, ...) → needs it;
- an elliptic opening (*what about ...*, *how about ...*, *what else ...*) → needs it; a
  leading *and*, *but*, *so*, ... is dropped first ("And what is the capital of Chile?"
  stands alone);
- fewer than two content words ("In which year?", "Why?", "And the population?") → needs
  it;
- no English question word or auxiliary at all → needs it: the word lists are English, so
  a question in another language is always rewritten.

A question that passes stands alone and is searched as asked. A mistake costs little
either way: a needless rewrite costs its model call, and the rewritten query is fused with
the question as asked (:func:`ragline.rag.query.fusion.reciprocal_rank_fusion`), so a
drifting rewrite cannot take the question's own results away.
"""

from __future__ import annotations

import re


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


MIN_CONTENT_WORDS = 2
REFERENCES = _set(
    "it its itself they them their theirs themselves this that these those he him his "
    "himself she her hers herself there thereof therein former latter same such else "
    "aforementioned above previous one ones"
)
LEADING = _set("and but or so also then plus now ok okay well")
ELLIPTIC = frozenset(
    {("what", "about"), ("how", "about"), ("what", "else"), ("why", "not"), ("same", "for")}
)
BE = _set("is are was were be been being 's am")
ENGLISH = _set(
    "what which who whom whose when where why how is are was were am do does did can could "
    "should would will shall may might must has have had list name give tell show explain "
    "describe define compare summarize summarise find"
)
GRAMMAR = _set(
    "a an the of in on at to for from by with about as into onto over under between among "
    "during before after since until than via per within without through across against "
    "up down out off i me my mine we us our you your yours any some all each every no not "
    "nor yes if whether very more most much many few less least long old big far often "
    "please thanks exactly really just only doing done having get got mean means meant "
    "called call say says said t don doesn didn isn aren wasn weren won couldn shouldn "
    "wouldn hasn haven hadn"
)
FUNCTION_WORDS = ENGLISH | BE | REFERENCES | LEADING | GRAMMAR
"""Words that carry no topic: a question needs two others to stand alone."""
_WORD = re.compile(r"[^\W_]+|'s\b")


def words(text: str) -> list[str]:
    """Lower-case words; a possessive or contracted *'s* is a word of its own (*is*)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def needs_history(question: str) -> bool:
    """Whether ``question``, asked after earlier turns, needs them to be understood (see
    the module's rule); ``False`` means it is searched as asked, without a rewrite."""
    tokens = words(question)
    while tokens and tokens[0] in LEADING:
        tokens = tokens[1:]
    if not tokens or tuple(tokens[:2]) in ELLIPTIC or ENGLISH.isdisjoint(tokens):
        return True
    if any(_refers_back(tokens, i) for i, word in enumerate(tokens) if word in REFERENCES):
        return True
    return sum(word not in FUNCTION_WORDS for word in tokens) < MIN_CONTENT_WORDS


def _refers_back(tokens: list[str], i: int) -> bool:
    """``tokens[i]`` (a reference word) points back, unless it is the *there* of "there
    is" / "are there"."""
    if tokens[i] != "there":
        return True
    around = {tokens[j] for j in (i - 1, i + 1) if 0 <= j < len(tokens)}
    return BE.isdisjoint(around)
