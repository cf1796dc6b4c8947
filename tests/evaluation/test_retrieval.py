"""`ragline eval retrieval`: BEIR loading, the metrics against hand-computed values, the
command end to end on a tiny BEIR folder, and a ~200-document slice of SciFact when
../shared/data/beir-scifact is present (the full corpus is too slow for the tests)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from ragline.config import Settings
from ragline.evaluation.retrieval import (
    BeirDataset,
    evaluate_retrieval,
    load_beir,
    ndcg_at,
    rank_documents,
    recall_at,
)
from ragline.rag.query.retrieve import Mode, RetrievedChunk
from tests.services import RAGLINE, embedded_env, free_port

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "data" / "beir-scifact"

CORPUS = {
    "photo": (
        "Photosynthesis",
        "Green plants use sunlight, water and carbon dioxide to make "
        "sugar and oxygen in their chloroplasts.",
    ),
    "volcano": (
        "Volcanic eruptions",
        "Magma rises through the crust and erupts as lava, ash and volcanic gases.",
    ),
    "jazz": (
        "Jazz",
        "Jazz grew from blues and ragtime in New Orleans, with improvisation and swing rhythms.",
    ),
    "chess": (
        "Chess openings",
        "The Sicilian Defence answers the king's pawn opening with the c-pawn.",
    ),
    "tides": (
        "Ocean tides",
        "The gravity of the Moon pulls on the oceans and raises a high tide twice a day.",
    ),
    "bread": (
        "Baking bread",
        "Yeast ferments the sugars in the dough and releases carbon "
        "dioxide, which makes the bread rise.",
    ),
    # Several chunks: the document must still be ranked once.
    "coffee": (
        "",
        " ".join(
            f"Coffee fact {n}: roasting beans at {180 + n} degrees changes their aroma, "
            "acidity and bitterness in ways that tasters describe with care."
            for n in range(40)
        ),
    ),
}
QUERIES = {
    "q1": "How do plants make sugar from sunlight?",
    "q2": "What makes bread dough rise?",
    "q3": "Why does the ocean have a high tide?",
    "q4": "Where did jazz music begin?",  # judged in the train split only
    "q5": "Which chess opening starts with the c-pawn?",  # not judged at all
}
TEST_QRELS = [("q1", "photo", 2), ("q1", "bread", 0), ("q2", "bread", 1), ("q3", "tides", 1)]


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as stream:
        for doc_id, (title, text) in CORPUS.items():
            stream.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as stream:
        for query_id, text in QUERIES.items():
            stream.write(json.dumps({"_id": query_id, "text": text, "metadata": {}}) + "\n")
    for split, rows in (("test", TEST_QRELS), ("train", [("q4", "jazz", 1)])):
        lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{g}" for q, d, g in rows)]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_load_beir_keeps_the_split_and_judged_queries(tmp_path: Path) -> None:
    dataset = load_beir(write_beir(tmp_path / "tiny"))
    assert set(dataset.corpus) == set(CORPUS)
    assert dataset.corpus["photo"].content.startswith("Photosynthesis\n\nGreen plants")
    assert dataset.corpus["coffee"].content.startswith("Coffee fact 0:")
    assert set(dataset.queries) == {"q1", "q2", "q3"}
    assert dataset.qrels["q1"] == {"photo": 2, "bread": 0}
    assert set(load_beir(tmp_path / "tiny", split="train").queries) == {"q4"}


def test_ndcg_uses_graded_linear_gains_and_every_judged_document() -> None:
    judged = {"a": 2, "b": 1, "c": 0, "d": 1}
    # Gains 0, 1, 2 at ranks 1-3; the ideal is 2, 1, 1.
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(["x", "b", "a", "c"], judged, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(["x", "b", "a", "c"], judged, 10) == pytest.approx(0.5209, abs=1e-4)
    assert ndcg_at(["a", "b", "d"], judged, 10) == pytest.approx(1.0)
    # A relevant document below the cut-off does not count; the ideal is cut too.
    assert ndcg_at(["x", "a"], judged, 1) == 0.0
    assert ndcg_at(["b", "a"], judged, 1) == pytest.approx(0.5)
    assert ndcg_at(["a"], {"c": 0}, 10) == 0.0


def test_recall_counts_documents_judged_relevant() -> None:
    judged = {"a": 2, "b": 1, "c": 0}
    assert recall_at(["c", "b", "x"], judged, 100) == pytest.approx(0.5)
    assert recall_at(["c", "b", "a"], judged, 2) == pytest.approx(0.5)
    assert recall_at(["b", "a"], judged, 100) == 1.0


def _chunk(chunk_id: str, file_id: str) -> RetrievedChunk:
    return RetrievedChunk(
        id=chunk_id,
        text="",
        score=0.0,
        dense_score=None,
        keyword_score=None,
        file_id=file_id,
        file_name="",
        page=None,
        section=None,
        start_char=None,
        end_char=None,
    )


def test_a_document_ranks_where_its_best_chunk_ranks() -> None:
    chunks = [_chunk("1", "fa"), _chunk("2", "fb"), _chunk("3", "fa"), _chunk("4", "fq")]
    files = {"fa": "A", "fb": "B", "fq": "q7"}
    assert rank_documents(chunks, files, exclude="q1") == ["A", "B", "q7"]
    # As BEIR does by default, the query's own id never counts as a retrieved document.
    assert rank_documents(chunks, files, exclude="q7") == ["A", "B"]


def test_command_prints_the_three_modes(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "tiny")
    env = embedded_env(tmp_path / "data", free_port(), LOG_LEVEL="WARNING")
    result = subprocess.run(
        [RAGLINE, "eval", "retrieval", "--dataset", str(folder)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{len(CORPUS)} documents -> ")
    assert lines[0].endswith("; 3 queries")
    assert lines[1].split() == ["mode", "nDCG@10", "recall@100", "ms/query"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[2:]}
    # Every query's relevant document is the best match in each mode.
    assert rows == {mode: ["1.0000", "1.0000"] for mode in ("dense", "keyword", "hybrid")}
    assert not (tmp_path / "data").exists()  # the eval's stores live in a temporary dir


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"{SCIFACT} is absent")
def test_scifact_slice() -> None:
    full = load_beir(SCIFACT)
    query_ids = sorted(full.queries, key=int)[:30]
    relevant = {doc_id for q in query_ids for doc_id in full.qrels[q]}
    doc_ids = (
        sorted(relevant) + [d for d in full.corpus if d not in relevant][: 200 - len(relevant)]
    )
    dataset = BeirDataset(
        corpus={d: full.corpus[d] for d in doc_ids},
        queries={q: full.queries[q] for q in query_ids},
        qrels={q: full.qrels[q] for q in query_ids},
    )
    report = evaluate_retrieval(dataset, settings=Settings(_env_file=None))  # type: ignore[call-arg]
    assert report.documents == 200 and report.queries == 30 and report.chunks >= 200
    results = {result.mode: result for result in report.results}
    assert list(results) == [Mode.DENSE, Mode.KEYWORD, Mode.HYBRID]
    for result in results.values():
        assert 0.7 <= result.ndcg <= 1.0 and 0.9 <= result.recall <= 1.0
    hybrid = results[Mode.HYBRID].ndcg
    assert hybrid >= min(results[Mode.DENSE].ndcg, results[Mode.KEYWORD].ndcg)
