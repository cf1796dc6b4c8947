"""``ragline eval answers``: from the command's options to the table and the JSON file."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ragline.client import ClientError, server_errors, server_url
from ragline.evaluation.answers.client import RaglineClient
from ragline.evaluation.answers.dataset import DEFAULT_DATASET, changed_documents, load_dataset
from ragline.evaluation.answers.report import build_report, render, write_json
from ragline.evaluation.answers.run import run_evaluation

NAME = "ragline eval answers"
WIDTH = 120


class _Phases:
    """One progress bar per phase (uploading, indexing, asking), on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total)
        self._progress.update(self._tasks[phase], completed=done, total=total)


def eval_answers(
    *,
    dataset_dir: Path | None,
    split: str,
    url: str | None,
    docs: Path | None,
    limit: int | None,
    user: str | None,
    token: str | None,
    keep: bool,
    json_path: Path | None,
) -> None:
    """Prints the tables (and writes ``json_path``); a one-line notice and nothing else when
    the documents are absent. Raises ``ValueError`` for a bad dataset, ``ClientError`` when
    the server cannot be used."""
    dataset = load_dataset(dataset_dir or DEFAULT_DATASET, split=split).limited(limit)
    err = Console(stderr=True, soft_wrap=True)  # notices stay on one line
    root = docs or dataset.default_docs_root()
    if not root.is_dir():
        err.print(f"{NAME}: no documents at {root} (--docs); skipped", markup=False)
        return
    changed = changed_documents(dataset.manifest, root)
    if any(item.endswith("(missing)") for item in changed):
        raise ClientError(f"documents missing under {root}: {', '.join(changed)}")
    if changed:
        err.print(f"{NAME}: warning: documents differ from the manifest: {changed}", markup=False)
    base = server_url(url)
    client = RaglineClient(base, user=user, token=token)
    columns = (
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with server_errors(base), Progress(*columns, console=err, transient=True) as progress:
            client.check()
            run = run_evaluation(
                client, dataset, docs_root=root, keep=keep, progress=_Phases(progress)
            )
    finally:
        client.close()
    if run.undeleted:
        err.print(f"{NAME}: could not delete assistants {run.undeleted}", markup=False)
    elif keep:
        err.print(f"{NAME}: kept assistants {run.assistants}", markup=False)
    report = build_report(
        run,
        dataset=dataset.manifest.name,
        split=split,
        url=base,
        documents=len(dataset.manifest.documents),
    )
    # Tables as wide as they need, also into a pipe or a file (rich assumes 80 columns).
    render(report, Console() if sys.stdout.isatty() else Console(width=WIDTH))
    if json_path is not None:
        write_json(report, json_path)
