"""One file from stored bytes to searchable chunks. Reads as the data flow:

parse -> chunk -> assign ids -> diff against the stores; then the sink (``sink.py``)
embeds new chunks in batches across files, stores them, refreshes moved chunks' metadata
and drops stale chunks. Stages are small modules; these functions only call them in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llama_index.core.schema import Document, TextNode

from ragline.rag.embeddings.base import Tokenizer
from ragline.rag.ingest.chunk import chunk_documents
from ragline.rag.ingest.guards import IngestLimits, check_file
from ragline.rag.ingest.ids import assign_chunk_ids
from ragline.rag.ingest.parse import parse
from ragline.rag.ingest.sniff import DetectedType, detect_type
from ragline.rag.ingest.store import Stores, chunk_metadata, stored_chunks


class FileParser(Protocol):
    """``parse.parse``, or the budgeted parse of a job (``parse/budget.py``)."""

    def __call__(
        self, path: Path, detected: DetectedType, *, limits: IngestLimits
    ) -> list[Document]: ...


@dataclass(frozen=True, slots=True)
class FileJob:
    file_id: str
    chat_id: str
    owner_id: str
    file_name: str
    path: Path


@dataclass(frozen=True, slots=True)
class ChangePlan:
    """What a (re-)ingest must do: embed ``new``, keep ``kept`` (of which ``moved`` have new
    metadata, e.g. offsets shifted by an edit above them), delete ``stale`` ids."""

    nodes: list[TextNode]
    new: list[TextNode]
    kept: list[TextNode]
    moved: list[TextNode]
    stale: list[str]


def plan_changes(
    nodes: Sequence[TextNode], *, stored: Mapping[str, Mapping[str, object]]
) -> ChangePlan:
    """``stored``: the file's stored chunks, metadata by id (empty: rewrite it if kept)."""
    ids = {node.id_ for node in nodes}
    kept = [node for node in nodes if stored.get(node.id_)]
    return ChangePlan(
        nodes=list(nodes),
        new=[node for node in nodes if not stored.get(node.id_)],
        kept=kept,
        moved=[node for node in kept if chunk_metadata(node) != stored[node.id_]],
        stale=sorted(set(stored) - ids),
    )


def prepare_file(
    job: FileJob,
    *,
    tokenizer: Tokenizer,
    stores: Stores,
    limits: IngestLimits,
    chunk_size: int,
    fresh: bool = False,
    settled: bool = False,
    parser: FileParser = parse,
) -> ChangePlan:
    """Parse, chunk and diff one file against what the stores already hold for it
    (``fresh``: the caller knows nothing was ever stored for this file; ``settled``: the
    last job that wrote its chunks finished, see :func:`stored_chunks`; ``parser``: the
    workers parse under a budget, in a parse process)."""
    detected = detect_type(job.path, job.file_name, limits=limits)
    check_file(job.path, detected, limits)
    documents = parser(job.path, detected, limits=limits)
    for document in documents:
        document.metadata.update(
            owner_id=job.owner_id, chat_id=job.chat_id, file_id=job.file_id, file_name=job.file_name
        )
    nodes = chunk_documents(documents, tokenizer=tokenizer, chunk_size=chunk_size)
    nodes = assign_chunk_ids(nodes, file_id=job.file_id)
    stored = (
        {}
        if fresh
        else stored_chunks(stores, chat_id=job.chat_id, file_id=job.file_id, settled=settled)
    )
    return plan_changes(nodes, stored=stored)


def sweep_keyword_leftovers(plan: ChangePlan, *, stores: Stores, file_id: str) -> None:
    """After the file's changes are applied: drop keyword rows that a crashed earlier run
    may have left without a vector (the vector store is the commit marker)."""
    leftovers = set(stores.keywords.file_chunks(file_id=file_id)) - {n.id_ for n in plan.nodes}
    if leftovers:
        stores.keywords.delete_ids(sorted(leftovers))
