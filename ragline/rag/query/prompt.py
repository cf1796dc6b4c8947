"""The prompt: the assistant's system prompt, the retrieved passages numbered for
citation, the conversation so far, and the question."""

from __future__ import annotations

from collections.abc import Sequence

from ragline.rag.llm.base import ChatMessage
from ragline.rag.query.retrieve import RetrievedChunk

GROUNDING = (
    "Answer the user's question using the numbered passages below from the user's own "
    "files. Cite the passages you use as [1], [2]. If the passages do not contain the "
    "answer, say that you do not know."
)
NO_PASSAGES = "No passage of the user's files matches this question."


def passage_label(chunk: RetrievedChunk) -> str:
    where = f", page {chunk.page}" if chunk.page is not None else ""
    where += f", section {chunk.section}" if chunk.section else ""
    return f"{chunk.file_name}{where}"


def passages(chunks: Sequence[RetrievedChunk]) -> list[str]:
    """The numbered passages, as the model reads them (and as claims are checked against)."""
    return [f"[{n}] ({passage_label(chunk)})\n{chunk.text}" for n, chunk in enumerate(chunks, 1)]


def build_messages(
    *,
    system_prompt: str,
    history: Sequence[ChatMessage],
    chunks: Sequence[RetrievedChunk],
    question: str,
) -> list[ChatMessage]:
    numbered = "\n\n".join(passages(chunks))
    notes = [m.content for m in history if m.role == "system"]  # e.g. condensed turns
    turns = [m for m in history if m.role != "system"]
    system = "\n\n".join(
        part for part in (system_prompt.strip(), *notes, GROUNDING, numbered or NO_PASSAGES) if part
    )
    return [ChatMessage("system", system), *turns, ChatMessage("user", question)]
