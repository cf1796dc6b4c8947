"""`ragline eval answers` end to end: a real `ragline serve` (embedded stores, the local
embedder) whose chat model is a loopback OpenAI-compatible fake that answers from a table:
right for some questions, wrong (with an invented figure) for one, and a perfect rewriter
of follow-ups. Runs `--limit 3` of a small question set and checks the JSON report."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.fake_providers import CHAT_MODEL, fake_reply, openai_chat_server
from tests.services import RAGLINE, embedded_env, free_port, ragline_server

DOCUMENTS = {
    "notes/etna.md": "# Mount Etna\n\nMount Etna is an active volcano on the island of Sicily. "
    "Its most recent major eruption began in 2021.\n",
    "notes/bakery.txt": "The Rosehip Bakery opened in 1998 in the town of Ashford. Its founder "
    "is Clara Penhale, and its best seller is the walnut loaf.\n",
    "data/planets.csv": "planet,moons,day length\nMars,2,24.6 hours\nJupiter,95,9.9 hours\n",
    # Distractors: the gold document must rank among five of nine files' chunks.
    **{
        f"other/topic{n}.txt": f"Topic {n}: the {word} is a subject of its own, unrelated to "
        "volcanoes, bakeries or planets.\n"
        for n, word in enumerate(("harpsichord", "glacier", "railway", "orchid", "sonnet", "kiln"))
    },
}
FORMATS = {".md": "markdown", ".txt": "text", ".csv": "csv"}


def _question(qid: str, question: str, answers: list[str], document: str) -> dict[str, Any]:
    fmt = FORMATS[Path(document).suffix]
    return {
        "id": qid,
        "format": fmt,
        "question": question,
        "answers": answers,
        "documents": [document],
    }


def _turn(
    question: str, answers: list[str], document: str, standalone: str | None = None
) -> dict[str, Any]:
    return {
        "question": question,
        "standalone": standalone or question,
        "answers": answers,
        "documents": [document],
    }


ROWS = [
    _question("etna-island", "On which island is Mount Etna?", ["Sicily"], "notes/etna.md"),
    _question(
        "bakery-founder", "Who founded the Rosehip Bakery?", ["Clara Penhale"], "notes/bakery.txt"
    ),
    _question("jupiter-moons", "How many moons does Jupiter have?", ["95"], "data/planets.csv"),
    _question(
        "mars-day", "How long is a day on Mars?", ["24.6 hours"], "data/planets.csv"
    ),  # beyond --limit 3
    {
        "id": "switch",
        "kind": "topic-switch",
        "turns": [
            _turn("How many moons does Mars have?", ["2"], "data/planets.csv"),
            _turn("And when did the Rosehip Bakery open?", ["1998"], "notes/bakery.txt"),
        ],
    },
    {
        "id": "it",
        "kind": "pronoun",
        "turns": [
            _turn("Which volcano is on Sicily?", ["Mount Etna"], "notes/etna.md"),
            _turn(
                "When did its most recent major eruption begin?",
                ["2021"],
                "notes/etna.md",
                "When did Mount Etna's most recent major eruption begin?",
            ),
        ],
    },
]
REPLIES = {
    "On which island is Mount Etna?": "Sicily.",
    "Who founded the Rosehip Bakery?": "It was founded in 1234 by Ada Lovelace.",  # wrong
    "How many moons does Jupiter have?": "Jupiter has 95 moons.",
    "How many moons does Mars have?": "Mars has 2 moons.",
    "And when did the Rosehip Bakery open?": "It opened in 1998.",
    "Which volcano is on Sicily?": "Mount Etna.",
    "When did its most recent major eruption begin?": "In 2021.",
    "When did Mount Etna's most recent major eruption begin?": "In 2021.",
}
STANDALONE = {turn["question"]: turn["standalone"] for row in ROWS for turn in row.get("turns", [])}


def reply(messages: list[dict[str, Any]]) -> list[str]:
    """The table's answer; a follow-up rewrite request gets the gold standalone form."""
    asked = messages[-1]["content"]
    rewrite = re.search(r"Last question: (.+)$", asked)
    text = STANDALONE[rewrite.group(1)] if rewrite else REPLIES.get(asked)
    if text is None:
        return fake_reply(messages)
    first, *rest = text.split(" ")
    return [first, *(f" {word}" for word in rest)]


