"""Tuning the embedded chat model's prompt, decoding and context budget on the dev split,
faster than a full `ragline eval answers` per variant: the question set's documents are
loaded once into one assistant of a real server, each dev question's chunks are taken from
its `/search` (hybrid, as chat retrieves), the server is stopped, and each variant answers
every question with `LocalLLM` in this process, scored as the eval scores (token F1,
contains-match, right, the `supported` check) with the first-token time and prompt size.
Variants are named on the command line (`--variants quote,quote-user`; `--list` shows
them); the first is the baseline of the ratio column.

    python -m benchmarks.answer_lab --variants current,quote --chunks 5,3 [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import ragline_process, require, retrieved_chunk, table
from benchmarks.ingest import DEV, encode_uploads, upload_all, wait_indexed
from ragline.evaluation.answers.dataset import DEFAULT_DATASET, load_dataset
from ragline.evaluation.answers.metrics import best_f1, contains_match, is_right, tokens
from ragline.rag.llm.base import ChatMessage, GenerationParams, Usage
from ragline.rag.llm.local import LocalLLM
from ragline.rag.query import prompt
from ragline.rag.query.claims import check_claims
from ragline.rag.query.retrieve import RetrievedChunk

CANDIDATES = Path(os.environ.get("CANDIDATE_MODELS", Path.home() / "candidate-models"))
"""Where benchmarks/requantise.py's output was written (the q8 variants)."""
Q8 = "SmolLM2-135M-Instruct.Q8_0.gguf"
SYSTEM = "You are a helpful assistant."  # the assistants' default context in the eval
Builder = Callable[[Sequence[RetrievedChunk], str], list[ChatMessage]]


def shipped(chunks: Sequence[RetrievedChunk], question: str) -> list[ChatMessage]:
    return prompt.build_messages(system_prompt=SYSTEM, history=[], chunks=chunks, question=question)


QUOTE = (
    "Answer the user's question with the exact words of the numbered passages below, from "
    "the user's own files: copy the shortest part of a passage that answers it, add nothing "
    "else, and cite the passage as [1]. If no passage answers it, say that you do not know."
)
SHORT = (
    "Answer the question in one short sentence, using only the numbered passages below from "
    "the user's files, and cite the passage as [1]. If they do not contain the answer, say "
    "that you do not know."
)


def system_variant(instruction: str) -> Builder:
    def build(chunks: Sequence[RetrievedChunk], question: str) -> list[ChatMessage]:
        numbered = "\n\n".join(prompt.passages(chunks)) or prompt.NO_PASSAGES
        system = f"{SYSTEM}\n\n{instruction}\n\n{numbered}"
        return [ChatMessage("system", system), ChatMessage("user", question)]

    return build


def user_variant(instruction: str, *, question_first: bool = False) -> Builder:
    def build(chunks: Sequence[RetrievedChunk], question: str) -> list[ChatMessage]:
        numbered = "\n\n".join(prompt.passages(chunks)) or prompt.NO_PASSAGES
        body = (
            f"Question: {question}\n\n{numbered}\n\nQuestion: {question}"
            if question_first
            else f"{numbered}\n\nQuestion: {question}"
        )
        return [ChatMessage("system", f"{SYSTEM}\n\n{instruction}"), ChatMessage("user", body)]

    return build


@dataclass
class Variant:
    build: Builder
    decoding: dict[str, Any] = field(default_factory=dict)
    max_tokens: int = 512
    temperature: float = 0.2
    stop: tuple[str, ...] = ()
    model: Path | None = None
    """Another GGUF (default: the shipped one)."""
    properties: dict[str, Any] = field(default_factory=dict)
    """OpenVINO properties of the pipeline."""


VARIANTS: dict[str, Variant] = {
    "current": Variant(shipped),
    "quote": Variant(system_variant(QUOTE)),
    "quote-user": Variant(user_variant(QUOTE)),
    "quote-user-q2": Variant(user_variant(QUOTE, question_first=True)),
    "short": Variant(system_variant(SHORT)),
    "short-user": Variant(user_variant(SHORT)),
    "current-greedy": Variant(shipped, temperature=0.0),
    "current-ngram": Variant(shipped, decoding={"no_repeat_ngram_size": 4}),
    "quote-user-ngram": Variant(user_variant(QUOTE), decoding={"no_repeat_ngram_size": 4}),
    "quote-user-64": Variant(user_variant(QUOTE), max_tokens=64),
    "quote-user-greedy": Variant(user_variant(QUOTE), temperature=0.0),
    "quote-user-rp13": Variant(user_variant(QUOTE), decoding={"repetition_penalty": 1.3}),
    "quote-user-rp10": Variant(user_variant(QUOTE), decoding={"repetition_penalty": 1.0}),
    "cap64": Variant(shipped, max_tokens=64),
    "cap64-greedy": Variant(shipped, max_tokens=64, temperature=0.0),
    "q8-cap64-greedy": Variant(shipped, max_tokens=64, temperature=0.0, model=CANDIDATES / Q8),
    "q8-cap64": Variant(shipped, max_tokens=64, model=CANDIDATES / Q8),
    "dq0-cap64-greedy": Variant(
        shipped,
        max_tokens=64,
        temperature=0.0,
        properties={"DYNAMIC_QUANTIZATION_GROUP_SIZE": 0},
    ),
    "para": Variant(shipped, stop=("\n\n",)),
    "para-greedy": Variant(shipped, stop=("\n\n",), temperature=0.0),
    "short-para": Variant(system_variant(SHORT), stop=("\n\n",)),
    "quote-para": Variant(system_variant(QUOTE), stop=("\n\n",)),
}


