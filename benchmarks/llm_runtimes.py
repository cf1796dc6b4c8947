"""The embedded chat model's runtime candidates on the shipped SmolLM2-135M GGUF (Q4_1):
xllamacpp (llama.cpp, prebuilt; the baseline) against OpenVINO GenAI (which reads GGUF
itself; ragline's choice), both installed from PyPI without compiling (`make bench-deps`).
Each runtime runs in a process of its own, alternating, so both see the same machine; per
runtime: load time, time to first token of a fresh ~1,000-token prompt (nothing cached),
generation tokens/s, and the ratio to the baseline. A runtime not installed is skipped.

    python -m benchmarks.llm_runtimes [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import table

CONTEXT = " ".join(
    f"Record {i}: the Helios project site {i} was surveyed in {2000 + i % 20} by team {i % 7}."
    for i in range(40)
)
MESSAGES = [
    {"role": "system", "content": f"Answer from these sources only.\n{CONTEXT}"},
    {"role": "user", "content": "Which team surveyed site 12?"},
]
NEW_TOKENS = 32


def run_xllamacpp(gguf: str, threads: int) -> dict[str, float]:
    import xllamacpp  # type: ignore[import-untyped]

    started = time.perf_counter()
    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.n_ctx = 4096
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    params.verbosity = -1
    server = xllamacpp.Server(params)
    loaded = time.perf_counter() - started
    times: list[float] = []
    prompt_tokens = [0]

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if any(c.get("delta", {}).get("content") for c in chunk.get("choices", ())):
            times.append(time.perf_counter())
        if chunk.get("usage"):
            prompt_tokens[0] = chunk["usage"]["prompt_tokens"]
        return False

    asked = time.perf_counter()
    request = {
        "messages": MESSAGES,
        "max_tokens": NEW_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    server.handle_chat_completions(request, on_chunk)
    return _figures(loaded, asked, times, prompt_tokens[0])


def run_openvino_genai(gguf: str, threads: int) -> dict[str, float]:
    import openvino_genai  # type: ignore[import-not-found, unused-ignore]

    started = time.perf_counter()
    pipe = openvino_genai.LLMPipeline(gguf, "CPU", INFERENCE_NUM_THREADS=threads)
    loaded = time.perf_counter() - started
    tokenizer = pipe.get_tokenizer()
    prompt = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True)
    inputs = tokenizer.encode(prompt, add_special_tokens=False)
    prompt_tokens = int(inputs.input_ids.shape[1])
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = NEW_TOKENS
    config.min_new_tokens = NEW_TOKENS
    config.apply_chat_template = False  # applied above, as ragline's LocalLLM does
    times: list[float] = []

    def streamer(_: str) -> openvino_genai.StreamingStatus:
        times.append(time.perf_counter())
        return openvino_genai.StreamingStatus.RUNNING

    asked = time.perf_counter()
    pipe.generate(inputs, config, streamer)
    return _figures(loaded, asked, times, prompt_tokens)


def _figures(loaded: float, asked: float, times: list[float], prompt: int) -> dict[str, float]:
    generated = len(times) - 1
    return {
        "load_s": loaded,
        "prompt_tokens": prompt,
        "ttft_s": times[0] - asked,
        "tokens_per_s": generated / (times[-1] - times[0]) if generated > 0 else 0.0,
    }


RUNTIMES = {"xllamacpp": run_xllamacpp, "openvino-genai": run_openvino_genai}


def child(name: str, threads: int) -> None:
    from ragline.rag.llm.local import shipped_gguf

    sys.stdout.write(json.dumps(RUNTIMES[name](str(shipped_gguf()), threads)) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=list(RUNTIMES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads)
        return
    results: dict[str, list[dict[str, float]]] = {name: [] for name in RUNTIMES}
    for _ in range(args.rounds):
        for name in RUNTIMES:
            command = [sys.executable, "-m", "benchmarks.llm_runtimes", "--child", name]
            command += ["--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{name}: skipped ({done.stderr.strip().splitlines()[-1:]})")
                continue
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = results["xllamacpp"]
    if not base:
        print("xllamacpp is not installed: nothing to compare against")
        return
    base_ttft = statistics.median(r["ttft_s"] for r in base)
    rows = [("runtime", "load s", "prompt tokens", "first token s", "tokens/s", "TTFT ratio")]
    for name, runs in results.items():
        if not runs:
            continue
        ttft = statistics.median(r["ttft_s"] for r in runs)
        rows.append(
            (
                name,
                f"{statistics.median(r['load_s'] for r in runs):.2f}",
                f"{int(runs[0]['prompt_tokens'])}",
                f"{ttft:.2f}",
                f"{statistics.median(r['tokens_per_s'] for r in runs):.1f}",
                f"{ttft / base_ttft:.2f}",
            )
        )
    print(table(rows))


if __name__ == "__main__":
    main()
