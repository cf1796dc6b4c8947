"""Conversation memory: the latest turns verbatim within a token budget, older turns
condensed to one short line each (no model call: condensing is extractive), and the
follow-up question rewritten into a standalone query for retrieval."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ragline.rag.llm.base import LLM, ChatMessage, GenerationParams, complete

CONDENSED_CHARS = 160
REWRITE_MAX_TOKENS = 64
REWRITE_INSTRUCTION = (
    "Rewrite the user's last question as one standalone question that can be understood "
    "without the conversation. Answer with the question only."
)


def _condense(message: ChatMessage) -> str:
    text = " ".join(message.content.split())
    if len(text) > CONDENSED_CHARS:
        text = text[: CONDENSED_CHARS - 1].rstrip() + "…"
    return f"{message.role}: {text}"


def fit_history(
    turns: Sequence[ChatMessage], *, budget: int, count_tokens: Callable[[str], int]
) -> list[ChatMessage]:
    """``turns`` oldest first. The newest turns that fit ``budget`` stay as they are; the
    ones before become a single system note of condensed lines (itself within budget)."""
    kept: list[ChatMessage] = []
    used = 0
    for turn in reversed(turns):
        cost = count_tokens(turn.content)
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    older = turns[: len(turns) - len(kept)]
    if not older:
        return kept
    lines: list[str] = []
    for turn in reversed(older):
        line = _condense(turn)
        cost = count_tokens(line)
        if used + cost > budget:
            break
        lines.append(line)
        used += cost
    if not lines:
        return kept
    note = "Earlier in this conversation (condensed):\n" + "\n".join(reversed(lines))
    return [ChatMessage("system", note), *kept]


async def standalone_question(
    llm: LLM, *, history: Sequence[ChatMessage], question: str, model: str | None
) -> str:
    """The follow-up rewritten for retrieval; the question itself if the model gives
    nothing usable."""
    transcript = "\n".join(_condense(turn) for turn in history[-6:])
    messages = [
        ChatMessage("system", REWRITE_INSTRUCTION),
        ChatMessage("user", f"Conversation:\n{transcript}\n\nLast question: {question}"),
    ]
    params = GenerationParams(temperature=0.0, max_tokens=REWRITE_MAX_TOKENS, model=model)
    rewritten = (await complete(llm, messages, params)).text.strip().strip('"')
    return rewritten if 3 <= len(rewritten) <= 500 else question