def _dataset(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    documents = []
    for path, text in DOCUMENTS.items():
        (docs / path).parent.mkdir(parents=True, exist_ok=True)
        (docs / path).write_text(text)
        sha = hashlib.sha256(text.encode()).hexdigest()
        documents.append({"path": path, "format": FORMATS[Path(path).suffix], "sha256": sha})
    folder = tmp_path / "tiny-qa"
    folder.mkdir()
    manifest = {
        "name": "tiny-qa",
        "docs_root": "unused",
        "documents": documents,
        "splits": {"test": "test.jsonl"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return folder, docs


def test_answers_against_a_running_server(tmp_path: Path) -> None:
    folder, docs = _dataset(tmp_path)
    out = tmp_path / "report.json"
    with openai_chat_server(reply=reply) as model:
        env = embedded_env(
            tmp_path / "data",
            free_port(),
            LOG_LEVEL="WARNING",
            LLM_PROVIDER="openai",
            OPENAI_BASE_URL=f"{model.url}/v1",
            OPENAI_API_KEY="upstream-key",
            OPENAI_MODEL=CHAT_MODEL,
        )
        with ragline_server(tmp_path, env) as (base, _):
            command = [RAGLINE, "eval", "answers", "--dataset", str(folder), "--docs", str(docs)]
            command += ["--url", base, "--limit", "3", "--user", "alice", "--json", str(out)]
            result = subprocess.run(
                command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, result.stderr
            left = httpx.get(f"{base}/chats", headers={"X-Ragline-Dev-User": "alice"}).json()
    assert left["items"] == []  # the assistants made for the run are gone
    for title in ("Single questions", "Follow-up turns", "Latency at the client"):
        assert title in result.stdout
    report = json.loads(out.read_text())
    assert (report["dataset"], report["split"], report["url"]) == ("tiny-qa", "test", base)
    # 3 single questions, 2 chains, and a fresh chat for each chain's follow-up.
    assert report["assistants"] == 7 and len(report["rows"]) == 9
    rows = {(r["id"], r["mode"], r["turn"]): r for r in report["rows"]}
    assert ("mars-day", "single", None) not in rows

    right, wrong = rows["etna-island", "single", None], rows["bakery-founder", "single", None]
    assert (right["f1"], right["contains"], right["right"]) == (1.0, True, True)
    assert (wrong["f1"], wrong["contains"], wrong["right"]) == (0.0, False, False)
    assert rows["jupiter-moons", "single", None]["contains"] is True
    questions = report["questions"]
    assert questions["count"] == 3 and questions["errors"] == 0
    assert questions["right"] == questions["contains"] == 2 / 3
    assert questions["hit_at_5"] == 1.0
    assert questions["f1"] == (1.0 + 0.0 + rows["jupiter-moons", "single", None]["f1"]) / 3
    assert set(report["by_format"]) == {"markdown", "text", "csv"}

    for row in report["rows"]:
        assert row["error"] is None and row["message_id"]
        assert 0 < row["ttft_s"] <= row["latency_s"]
        assert row["prompt_tokens"] and row["prompt_tokens"] > 0
        assert row["hit_sources"] is True and row["hit_search"] in (True, False)
    # The fake rewrites the follow-up into its standalone form: the chat then finds what a
    # fresh chat asking the standalone question finds.
    chains = {c["kind"]: c for c in report["chains"]}
    assert set(chains) == {"topic-switch", "pronoun"}
    for figures in chains.values():
        assert figures["follow_ups"] == 1
        assert figures["hit_in_chain"] == figures["hit_standalone"] == 1.0
        assert figures["f1_in_chain"] == figures["f1_standalone"] > 0
        assert figures["right_in_chain"] == figures["right_standalone"] == 1.0
    alone = rows["it", "standalone", 2]
    assert alone["question"] == "When did Mount Etna's most recent major eruption begin?"
    timing = report["timing"]
    assert timing["fresh_chat"]["count"] == 7 and timing["follow_up"]["count"] == 2
    assert timing["fresh_chat"]["ttft_median_s"] <= timing["fresh_chat"]["ttft_p90_s"]
    supported = report["supported"]
    if supported is not None:  # the invented year and name are flagged, the right answers not
        assert wrong["flagged"] is True and right["flagged"] is False
        assert supported["wrong_flagged"] == 1.0 and supported["right_flagged"] == 0.0


def test_absent_documents_skip_with_one_line(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data", free_port())
    result = subprocess.run(
        [RAGLINE, "eval", "answers", "--docs", str(tmp_path / "nowhere")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"ragline eval answers: no documents at {tmp_path / 'nowhere'} (--docs); skipped"
    )
