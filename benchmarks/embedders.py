"""Embedders on BEIR SciFact: speed (interleaved, one process) and retrieval quality.

    python benchmarks/embedders.py [--limit N] [--plot out.png] [--only NAME ...]

Candidates: sentence-transformers fp32 (the baseline, when torch and sentence-transformers
are installed; else our OpenVINO fp32 graph is the baseline), OpenVINO fp32 and bf16 of the
same graph, and the shipped ``local`` embedder (OpenVINO int8) with a few stream and batch
settings. The corpus is cut into rounds and every candidate embeds each round in turn, so
load from other processes hits all of them alike: compare the ratios.

Reports abstracts/s, tokens/s (model tokens, [CLS]/[SEP] included, at most 256 per
abstract), the ratio to the baseline, dense nDCG@10 on the test split, and the mean cosine
of each abstract's vector to the baseline's. ``--limit N`` keeps the abstracts judged
relevant to a test query plus the first N others.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import openvino as ov  # type: ignore[import-untyped]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragline.rag.embeddings.graph import build_minilm_graph
from ragline.rag.embeddings.local import LocalEmbedder, load_tokenizer
from ragline.rag.embeddings.prepare import (
    default_cache_dir,
    prepare_local_model,
    shipped_model_dir,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "beir-scifact"
ROUNDS = 6
Vectors = npt.NDArray[np.float32]
Encode = Callable[[Sequence[str]], Vectors]


def load_scifact(limit: int | None) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    qrels: dict[str, set[str]] = {}
    for line in (DATA / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(query_id, set()).add(doc_id)
    relevant = set().union(*qrels.values())
    corpus: dict[str, str] = {}
    for line in (DATA / "corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        if limit is None or doc["_id"] in relevant or len(corpus) < limit + len(relevant):
            corpus[doc["_id"]] = f"{doc['title']} {doc['text']}".strip()
    queries = {}
    for line in (DATA / "queries.jsonl").read_text().splitlines():
        query = json.loads(line)
        if query["_id"] in qrels:
            queries[query["_id"]] = query["text"]
    return corpus, queries, qrels


def ndcg_at_10(
    doc_ids: list[str],
    docs: Vectors,
    query_ids: list[str],
    queries: Vectors,
    qrels: dict[str, set[str]],
) -> float:
    scores = queries @ docs.T
    total = 0.0
    for row, query_id in enumerate(query_ids):
        top = np.argsort(-scores[row])[:10]
        relevant = qrels[query_id]
        dcg = sum(1 / math.log2(rank + 2) for rank, i in enumerate(top) if doc_ids[i] in relevant)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(relevant), 10)))
        total += dcg / ideal
    return total / len(query_ids)


def ov_candidate(artefact: Path, **options: object) -> Encode:
    embedder = LocalEmbedder(artefact, **options)  # type: ignore[arg-type]
    return lambda texts: np.asarray(embedder.embed(texts), dtype=np.float32)


def fp32_artefact(int8_artefact: Path, out: Path) -> Path:
    """The same graph unquantised, in the artefact layout, for the fp32 and bf16 runs."""
    ov.save_model(build_minilm_graph(shipped_model_dir()), out / "model.xml", False)
    for name in ("tokenizer.json", "manifest.json"):
        (out / name).write_bytes((int8_artefact / name).read_bytes())
    return out


def sentence_transformers_candidate() -> Encode | None:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(shipped_model_dir()), device="cpu")
    model.max_seq_length = 256
    return lambda texts: model.encode(
        list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True
    )


def candidates(int8: Path, scratch: Path, only: list[str] | None) -> dict[str, Encode]:
    fp32 = fp32_artefact(int8, scratch)
    f32, bf16 = {"INFERENCE_PRECISION_HINT": "f32"}, {"INFERENCE_PRECISION_HINT": "bf16"}
    makers: dict[str, Callable[[], Encode | None]] = {
        "st-fp32": sentence_transformers_candidate,
        "ov-fp32": lambda: ov_candidate(fp32, compile_options=f32),
        "ov-bf16": lambda: ov_candidate(fp32, compile_options=bf16),
        "int8-1s-b16": lambda: ov_candidate(int8, streams=1),
        "int8-2s-b8": lambda: ov_candidate(int8, batch_size=8),
        "int8-2s-b16 (local)": lambda: ov_candidate(int8),
        "int8-2s-b32": lambda: ov_candidate(int8, batch_size=32),
    }
    built: dict[str, Encode] = {}
    for name, make in makers.items():
        if only and not any(word in name for word in only):
            continue
        encode = make()
        if encode is None:
            print(f"{name}: skipped (torch + sentence-transformers not installed)")
            continue
        built[name] = encode
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="non-relevant abstracts to keep")
    parser.add_argument("--plot", type=Path, help="write a PNG bar chart here")
    parser.add_argument("--only", nargs="*", help="candidates whose name contains a word")
    args = parser.parse_args()
    if not (DATA / "corpus.jsonl").is_file():
        print(f"SciFact not found at {DATA.resolve()}: skipping the embedder benchmark")
        return

    corpus, queries, qrels = load_scifact(args.limit)
    doc_ids, texts = list(corpus), list(corpus.values())
    tokenizer = load_tokenizer(shipped_model_dir() / "tokenizer.json", truncate=True)
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    print(f"{len(texts)} abstracts, {tokens} tokens (<=256 each), {len(queries)} test queries")

    artefact = prepare_local_model(default_cache_dir())
    with tempfile.TemporaryDirectory() as scratch:
        runs = candidates(artefact, Path(scratch), args.only)
        results = run_interleaved(runs, texts, [queries[q] for q in queries])
    report(results, doc_ids, list(queries), qrels, len(texts), tokens, args.plot)


def run_interleaved(
    runs: dict[str, Encode], texts: list[str], queries: list[str]
) -> dict[str, tuple[float, Vectors, Vectors]]:
    for encode in runs.values():
        encode(texts[:64])  # warm-up: compile, allocate
    seconds = dict.fromkeys(runs, 0.0)
    parts: dict[str, list[Vectors]] = {name: [] for name in runs}
    size = math.ceil(len(texts) / ROUNDS)
    for start in range(0, len(texts), size):
        for name, encode in runs.items():
            began = time.perf_counter()
            parts[name].append(encode(texts[start : start + size]))
            seconds[name] += time.perf_counter() - began
        print(f"  round {start // size + 1}/{ROUNDS} done", flush=True)
    return {
        name: (seconds[name], np.concatenate(parts[name]), encode(queries))
        for name, encode in runs.items()
    }


def report(
    results: dict[str, tuple[float, Vectors, Vectors]],
    doc_ids: list[str],
    query_ids: list[str],
    qrels: dict[str, set[str]],
    count: int,
    tokens: int,
    plot: Path | None,
) -> None:
    base_name = next(iter(results))
    base_seconds, base_docs, _ = results[base_name]
    print(f"\nbaseline: {base_name}")
    print(
        f"{'candidate':<22}{'abstracts/s':>12}{'tokens/s':>10}{'ratio':>7}"
        f"{'nDCG@10':>9}{'cos mean':>10}{'cos min':>9}"
    )
    rows = []
    for name, (seconds, docs, queries) in results.items():
        cosine = np.sum(docs * base_docs, axis=1)
        ndcg = ndcg_at_10(doc_ids, docs, query_ids, queries, qrels)
        rows.append((name, tokens / seconds, ndcg))
        print(
            f"{name:<22}{count / seconds:>12.1f}{tokens / seconds:>10.0f}"
            f"{base_seconds / seconds:>7.2f}{ndcg:>9.4f}{cosine.mean():>10.4f}"
            f"{cosine.min():>9.4f}"
        )
    if plot is not None:
        write_plot(rows, plot)


def write_plot(rows: list[tuple[str, float, float]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    figure, axis = plt.subplots(figsize=(9, 4))
    bars = axis.barh([r[0] for r in rows], [r[1] for r in rows], color="tab:blue")
    for bar, (_, _, ndcg) in zip(bars, rows, strict=True):
        axis.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2, f" nDCG {ndcg:.3f}", va="center"
        )
    axis.axvline(18_000, color="tab:red", linestyle="--", label="target 18k tokens/s")
    axis.set_xlabel("embedded tokens/s (SciFact abstracts, 2 cores)")
    axis.set_xlim(0, max(r[1] for r in rows) * 1.25)
    axis.invert_yaxis()
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
