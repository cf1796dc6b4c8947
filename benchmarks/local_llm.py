"""The embedded chat model's time to first token against the prompt's size: ragline's real
prompt (`rag.query.prompt.build_messages`) with 0..N retrieved chunks of SciFact
abstracts (~250 tokens each, as CHUNK_SIZE makes them), run by `LocalLLM` in this process
with nothing cached, for each thread count, on an idle machine and while an ingest-like
load (the local embedder embedding SciFact in another process) keeps the cores busy.
Prints prompt tokens, median time to first token and generation speed, and the ratio to
the no-chunk prompt measured in the same run; `--plot PATH` draws first-token time against
prompt tokens.

    python -m benchmarks.local_llm [--chunks 0,1,2,3,5,8] [--threads 1,2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import scifact_corpus, table
from ragline.config import Settings
from ragline.rag.llm.base import GenerationParams, Usage
from ragline.rag.llm.local import LocalLLM
from ragline.rag.llm.requantise import find_chat_model
from ragline.rag.query.prompt import build_messages
from ragline.rag.query.retrieve import RetrievedChunk

_REQUESTS = itertools.count()
QUESTION = "Which treatment reduced mortality in the trial, and by how much?"
NEW_TOKENS = 24


def chunks(count: int, corpus: list[dict[str, str]]) -> list[RetrievedChunk]:
    out = []
    for i, doc in enumerate(corpus[:count]):
        text = " ".join(doc["text"].split()[:190])  # ~250 MiniLM tokens
        out.append(
            RetrievedChunk(
                id=f"c{i}",
                text=text,
                score=1.0,
                dense_score=None,
                keyword_score=None,
                file_id=f"f{i}",
                file_name=f"{doc['title'][:40]}.pdf",
                page=1 + i % 9,
                section=None,
                start_char=0,
                end_char=len(text),
            )
        )
    return out


async def first_token(llm: LocalLLM, retrieved: list[RetrievedChunk]) -> dict[str, float]:
    messages = build_messages(
        # A new first line each time: OpenVINO GenAI reuses the KV cache of a prompt's
        # common prefix with the previous one, and every prompt here must start cold.
        system_prompt=f"Request {next(_REQUESTS)}. You are a helpful assistant.",
        history=[],
        chunks=retrieved,
        question=QUESTION,
    )
    usage = Usage()
    started = time.perf_counter()
    times: list[float] = []
    async for _ in llm.stream(messages, GenerationParams(max_tokens=NEW_TOKENS), usage):
        times.append(time.perf_counter())
    generated = usage.completion_tokens - 1
    return {
        "prompt_tokens": usage.prompt_tokens,
        "ttft_s": times[0] - started,
        "tokens_per_s": generated / (times[-1] - times[0]) if generated > 0 else 0.0,
    }


def busy(stop: Any) -> None:
    """An ingest's CPU: the local embedder embedding SciFact abstracts until told to stop."""
    from ragline.config import Settings
    from ragline.rag.providers import build_base_embedder

    embedder = build_base_embedder(Settings())
    texts = [doc["text"] for doc in scifact_corpus(2000)]
    i = 0
    while not stop.is_set():
        embedder.embed(texts[i : i + 64])
        i = (i + 64) % len(texts)


def measure(counts: list[int], threads: int, rounds: int) -> dict[int, dict[str, float]]:
    corpus = scifact_corpus(max(counts) + 1)
    prepared = find_chat_model(Settings().models_dir)  # the default: the Q8_0 file
    llm = LocalLLM(model_path=prepared, n_ctx=8192, n_threads=threads)
    llm.warm_up()
    asyncio.run(first_token(llm, chunks(1, corpus)))  # first inference: kernels prepared
    results: dict[int, list[dict[str, float]]] = {count: [] for count in counts}
    for _ in range(rounds):
        for count in counts:
            results[count].append(asyncio.run(first_token(llm, chunks(count, corpus))))
    asyncio.run(llm.aclose())
    return {
        count: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for count, runs in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="0,1,2,3,5,8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    counts = [int(n) for n in args.chunks.split(",")]
    rows = [("load", "threads", "chunks", "prompt tokens", "first token s", "ratio", "tokens/s")]
    series: dict[str, tuple[list[float], list[float]]] = {}
    for load in ("idle", "ingest"):
        stop = multiprocessing.Event()
        worker = multiprocessing.Process(target=busy, args=(stop,)) if load == "ingest" else None
        if worker:
            worker.start()
            time.sleep(10)  # the embedder loaded and busy
        try:
            for threads in (int(t) for t in args.threads.split(",")):
                figures = measure(counts, threads, args.rounds)
                base = figures[counts[0]]["ttft_s"]
                for count, f in figures.items():
                    rows.append(
                        (
                            load,
                            str(threads),
                            str(count),
                            f"{f['prompt_tokens']:.0f}",
                            f"{f['ttft_s']:.2f}",
                            f"{f['ttft_s'] / base:.2f}",
                            f"{f['tokens_per_s']:.1f}",
                        )
                    )
                series[f"{load}, {threads} thread(s)"] = (
                    [f["prompt_tokens"] for f in figures.values()],
                    [f["ttft_s"] for f in figures.values()],
                )
        finally:
            if worker:
                stop.set()
                worker.join()
    print(table(rows))
    if args.plot:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

        for label, (x, y) in series.items():
            plt.plot(x, y, marker="o", label=label)
        plt.xlabel("prompt tokens")
        plt.ylabel("time to first token (s)")
        plt.title("SmolLM2-135M on OpenVINO GenAI, ragline's prompt")
        plt.legend()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plt.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
