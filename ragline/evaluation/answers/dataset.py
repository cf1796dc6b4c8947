"""A question set: a folder with ``manifest.json`` and one JSONL file per split.

The manifest names the documents by their path under a *docs root* (``docs_root``, relative
to the repository; ``--docs`` overrides it), with their format and SHA-256, and the split
files. A split file holds single questions and follow-up chains, one JSON object a line::

    {"id", "format", "question", "answers": [...], "documents": ["dir/file.pdf"]}
    {"id", "kind": "topic-switch" | "pronoun",
     "turns": [{"question", "standalone", "answers", "documents"}, ...]}

Any of ``answers`` is right and any of ``documents`` is the gold document. A chain's turns
are asked in order in one chat; ``standalone`` is what a follow-up means on its own (the
question itself for a topic switch, the referent named for a pronoun).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ragline.evaluation.answers.metrics import normalise

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
DEFAULT_DATASET = DATASETS / "docs-qa"
REPOSITORY = Path(__file__).resolve().parents[3]

Format = Literal["pdf", "docx", "xlsx", "pptx", "html", "csv", "markdown", "text"]
ChainKind = Literal["topic-switch", "pronoun"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _answers(values: list[str]) -> list[str]:
    """Each gold answer must keep a token once normalised, or F1 could never reach it."""
    for value in values:
        if not normalise(value):
            raise ValueError(f"the answer {value!r} is empty once normalised")
    return values


class _Gold(BaseModel):
    """What is right: any of ``answers``; where it is: any of ``documents``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answers: list[str] = Field(min_length=1)
    documents: list[str] = Field(min_length=1)

    _check_answers = field_validator("answers")(_answers)


class Turn(_Gold):
    question: Text
    standalone: Text


class Question(_Gold):
    id: Text
    format: Format
    question: Text


class Chain(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Text
    kind: ChainKind
    turns: list[Turn] = Field(min_length=2)


class Document(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Text
    format: Format
    sha256: str | None = None


class Manifest(BaseModel):
    """Fields beyond these (description, counts, split rule) are for readers."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Text
    docs_root: Text
    documents: list[Document] = Field(min_length=1)
    splits: dict[str, str]


@dataclass(frozen=True, slots=True)
class QADataset:
    folder: Path
    manifest: Manifest
    split: str
    questions: tuple[Question, ...]
    chains: tuple[Chain, ...]

    def limited(self, limit: int | None) -> QADataset:
        """The first ``limit`` questions and the first ``limit`` chains (files list them
        round-robin over formats and kinds, so a prefix covers each)."""
        if limit is None:
            return self
        return replace(self, questions=self.questions[:limit], chains=self.chains[:limit])

    def default_docs_root(self) -> Path:
        return (REPOSITORY / self.manifest.docs_root).resolve()


def load_manifest(folder: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((folder / "manifest.json").read_bytes())
    except ValidationError as exc:
        raise ValueError(f"{folder / 'manifest.json'}: {exc}") from exc


def load_dataset(folder: Path, *, split: str) -> QADataset:
    manifest = load_manifest(folder)
    if split not in manifest.splits:
        raise ValueError(f"{folder.name} has no split {split!r} (it has {sorted(manifest.splits)})")
    path = folder / manifest.splits[split]
    known = {document.path for document in manifest.documents}
    questions: list[Question] = []
    chains: list[Chain] = []
    for number, row in _rows(path):
        try:
            item: Question | Chain = (
                Chain.model_validate(row) if "turns" in row else Question.model_validate(row)
            )
        except ValidationError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
        unknown = sorted(set(_documents(item)) - known)
        if unknown:
            raise ValueError(f"{path}:{number}: documents not in the manifest: {unknown}")
        if isinstance(item, Chain):
            chains.append(item)
        else:
            questions.append(item)
    ids = [q.id for q in questions] + [c.id for c in chains]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: ids repeat")
    return QADataset(folder, manifest, split, tuple(questions), tuple(chains))


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{number}: not a JSON object")
                yield number, row


def _documents(item: Question | Chain) -> Iterator[str]:
    if isinstance(item, Question):
        yield from item.documents
    else:
        for turn in item.turns:
            yield from turn.documents


# --- the documents ------------------------------------------------------------------------
def changed_documents(manifest: Manifest, root: Path) -> list[str]:
    """Documents missing under ``root`` or whose bytes differ from the manifest's SHA-256."""
    changed = []
    for document in manifest.documents:
        path = root / document.path
        if not path.is_file():
            changed.append(f"{document.path} (missing)")
        elif document.sha256 and hashlib.sha256(path.read_bytes()).hexdigest() != document.sha256:
            changed.append(f"{document.path} (changed)")
    return changed


@functools.lru_cache(maxsize=64)
def document_text(path: Path) -> str:
    """The text ragline's own parsers get from ``path``, whitespace collapsed."""
    from ragline.rag.ingest.guards import DEFAULT_LIMITS
    from ragline.rag.ingest.parse import parse
    from ragline.rag.ingest.sniff import detect_type

    documents = parse(path, detect_type(path, path.name), limits=DEFAULT_LIMITS)
    return " ".join(" ".join(document.text for document in documents).split())


def gold_problems(dataset: QADataset, root: Path) -> list[str]:
    """Gold answers that do not occur literally (case and all; whitespace collapsed) in the
    parsed text of any of their documents, and gold documents that hold none of them."""
    texts = {
        document.path: document_text(root / document.path)
        for document in dataset.manifest.documents
    }
    problems: list[str] = []
    for label, answers, documents in _gold(dataset):
        for answer in answers:
            wanted = " ".join(answer.split())
            if not any(wanted in texts[path] for path in documents):
                problems.append(f"{label}: {answer!r} is in none of {documents}")
        for path in documents:
            if not any(" ".join(a.split()) in texts[path] for a in answers):
                problems.append(f"{label}: {path} holds none of {answers}")
    return problems


def _gold(dataset: QADataset) -> Iterable[tuple[str, list[str], list[str]]]:
    for question in dataset.questions:
        yield question.id, question.answers, question.documents
    for chain in dataset.chains:
        for number, turn in enumerate(chain.turns, start=1):
            yield f"{chain.id} turn {number}", turn.answers, turn.documents
