"""The evaluation's flow: plan the chats, load the documents into an assistant per chat,
ask, score, delete.

A *fresh chat* is a conversation without history. ragline keeps one history per assistant
(``/chats/{id}``: the assistant is the chat), so every conversation gets an assistant of
its own, loaded with all of the dataset's documents through ``POST /chats/{id}/upload``:
one per single question, one per chain (its turns asked in order), and one per follow-up
turn to ask its gold standalone form. All are loaded first and the questions asked once
every file is ``indexed``, so ingestion never runs beside a timed answer. Re-loading the
same documents is cheap: the server's embedding cache holds their vectors after the first.

Each question is asked on the stream endpoint (time to first token, total latency, the
``sources`` the answer used, the ``done`` event), then searched with
``POST /chats/{id}/search`` as asked (``k`` = 5).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from ragline.client import ClientError
from ragline.evaluation.answers.client import Asked, Assistant, RaglineClient
from ragline.evaluation.answers.dataset import Chain, QADataset, Question
from ragline.evaluation.answers.metrics import (
    HIT_K,
    best_f1,
    contains_match,
    flagged,
    hit_at,
    is_right,
    tokens,
)

Mode = Literal["single", "chain", "standalone"]
POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class Prompt:
    """One question to ask, with its gold."""

    id: str
    kind: str  # "single" or the chain's kind
    mode: Mode
    turn: int | None  # 1-based in its chain
    question: str
    standalone: str | None
    answers: list[str]
    documents: list[str]
    format: str


@dataclass(slots=True)
class AnswerRow:
    """One asked question: gold, answer, scores, timings."""

    id: str
    kind: str
    mode: Mode
    turn: int | None
    format: str
    question: str
    standalone: str | None
    answers: list[str]
    documents: list[str]
    prediction: str
    f1: float
    contains: bool | None
    right: bool
    answer_tokens: int
    hit_sources: bool | None
    """A gold document among the first 5 ``sources`` of the answer (what the chat used)."""
    hit_search: bool | None
    """A gold document among ``/search``'s top 5 for the question as asked (no history)."""
    source_files: list[str | None]
    search_files: list[str | None]
    ttft_s: float | None
    latency_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    supported: Any
    unsupported: Any
    flagged: bool | None
    error: str | None
    chat_id: str
    message_id: str | None


@dataclass(slots=True)
class Run:
    rows: list[AnswerRow] = field(default_factory=list)
    assistants: list[str] = field(default_factory=list)
    undeleted: list[str] = field(default_factory=list)
    setup_s: float = 0.0


def plan(dataset: QADataset) -> list[list[Prompt]]:
    """The conversations to hold, each in a fresh chat: every single question; every chain;
    and each follow-up turn's standalone form."""
    formats = {document.path: document.format for document in dataset.manifest.documents}
    conversations = [[_single(question)] for question in dataset.questions]
    for chain in dataset.chains:
        conversations.append(list(_turns(chain, formats, "chain")))
        conversations += [[p] for p in _turns(chain, formats, "standalone") if p.turn != 1]
    return conversations


def _single(question: Question) -> Prompt:
    return Prompt(
        id=question.id,
        kind="single",
        mode="single",
        turn=None,
        question=question.question,
        standalone=None,
        answers=question.answers,
        documents=question.documents,
        format=question.format,
    )


def _turns(chain: Chain, formats: Mapping[str, str], mode: Mode) -> list[Prompt]:
    return [
        Prompt(
            id=chain.id,
            kind=chain.kind,
            mode=mode,
            turn=number,
            question=turn.question if mode == "chain" else turn.standalone,
            standalone=turn.standalone,
            answers=turn.answers,
            documents=turn.documents,
            format=formats[turn.documents[0]],
        )
        for number, turn in enumerate(chain.turns, start=1)
    ]