def retrieve_all(questions: list[Any], docs: list[Path], work: Path, k: int) -> list[list[dict]]:
    with ragline_process(work / "data") as (base, _):
        chat = httpx.post(f"{base}/chats", json={"title": "lab"}, headers=DEV).json()["id"]
        upload_all(encode_uploads(base, chat, docs))
        wait_indexed(base, chat, len(docs))
        with httpx.Client(base_url=base, headers=DEV, timeout=120) as client:
            return [
                client.post(f"/chats/{chat}/search", json={"query": q.question, "k": k})
                .raise_for_status()
                .json()["results"]
                for q in questions
            ]


async def answer(
    llm: LocalLLM, messages: list[ChatMessage], params: GenerationParams
) -> tuple[str, float, int]:
    usage = Usage()
    started = time.perf_counter()
    first: float | None = None
    pieces = []
    async for piece in llm.stream(messages, params, usage):
        first = first if first is not None else time.perf_counter() - started
        pieces.append(piece)
    return "".join(pieces), first or 0.0, usage.prompt_tokens or 0


def evaluate(
    name: str, chunks_k: int, questions: list[Any], hits: list[list[dict]], out: list[dict]
) -> dict[str, float]:
    variant = VARIANTS[name]
    llm = LocalLLM(
        model_path=variant.model, decoding=variant.decoding, properties=variant.properties
    )
    llm.warm_up()
    params = GenerationParams(
        temperature=variant.temperature, max_tokens=variant.max_tokens, stop=variant.stop
    )
    rows = []
    for question, found in zip(questions, hits, strict=True):
        chunks = [retrieved_chunk(hit) for hit in found[:chunks_k]]
        messages = variant.build(chunks, question.question)
        text, ttft, prompt_tokens = asyncio.run(answer(llm, messages, params))
        f1 = best_f1(text, question.answers)
        contains = contains_match(text, question.answers)
        right = is_right(f1, contains)
        check = check_claims(text, prompt.passages(chunks), [SYSTEM, question.question])
        rows.append((f1, contains, right, not check.supported, ttft, prompt_tokens, text))
        out.append(
            {"variant": name, "k": chunks_k, "id": question.id, "answer": text, "right": right}
        )
    asyncio.run(llm.aclose())
    flags_wrong = [r[3] for r in rows if not r[2]]
    flags_right = [r[3] for r in rows if r[2]]
    return {
        "f1": statistics.mean(r[0] for r in rows),
        "contains": statistics.mean(bool(r[1]) for r in rows if r[1] is not None),
        "right": statistics.mean(r[2] for r in rows),
        "wrong_flagged": statistics.mean(flags_wrong) if flags_wrong else float("nan"),
        "right_flagged": statistics.mean(flags_right) if flags_right else float("nan"),
        "tokens": statistics.mean(len(tokens(r[6])) for r in rows),
        "ttft": statistics.median(r[4] for r in rows),
        "prompt": statistics.mean(r[5] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="current")
    parser.add_argument("--chunks", default="5")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--answers", type=Path, default=None, help="write every answer (JSON)")
    parser.add_argument("--hits", type=Path, default=None, help="cache of the searches (JSON)")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        print("\n".join(VARIANTS))
        return
    dataset = load_dataset(DEFAULT_DATASET, split=args.split)
    root = dataset.default_docs_root()
    require(root)
    questions = list(dataset.questions[: args.limit])
    budgets = [int(k) for k in args.chunks.split(",")]
    if args.hits and args.hits.exists():
        hits = json.loads(args.hits.read_text())[: len(questions)]
    else:
        with tempfile.TemporaryDirectory(prefix="ragline-lab-") as tmp:
            docs = [root / d.path for d in dataset.manifest.documents]
            hits = retrieve_all(questions, docs, Path(tmp), max(8, *budgets))
        if args.hits:
            args.hits.write_text(json.dumps(hits))
    results, answers = [], []
    for name in args.variants.split(","):
        for k in budgets:
            m = evaluate(name, k, questions, hits, answers)
            results.append((name, k, m))
            print(f"{name} k={k}: " + ", ".join(f"{key} {v:.3f}" for key, v in m.items()))
    base = results[0][2]["ttft"]
    rows = [("variant", "chunks", "F1", "contains", "right", "wrong fl", "right fl", "tokens")]
    rows[0] += ("TTFT med", "prompt tok", "TTFT/base")
    for name, k, m in results:
        rows.append(
            (
                name,
                str(k),
                f"{m['f1']:.3f}",
                *(f"{100 * m[key]:.1f}%" for key in ("contains", "right")),
                *(f"{100 * m[key]:.1f}%" for key in ("wrong_flagged", "right_flagged")),
                f"{m['tokens']:.0f}",
                f"{m['ttft']:.2f} s",
                f"{m['prompt']:.0f}",
                f"{m['ttft'] / base:.2f}",
            )
        )
    print(table(rows))
    if args.answers:
        args.answers.write_text(json.dumps(answers, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
