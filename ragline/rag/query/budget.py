"""Fitting the prompt to the model's context window.

The window (``LLM_CONTEXT_TOKENS``) holds the prompt and the answer: the answer's room
(``max_tokens``) is kept free, the assistant's system prompt, the grounding instruction and
the question must fit whole (else :class:`PromptTooLong`: the caller answers 422), then the
retrieved passages in rank order, then the conversation so far with what is left.

Tokens are counted without any download: the embedded model counts with its own tokenizer
(exact); a remote model's tokenizer is unknown here, so :func:`estimate_tokens` gives an
upper estimate from the tokenizer shipped with the embedding model and the text's bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragline.rag.llm.base import ChatMessage
from ragline.rag.query.memory import fit_history
from ragline.rag.query.prompt import GROUNDING, NO_PASSAGES, build_messages, passages
from ragline.rag.query.retrieve import RetrievedChunk

MESSAGE_TOKENS = 8
"""A chat template's own tokens around each message (role markers, separators)."""
MARGIN_TOKENS = 16
"""Slack for pieces counted apart and joined (a token may form across a boundary)."""
WORDPIECE_FACTOR = 1.4
NON_ASCII_BYTE_TOKENS = 0.6
ASCII_BYTE_TOKENS = 0.3
MIN_QUESTION_TOKENS = 256
"""Room an assistant's system prompt must leave for a question and a passage."""

Counter = Callable[[str], int]


class PromptTooLong(Exception):
    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"needs {needed} tokens, {available} available")
        self.needed = needed
        self.available = available


def estimate_tokens(wordpieces: Callable[[str], Sequence[int]]) -> Counter:
    """An upper estimate of a byte-level BPE model's token count (Llama, Qwen, SmolLM2 ...)
    from WordPiece tokens (``wordpieces``) and UTF-8 bytes. Measured against SmolLM2's
    tokenizer: BPE/WordPiece at most 1.32 on 300 SciFact abstracts, 0.98 German, 0.96
    code; BPE tokens per non-ASCII byte 0.51 for Chinese and 0.58 for emoji
    (tests/rag/query/test_budget.py checks the estimate stays above on such texts). Long
    runs of digits or base64 (up to 1.9x WordPiece) can exceed it: the provider then
    refuses the prompt, which answers 422 as well."""

    def count(text: str) -> int:
        ascii_bytes = len(text.encode("ascii", "ignore"))
        other_bytes = len(text.encode()) - ascii_bytes
        by_bytes = other_bytes * NON_ASCII_BYTE_TOKENS + ascii_bytes * ASCII_BYTE_TOKENS
        return math.ceil(max(len(wordpieces(text)) * WORDPIECE_FACTOR, by_bytes))

    return count


@dataclass(frozen=True, slots=True)
class PromptBudget:
    window: int
    """The model's context window (prompt and answer), in tokens."""
    answer_tokens: int
    count: Counter

    @property
    def prompt_room(self) -> int:
        return self.window - self.answer_tokens

    def fixed_cost(self, system_prompt: str, question: str) -> int:
        """Tokens of what must fit whole: system prompt, grounding, question."""
        return (
            self.count(system_prompt)
            + self.count(GROUNDING)
            + self.count(NO_PASSAGES)
            + self.count(question)
            + 2 * MESSAGE_TOKENS
            + MARGIN_TOKENS
        )

    def check(self, system_prompt: str, question: str) -> int:
        """The room left for passages and history; :class:`PromptTooLong` if none."""
        needed = self.fixed_cost(system_prompt, question)
        if needed > self.prompt_room:
            raise PromptTooLong(needed, self.prompt_room)
        return self.prompt_room - needed

    def max_system_prompt(self) -> int:
        """The most an assistant's system prompt may take and leave a question room."""
        return self.prompt_room - self.fixed_cost("", "") - MIN_QUESTION_TOKENS


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    messages: list[ChatMessage]
    chunks: list[RetrievedChunk]
    """The passages the prompt holds, in its numbering."""
    history: list[ChatMessage]


def fit_prompt(
    budget: PromptBudget,
    *,
    room: int,
    system_prompt: str,
    history: Sequence[ChatMessage],
    chunks: Sequence[RetrievedChunk],
    question: str,
    history_tokens: int,
) -> FittedPrompt:
    """The prompt within ``budget``, given the ``room`` that :meth:`PromptBudget.check` left
    for passages and history: passages best first while they fit (a passage that does not
    is left out, a shorter one after it may still fit), then the newest turns within
    ``history_tokens`` and what is left (:func:`fit_history` condenses older ones)."""
    kept: list[RetrievedChunk] = []
    for chunk in chunks:
        cost = budget.count(passages([chunk])[0]) + 2
        if cost <= room:
            kept.append(chunk)
            room -= cost
    turns = fit_history(
        history,
        budget=min(history_tokens, room),
        count_tokens=lambda text: budget.count(text) + MESSAGE_TOKENS,
    )
    messages = build_messages(
        system_prompt=system_prompt, history=turns, chunks=kept, question=question
    )
    return FittedPrompt(messages=messages, chunks=kept, history=turns)