def provision(
    client: RaglineClient,
    dataset: QADataset,
    *,
    docs_root: Path,
    count: int,
    created: list[str],
    progress: Callable[[str, int, int], None],
) -> list[Assistant]:
    """``count`` assistants holding every document, each ``indexed``. Ids are appended to
    ``created`` as they are made, so the caller can delete them whatever happens."""
    paths = [document.path for document in dataset.manifest.documents]
    assistants = []
    for number in range(1, count + 1):
        chat_id = client.create_assistant(
            f"ragline eval answers {dataset.manifest.name}/{dataset.split} {number}/{count}",
            "Created by `ragline eval answers`; deleted when it ends unless --keep.",
        )
        created.append(chat_id)
        assistants.append(Assistant(chat_id, client.upload(chat_id, docs_root, paths)))
        progress("uploading", number, count)
    waiting = [assistant.chat_id for assistant in assistants]
    while waiting:
        waiting = [chat_id for chat_id in waiting if client.pending_files(chat_id)]
        progress("indexing", count - len(waiting), count)
        if waiting:
            time.sleep(POLL_S)
    for assistant in assistants:
        failed = client.failed_files(assistant.chat_id)
        if failed:
            raise ClientError(f"ingestion failed: {'; '.join(failed)}")
    return assistants


def ask_conversation(
    client: RaglineClient, prompts: Sequence[Prompt], assistant: Assistant
) -> list[AnswerRow]:
    """The prompts in order, in the assistant's chat; each then searched as asked."""
    rows = []
    for prompt in prompts:
        asked = client.ask(assistant.chat_id, prompt.question)
        hits = client.search(assistant.chat_id, prompt.question, k=HIT_K)
        search_files = [assistant.documents.get(str(hit["file_id"])) for hit in hits]
        rows.append(_score(client, prompt, asked, assistant, search_files))
    return rows


def _score(
    client: RaglineClient,
    prompt: Prompt,
    asked: Asked,
    assistant: Assistant,
    search_files: list[str | None],
) -> AnswerRow:
    gold = set(prompt.documents)
    source_files = [assistant.documents.get(str(s.get("file_id"))) for s in asked.sources]
    message_id = asked.done.get("message_id")
    usage: dict[str, Any] = dict(asked.done.get("usage") or {})
    if message_id and not usage:
        usage = client.usage(assistant.chat_id, str(message_id)) or {}
    f1 = best_f1(asked.text, prompt.answers)
    contains = contains_match(asked.text, prompt.answers)
    return AnswerRow(
        id=prompt.id,
        kind=prompt.kind,
        mode=prompt.mode,
        turn=prompt.turn,
        format=prompt.format,
        question=prompt.question,
        standalone=prompt.standalone,
        answers=prompt.answers,
        documents=prompt.documents,
        prediction=asked.text,
        f1=f1,
        contains=contains,
        right=asked.error is None and is_right(f1, contains),
        answer_tokens=len(tokens(asked.text)),
        hit_sources=None if asked.error else hit_at(source_files, gold),
        hit_search=hit_at(search_files, gold),
        source_files=source_files[:HIT_K],
        search_files=search_files,
        ttft_s=asked.ttft_s,
        latency_s=asked.latency_s,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        supported=asked.done.get("supported"),
        unsupported=asked.done.get("unsupported"),
        flagged=flagged(asked.done) if asked.done else None,
        error=asked.error,
        chat_id=assistant.chat_id,
        message_id=str(message_id) if message_id else None,
    )


def run_evaluation(
    client: RaglineClient,
    dataset: QADataset,
    *,
    docs_root: Path,
    keep: bool,
    progress: Callable[[str, int, int], None],
) -> Run:
    """Plan, load, ask every conversation; the assistants are deleted at the end (also on
    failure) unless ``keep``."""
    conversations = plan(dataset)
    run = Run()
    try:
        started = time.perf_counter()
        assistants = provision(
            client,
            dataset,
            docs_root=docs_root,
            count=len(conversations),
            created=run.assistants,
            progress=progress,
        )
        run.setup_s = time.perf_counter() - started
        for number, (prompts, assistant) in enumerate(
            zip(conversations, assistants, strict=True), start=1
        ):
            run.rows += ask_conversation(client, prompts, assistant)
            progress("asking", number, len(conversations))
    finally:
        if not keep:
            for chat_id in run.assistants:
                try:
                    client.delete_assistant(chat_id)
                except (ClientError, httpx.HTTPError):
                    run.undeleted.append(chat_id)
    return run
