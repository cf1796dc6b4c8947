"""`ragline eval answers` for several server configurations, one fresh `ragline serve` each
(embedded default, its own data dir), run one after the other on the same split; prints
each configuration's figures side by side, the ratio of its median first-token time to the
first configuration's (the baseline, measured in the same run), and the server's resident
memory after the run and at its peak. `--plot PATH` draws F1 against median first-token
time.

    python -m benchmarks.answers --split dev \\
        --config default \\
        --config three-chunks:RETRIEVAL_TOP_K=3 \\
        --config q8:LLM_LOCAL_MODEL=/path/SmolLM2-135M-Instruct.Q8_0.gguf

A configuration is `NAME[:VAR=VALUE[,VAR=VALUE...]]`, the variables set in the server's
environment. `--repeat N` runs the whole list N times (alternating) and keeps the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import RAGLINE, ragline_process, require, rss_mib, table
from ragline.evaluation.answers.dataset import DEFAULT_DATASET, load_dataset


@dataclass
class Config:
    name: str
    env: dict[str, str]
    runs: list[dict[str, Any]] = field(default_factory=list)


def parse_config(text: str) -> Config:
    name, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return Config(name, env)


def run_once(config: Config, split: str, limit: int | None, work: Path) -> dict[str, Any]:
    data = work / f"{config.name}-{len(config.runs)}"
    data.mkdir(parents=True)
    out = data.parent / f"{data.name}.json"
    with ragline_process(data, **config.env) as (base, process):
        peak = [0.0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak[0] = max(peak[0], rss_mib(process.pid)[0])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        command = [RAGLINE, "eval", "answers", "--split", split, "--url", base, "--json", str(out)]
        subprocess.run(
            [*command, *(["--limit", str(limit)] if limit else [])],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        rss, hwm = rss_mib(process.pid)
    report = json.loads(out.read_text())
    report["rss_after_mib"] = rss
    report["rss_peak_mib"] = max(hwm, peak[0])
    report["wall_s"] = wall
    return report


def figures(report: dict[str, Any]) -> dict[str, float | None]:
    questions = report["questions"]
    supported = report["supported"] or {}
    fresh = report["timing"]["fresh_chat"]
    chains = {c["kind"]: c for c in report["chains"]}
    return {
        "f1": questions["f1"],
        "contains": questions["contains"],
        "right": questions["right"],
        "hit5": questions["hit_at_5"],
        "tokens": questions["answer_tokens"],
        "wrong_flagged": supported.get("wrong_flagged"),
        "right_flagged": supported.get("right_flagged"),
        "ttft": fresh["ttft_median_s"],
        "ttft_p90": fresh["ttft_p90_s"],
        "latency": fresh["latency_median_s"],
        "prompt_tokens": report["prompt_tokens_mean"],
        "rss_after": report["rss_after_mib"],
        "rss_peak": report["rss_peak_mib"],
        "wall": report["wall_s"],
        **{f"{kind}_chain": c["hit_in_chain"] for kind, c in chains.items()},
        **{f"{kind}_alone": c["hit_standalone"] for kind, c in chains.items()},
    }


def medians(config: Config) -> dict[str, float | None]:
    rows = [figures(report) for report in config.runs]
    out: dict[str, float | None] = {}
    for key in rows[0]:
        values = [row[key] for row in rows if row.get(key) is not None]
        out[key] = statistics.median(values) if values else None  # type: ignore[type-var]
    return out


def cell(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    return {"share": f"{100 * value:.1f}%", "s": f"{value:.2f} s", "mib": f"{value:.0f} MiB"}.get(
        kind, f"{value:.3f}" if value < 10 else f"{value:.0f}"
    )


COLUMNS = [
    ("F1", "f1", ""),
    ("contains", "contains", "share"),
    ("right", "right", "share"),
    ("hit@5", "hit5", "share"),
    ("answer tok", "tokens", ""),
    ("wrong flagged", "wrong_flagged", "share"),
    ("right flagged", "right_flagged", "share"),
    ("TTFT med", "ttft", "s"),
    ("TTFT p90", "ttft_p90", "s"),
    ("latency med", "latency", "s"),
    ("prompt tok", "prompt_tokens", ""),
    ("RSS after", "rss_after", "mib"),
    ("RSS peak", "rss_peak", "mib"),
]


def plot(path: Path, configs: list[Config]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for config in configs:
        m = medians(config)
        ax.scatter(m["ttft"], m["f1"])
        ax.annotate(config.name, (m["ttft"] or 0, m["f1"] or 0), fontsize=8)
    ax.axvline(6.0, linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("median time to first token, fresh chat (s)")
    ax.set_ylabel("token F1 (questions)")
    ax.set_title("ragline eval answers: accuracy against first-token time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--config", action="append", default=[], type=parse_config)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write every report here")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    dataset = load_dataset(DEFAULT_DATASET, split=args.split)
    require(dataset.default_docs_root())
    configs: list[Config] = args.config or [Config("default", {})]
    with tempfile.TemporaryDirectory(prefix="ragline-answers-") as tmp:
        for round_ in range(args.repeat):
            for config in configs:
                config.runs.append(run_once(config, args.split, args.limit, Path(tmp)))
                m = figures(config.runs[-1])
                print(
                    f"round {round_ + 1} {config.name}: F1 {cell(m['f1'], '')}, "
                    f"TTFT {cell(m['ttft'], 's')}, RSS {cell(m['rss_after'], 'mib')}",
                    flush=True,
                )
    base = medians(configs[0])["ttft"]
    rows = [("config", *(title for title, _, _ in COLUMNS), "TTFT / baseline")]
    for config in configs:
        m = medians(config)
        ratio = f"{m['ttft'] / base:.2f}" if m["ttft"] and base else "n/a"
        rows.append((config.name, *(cell(m[key], kind) for _, key, kind in COLUMNS), ratio))
    print(table(rows))
    chain_rows = [("config", "kind", "hit@5 in chain", "hit@5 standalone")]
    for config in configs:
        m = medians(config)
        for kind in ("pronoun", "topic-switch"):
            chain_rows.append(
                (
                    config.name,
                    kind,
                    cell(m.get(f"{kind}_chain"), "share"),
                    cell(m.get(f"{kind}_alone"), "share"),
                )
            )
    print(table(chain_rows))
    if args.json:
        args.json.write_text(json.dumps({c.name: c.runs for c in configs}, indent=1))
    if args.plot:
        plot(args.plot, configs)


if __name__ == "__main__":
    main()
