"""``ragline eval retrieval``: retrieval quality on a BEIR dataset, through ragline's own path.

The corpus goes into a throwaway assistant in a temporary data dir (embedded Chroma and the
SQLite FTS5 keyword index, whatever the configuration says about stores): one ``.txt`` file
per document (title, blank line, text), parsed, chunked and embedded by the ingestion
pipeline and the configured embedder. Every query of the split that has a relevant document
is then answered in each mode by :class:`HybridRetriever`, configured as the chat configures
it (``RETRIEVAL_CANDIDATES``, ``HYBRID_ALPHA``); a document ranks where its best chunk ranks.

Metrics follow BEIR, which scores with pytrec_eval (trec_eval): nDCG@10 with the graded
judgements as linear gains and discount ``log2(rank + 1)``, the ideal ranking built from
every judged document; recall@100 counts documents judged >= 1. Both are averaged over the
queries, and, as BEIR does by default, a document whose id equals the query's is dropped
from that query's ranking (it matters for corpora that contain their queries).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragline.config import Settings
from ragline.rag.embeddings.base import Embedder
from ragline.rag.ingest.errors import IngestError
from ragline.rag.ingest.pipeline import FileJob, prepare_file
from ragline.rag.ingest.sink import FileWork, IngestSink
from ragline.rag.ingest.store import Stores
from ragline.rag.providers import build_embedder, build_stores, ingest_limits
from ragline.rag.query.retrieve import HybridRetriever, Mode, RetrievedChunk, Scope

logger = logging.getLogger(__name__)

CUTOFF = 10  # nDCG@10
DEPTH = 100  # recall@100
MODES = (Mode.DENSE, Mode.KEYWORD, Mode.HYBRID)
_FILE_NAMESPACE = uuid.UUID("5b0f6f4e-51a9-4a43-9d43-2c1f0e6a7c11")
"""File ids are derived from document ids, so chunk ids (and ties) repeat across runs."""


# --- the dataset --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BeirDocument:
    title: str
    text: str

    @property
    def content(self) -> str:
        return "\n\n".join(part.strip() for part in (self.title, self.text) if part.strip())


@dataclass(frozen=True, slots=True)
class BeirDataset:
    corpus: dict[str, BeirDocument]
    queries: dict[str, str]  # the split's queries that have a document judged >= 1
    qrels: dict[str, dict[str, int]]  # query id -> document id -> grade


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)


def load_beir(folder: Path, *, split: str = "test") -> BeirDataset:
    """``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (with a header row)."""
    qrels: dict[str, dict[str, int]] = {}
    lines = (folder / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if line.strip():
            query_id, doc_id, grade = line.split("\t")[:3]
            qrels.setdefault(query_id, {})[doc_id] = int(grade)
    corpus = {
        str(row["_id"]): BeirDocument(title=str(row.get("title") or ""), text=str(row["text"]))
        for row in _jsonl(folder / "corpus.jsonl")
    }
    queries = {
        str(row["_id"]): str(row["text"])
        for row in _jsonl(folder / "queries.jsonl")
        if any(grade > 0 for grade in qrels.get(str(row["_id"]), {}).values())
    }
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)


# --- metrics ------------------------------------------------------------------------------
def ndcg_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gains (trec_eval's); 0 when no document is judged relevant."""
    dcg = sum(
        max(judged.get(doc_id, 0), 0) / math.log2(rank + 2)
        for rank, doc_id in enumerate(ranking[:k])
    )
    ideal = sorted((grade for grade in judged.values() if grade > 0), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {doc_id for doc_id, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def rank_documents(
    chunks: Sequence[RetrievedChunk], document_of_file: Mapping[str, str], *, exclude: str
) -> list[str]:
    """Documents in the order of their best chunk, without ``exclude`` (the query's id)."""
    ranking: dict[str, None] = {}
    for chunk in chunks:
        doc_id = document_of_file.get(chunk.file_id)
        if doc_id is not None and doc_id != exclude:
            ranking.setdefault(doc_id)
    return list(ranking)


# --- ingestion into a throwaway assistant -------------------------------------------------
@dataclass(frozen=True, slots=True)
class IngestedCorpus:
    scope: Scope
    document_of_file: dict[str, str]
    chunks: int
    skipped: list[str]  # documents the pipeline refused (e.g. no text)


class _Completion:
    """Counts the files the sink still owes; remembers the first failure."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending = 0
        self.error: BaseException | None = None

    def expect(self) -> None:
        with self._condition:
            self._pending += 1

    def done(self, works: Sequence[FileWork]) -> None:
        with self._condition:
            self._pending -= len(works)
            self._condition.notify_all()

    def failed(self, exc: BaseException) -> None:
        with self._condition:
            self.error = self.error or exc
            self._pending -= 1
            self._condition.notify_all()

    def wait(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._pending <= 0)
        if self.error is not None:
            raise RuntimeError(f"ingestion failed: {self.error}") from self.error


def ingest_corpus(
    corpus: Mapping[str, BeirDocument],
    *,
    folder: Path,
    embedder: Embedder,
    stores: Stores,
    settings: Settings,
) -> IngestedCorpus:
    """Each document as a file of one new assistant, through parse, chunk, embed, store."""
    folder.mkdir(parents=True, exist_ok=True)
    scope = Scope(owner_id=str(uuid.uuid4()), chat_id=str(uuid.uuid4()), file_ids=None)
    completion = _Completion()
    sink = IngestSink(
        embedder, stores, finisher=completion.done, max_batch=settings.embed_batch_size
    )
    limits = ingest_limits(settings)
    document_of_file: dict[str, str] = {}
    skipped: list[str] = []
    chunks = 0
    try:
        for index, (doc_id, document) in enumerate(corpus.items()):
            path = folder / f"{index}.txt"  # document ids need not be valid file names
            path.write_text(document.content, encoding="utf-8")
            file_id = str(uuid.uuid5(_FILE_NAMESPACE, doc_id))
            job = FileJob(
                file_id=file_id,
                chat_id=scope.chat_id,
                owner_id=scope.owner_id,
                file_name=path.name,
                path=path,
            )
            try:
                plan = prepare_file(
                    job,
                    tokenizer=embedder.tokenize,
                    stores=stores,
                    limits=limits,
                    chunk_size=settings.chunk_size,
                    fresh=True,
                )
            except IngestError:
                skipped.append(doc_id)
                continue
            document_of_file[file_id] = doc_id
            chunks += len(plan.new)
            completion.expect()
            sink.submit(
                FileWork(
                    key=file_id,
                    chat_id=scope.chat_id,
                    new=plan.new,
                    on_progress=_ignore,
                    on_error=completion.failed,
                )
            )
        completion.wait()
    finally:
        sink.close()
    return IngestedCorpus(
        scope=scope, document_of_file=document_of_file, chunks=chunks, skipped=skipped
    )


def _ignore(_: int) -> None:
    pass


# --- evaluation ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModeResult:
    mode: Mode
    ndcg: float  # nDCG@10
    recall: float  # recall@100
    ms_per_query: float


@dataclass(frozen=True, slots=True)
class RetrievalReport:
    documents: int
    chunks: int
    skipped: int
    queries: int
    embedder: str
    ingest_seconds: float
    results: list[ModeResult]


def throwaway_settings(settings: Settings, data_dir: Path) -> Settings:
    """The configured embedder and chunking, with embedded stores under ``data_dir``."""
    return settings.model_copy(
        update={
            "ragline_data_dir": data_dir,
            "chroma_host": None,
            "database_url": None,
            "pg_host": None,
        }
    )


def ranked_documents(
    retriever: HybridRetriever,
    corpus: IngestedCorpus,
    *,
    query_id: str,
    query: str,
    mode: Mode,
    depth: int = DEPTH,
) -> list[str]:
    """The query's top ``depth`` documents: asks for twice as many chunks, then for more
    while chunks of the same documents crowd the list and the retriever has more to give."""
    k = 2 * depth
    while True:
        chunks = retriever.retrieve(query, corpus.scope, k=k, mode=mode)
        ranking = rank_documents(chunks, corpus.document_of_file, exclude=query_id)
        if len(ranking) >= depth or len(chunks) < k:
            return ranking[:depth]
        k *= 2


def evaluate_mode(
    retriever: HybridRetriever, dataset: BeirDataset, corpus: IngestedCorpus, mode: Mode
) -> ModeResult:
    """nDCG@10 from a top-10 request, as a chat asks for few chunks: hybrid fusion then
    sees the configured number of candidates, as in production (a deeper request fuses
    deeper lists). Recall@100 from a top-100 request. The time is the top-10 request's."""
    ndcg = recall = seconds = 0.0
    for query_id, query in dataset.queries.items():
        judged = dataset.qrels[query_id]
        started = time.perf_counter()
        top = ranked_documents(
            retriever, corpus, query_id=query_id, query=query, mode=mode, depth=CUTOFF
        )
        seconds += time.perf_counter() - started
        ndcg += ndcg_at(top, judged, CUTOFF)
        deep = ranked_documents(retriever, corpus, query_id=query_id, query=query, mode=mode)
        recall += recall_at(deep, judged, DEPTH)
    count = max(len(dataset.queries), 1)
    return ModeResult(
        mode=mode, ndcg=ndcg / count, recall=recall / count, ms_per_query=1000 * seconds / count
    )


def evaluate_retrieval(dataset: BeirDataset, *, settings: Settings) -> RetrievalReport:
    """Ingest ``dataset`` into a throwaway assistant and score every retrieval mode."""
    with tempfile.TemporaryDirectory(prefix="ragline-eval-", ignore_cleanup_errors=True) as tmp:
        local = throwaway_settings(settings, Path(tmp) / "data")
        embedder = build_embedder(local)
        query_embedder = build_embedder(local, for_queries=True)  # as the chat builds it
        stores = build_stores(local)
        retriever = HybridRetriever(
            embedder=query_embedder,
            stores=stores,
            candidates=local.retrieval_candidates,
            alpha=local.hybrid_alpha,
        )
        try:
            logger.info("ingesting %d documents", len(dataset.corpus))
            started = time.perf_counter()
            corpus = ingest_corpus(
                dataset.corpus,
                folder=Path(tmp) / "files",
                embedder=embedder,
                stores=stores,
                settings=local,
            )
            ingest_seconds = time.perf_counter() - started
            logger.info("ingested %d chunks in %.1f s", corpus.chunks, ingest_seconds)
            # Query vectors in one batch up front (the embedding cache keeps them), so the
            # times compare retrieval alone across modes.
            query_embedder.embed(list(dataset.queries.values()))
            results = [evaluate_mode(retriever, dataset, corpus, mode) for mode in MODES]
        finally:
            retriever.close()
            stores.keywords.close()
    return RetrievalReport(
        documents=len(corpus.document_of_file),
        chunks=corpus.chunks,
        skipped=len(corpus.skipped),
        queries=len(dataset.queries),
        embedder=embedder.model_name,
        ingest_seconds=ingest_seconds,
        results=results,
    )


def render(report: RetrievalReport) -> str:
    rows = [("mode", f"nDCG@{CUTOFF}", f"recall@{DEPTH}", "ms/query")]
    rows += [
        (r.mode.value, f"{r.ndcg:.4f}", f"{r.recall:.4f}", f"{r.ms_per_query:.1f}")
        for r in report.results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    skipped = f" ({report.skipped} without text skipped)" if report.skipped else ""
    header = (
        f"{report.documents} documents{skipped} -> {report.chunks} chunks "
        f"({report.embedder}), ingested in {report.ingest_seconds:.1f} s; "
        f"{report.queries} queries"
    )
    return "\n".join([header, *lines])
