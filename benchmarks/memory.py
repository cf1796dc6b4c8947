"""Where `ragline serve`'s resident memory goes, stage by stage, on the embedded default:
a fresh server (chat model not loaded: LLM_WARM_UP=false), then the shipped question set's
documents ingested into one assistant (`--assistants N`: into N, as the eval loads them),
one question (the chat model loads), all the set's questions (dev and test), a SciFact
ingest (5,183 abstracts) into another assistant and 100 SciFact questions. After each
stage: RSS and the process's mappings grouped (anonymous memory, i.e. heaps and arenas;
each shared library; other files); last, once the chat model's keep-alive (here 20 s)
has unloaded it. Each `--config NAME[:VAR=VALUE,...]` runs the whole sequence on a fresh
server with those variables set; the first is the baseline.

    python -m benchmarks.memory [--config default] [--config k5:RETRIEVAL_TOP_K=5]
        [--assistants N] [--scifact N] [--questions N] [--no-scifact]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from benchmarks.answers import Config, parse_config
from benchmarks.common import SHARED_DATA, ragline_process, require, rss_mib, scifact_corpus, table
from benchmarks.common import scifact_queries as load_scifact_queries
from benchmarks.ingest import DEV, encode_uploads, upload_all, wait_indexed, write_corpus
from ragline.evaluation.answers.dataset import DEFAULT_DATASET, load_dataset

KEEP_ALIVE_S = 20
"""LLM_KEEP_ALIVE_SECONDS for the run (300 by default): the last stage waits it out."""
_LIB = re.compile(r"lib([A-Za-z_+]+?)(?:[-.]\d|\.so|-[0-9a-f]{8})")


def mappings(pid: int) -> dict[str, float]:
    """Resident MiB by mapping group, from /proc/PID/smaps."""
    groups: dict[str, float] = defaultdict(float)
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            path = head[5] if len(head) > 5 else ""
            if not path or path.startswith("["):
                name = "anonymous (heaps, arenas, stacks)"
            elif ".so" in path:
                match = _LIB.search(Path(path).name)
                name = f"lib {match.group(1) if match else Path(path).name}"
            else:
                name = f"file {Path(path).suffix or Path(path).name}"
        elif head and head[0] == "Rss:":
            groups[name] += int(head[1]) / 1024
    return dict(groups)


def ask(client: httpx.Client, chat_id: str, question: str) -> None:
    response = client.post(f"/chats/{chat_id}/chat", json={"text": question})
    response.raise_for_status()


def run(
    config: Config,
    work: Path,
    *,
    assistants: int,
    qa_questions: int | None,
    scifact: int,
    questions: int,
) -> list[tuple[str, float, dict]]:
    data = work / config.name / "data"
    data.mkdir(parents=True)
    qa = [load_dataset(DEFAULT_DATASET, split=s) for s in ("dev", "test")]
    docs_root = qa[0].default_docs_root()
    paths = [docs_root / d.path for d in qa[0].manifest.documents]
    asked = [q.question for d in qa for q in d.questions][:qa_questions]
    stages: list[tuple[str, float, dict]] = []
    env = {"LLM_WARM_UP": "false", "LLM_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE_S)} | config.env
    with ragline_process(data, **env) as (base, process):
        client = httpx.Client(base_url=base, headers=DEV, timeout=600)

        def stage(name: str) -> None:
            time.sleep(2)  # background work settles
            stages.append((name, rss_mib(process.pid)[0], mappings(process.pid)))
            print(f"{config.name}: {name}: {stages[-1][1]:.0f} MiB", flush=True)

        stage("started")
        chats = []
        for _ in range(assistants):  # as the eval does: one assistant per conversation
            chats.append(client.post("/chats", json={"title": "docs-qa"}).json()["id"])
            upload_all(encode_uploads(base, chats[-1], paths))
            wait_indexed(base, chats[-1], len(paths))
        stage(f"docs-qa ingested ({len(paths)} files x {assistants})")
        ask(client, chats[0], asked[0])
        stage("1 question")
        for i, question in enumerate(asked[1:], 1):
            ask(client, chats[i % len(chats)], question)
        stage(f"{len(asked)} questions")
        if scifact:
            corpus = write_corpus(scifact_corpus(scifact), work / config.name / "scifact")
            other = client.post("/chats", json={"title": "scifact"}).json()["id"]
            upload_all(encode_uploads(base, other, corpus))
            wait_indexed(base, other, len(corpus))
            stage(f"SciFact ingested ({len(corpus)} abstracts)")
            for question in load_scifact_queries(questions):
                ask(client, other, question)
            stage(f"{questions} SciFact questions")
        time.sleep(float(env["LLM_KEEP_ALIVE_SECONDS"]) + 3)
        stage("idle: chat model unloaded")
        stages.append(("peak (VmHWM)", rss_mib(process.pid)[1], {}))
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", default=[], type=parse_config)
    parser.add_argument("--scifact", type=int, default=None, help="abstracts (default: all)")
    parser.add_argument("--questions", type=int, default=100, help="SciFact questions")
    parser.add_argument("--no-scifact", action="store_true")
    parser.add_argument("--qa-questions", type=int, default=None, help="of docs-qa's (all)")
    parser.add_argument(
        "--assistants", type=int, default=1, help="docs-qa copies (the eval: one per question)"
    )
    args = parser.parse_args()
    require(SHARED_DATA / "docs")
    configs: list[Config] = args.config or [Config("default", {})]
    results = {}
    with tempfile.TemporaryDirectory(prefix="ragline-memory-") as tmp:
        for config in configs:
            scifact = 0 if args.no_scifact else (args.scifact or 10**9)
            results[config.name] = run(
                config,
                Path(tmp),
                assistants=args.assistants,
                qa_questions=args.qa_questions,
                scifact=scifact,
                questions=args.questions,
            )
    names = [name for name, _, _ in results[configs[0].name]]
    rows = [
        ("stage", *(f"{c.name} MiB" for c in configs), *(f"{c.name}/base" for c in configs[1:]))
    ]
    for i, name in enumerate(names):
        values = [results[c.name][i][1] for c in configs]
        ratios = [f"{v / values[0]:.2f}" for v in values[1:]]
        rows.append((name, *(f"{v:.0f}" for v in values), *ratios))
    print(table(rows))
    for config in configs:
        stages = [s for s in results[config.name] if s[2]]
        groups = sorted(stages[-1][2], key=lambda g: -stages[-1][2][g])[:12]
        rows = [("mapping", *(name for name, _, _ in stages))]
        for group in groups:
            rows.append((group, *(f"{s[2].get(group, 0):.0f}" for s in stages)))
        print(f"\n{config.name}: resident MiB by mapping, after each stage")
        print(table(rows))


if __name__ == "__main__":
    main()
