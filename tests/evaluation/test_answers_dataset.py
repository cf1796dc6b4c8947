"""The shipped docs-qa question set: schema, counts, the fixed split, and every gold answer
found in its document's text (when ../shared/data/docs is present); the loader's refusals."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ragline.evaluation.answers.dataset import (
    DEFAULT_DATASET,
    QADataset,
    changed_documents,
    gold_problems,
    load_dataset,
    load_manifest,
)

FORMATS = {"pdf", "docx", "xlsx", "pptx", "html", "csv", "markdown"}


@pytest.fixture(scope="module")
def splits() -> dict[str, QADataset]:
    return {split: load_dataset(DEFAULT_DATASET, split=split) for split in ("dev", "test")}


def test_counts_cover_every_format_and_both_chain_kinds(splits: dict[str, QADataset]) -> None:
    questions = [q for d in splits.values() for q in d.questions]
    chains = [c for d in splits.values() for c in d.chains]
    formats = Counter(q.format for q in questions)
    assert len(questions) >= 80
    assert set(formats) == FORMATS and min(formats.values()) >= 8, formats
    kinds = Counter(c.kind for c in chains)
    assert kinds["topic-switch"] >= 15 and kinds["pronoun"] >= 15, kinds
    ids = [q.id for q in questions] + [c.id for c in chains]
    assert len(ids) == len(set(ids))
    documents = {d.path for d in splits["test"].manifest.documents}
    used = {p for q in questions for p in q.documents}
    used |= {p for c in chains for t in c.turns for p in t.documents}
    assert used == documents  # every document is asked about


def test_split_is_forty_sixty_as_the_manifest_states(splits: dict[str, QADataset]) -> None:
    manifest = json.loads((DEFAULT_DATASET / "manifest.json").read_text())
    for split, dataset in splits.items():
        counts = manifest["counts"][split]
        assert Counter(q.format for q in dataset.questions) == Counter(counts["questions"])
        assert Counter(c.kind for c in dataset.chains) == Counter(counts["chains"])
    dev, test = splits["dev"], splits["test"]
    assert len(dev.questions) / (len(dev.questions) + len(test.questions)) == pytest.approx(
        0.4, abs=0.03
    )
    assert len(dev.chains) / (len(dev.chains) + len(test.chains)) == pytest.approx(0.4, abs=0.03)


def test_chains_are_follow_ups_with_their_standalone_form(splits: dict[str, QADataset]) -> None:
    for dataset in splits.values():
        for chain in dataset.chains:
            first, *rest = chain.turns
            assert first.standalone == first.question
            for turn in rest:
                if chain.kind == "topic-switch":  # a question of its own, about another file
                    assert turn.standalone == turn.question
                    assert not set(turn.documents) & set(first.documents), chain.id
                else:  # refers back: the standalone form names what "it" is
                    assert turn.standalone != turn.question, chain.id


def test_a_prefix_covers_every_format_and_kind(splits: dict[str, QADataset]) -> None:
    limited = splits["test"].limited(7)
    assert {q.format for q in limited.questions} == FORMATS
    assert {c.kind for c in limited.chains[:2]} == {"topic-switch", "pronoun"}
    assert splits["test"].limited(None) is splits["test"]


def test_gold_answers_are_in_their_documents(splits: dict[str, QADataset]) -> None:
    root = splits["test"].default_docs_root()
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    assert changed_documents(splits["test"].manifest, root) == []
    for dataset in splits.values():
        assert gold_problems(dataset, root) == []


def _write(folder: Path, rows: list[dict[str, object]]) -> Path:
    folder.mkdir()
    manifest = {
        "name": "tiny",
        "docs_root": "docs",
        "documents": [{"path": "a.md", "format": "markdown"}],
        "splits": {"test": "test.jsonl"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


GOOD: dict[str, object] = {
    "id": "q",
    "format": "markdown",
    "question": "Q?",
    "answers": ["x"],
    "documents": ["a.md"],
}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({**GOOD, "documents": ["b.md"]}, "documents not in the manifest: ['b.md']"),
        ({**GOOD, "answers": ["..."]}, "empty once normalised"),
        ({**GOOD, "answers": []}, "answers"),
        ({**GOOD, "format": "odt"}, "format"),
        ({**GOOD, "extra": 1}, "extra"),
        ({"id": "c", "kind": "pronoun", "turns": []}, "turns"),
        ({"id": "c", "kind": "sideways", "turns": []}, "kind"),
    ],
)
def test_the_loader_names_the_line_and_the_problem(
    tmp_path: Path, row: dict[str, object], problem: str
) -> None:
    folder = _write(tmp_path / "set", [GOOD | {"id": "ok"}, row])
    with pytest.raises(ValueError, match=r"test\.jsonl:2:") as caught:
        load_dataset(folder, split="test")
    assert problem in str(caught.value)


def test_the_loader_refuses_repeated_ids_and_unknown_splits(tmp_path: Path) -> None:
    folder = _write(tmp_path / "set", [GOOD, GOOD])
    with pytest.raises(ValueError, match="ids repeat"):
        load_dataset(folder, split="test")
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_dataset(folder, split="dev")
    assert load_manifest(folder).documents[0].path == "a.md"
