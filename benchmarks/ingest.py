"""Ingestion throughput through ragline's real path vs the naive LlamaIndex pipeline.

    python benchmarks/ingest.py [--limit N] [--plot out.png] [--skip-naive]

In one run, on the SciFact corpus (../shared/data/beir-scifact; skipped when absent):

1. ragline: a real `ragline serve` (embedded default: SQLite, Huey on SQLite, embedded
   Chroma, SQLite FTS5, the local OpenVINO int8 embedder). Each abstract is uploaded as a
   .txt file over HTTP (50 per request, 4 client threads); timed until every file is
   `indexed`.
2. raw embedder: the same embedder, alone, over the very chunks ragline stored.
3. naive LlamaIndex: SimpleDirectoryReader -> VectorStoreIndex into Chroma with LlamaIndex's
   HuggingFaceEmbedding (sentence-transformers, fp32) on the same checkpoint, with the same
   chunk size (SentenceSplitter, 250 tokens of the same tokenizer).
4. re-ingest: the unchanged corpus uploaded again (all duplicates), then 10% of the
   documents edited (one sentence) and replaced with PUT.

Throughput is embedded tokens/s: the model tokenizer's tokens of each chunk (+2 special
tokens, at most 256), so chunk size cannot game it.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.common import ragline_server, scifact_corpus, table

DEV = {"X-Ragline-Dev-User": "bench"}
PER_REQUEST = 50
CLIENTS = 4
MAX_TOKENS = 256


def write_corpus(docs: list[dict[str, str]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for doc in docs:
        path = folder / f"{doc['_id']}.txt"
        path.write_text(f"{doc['title'].strip()}\n\n{doc['text'].strip()}\n")
        paths.append(path)
    return paths


def encode_uploads(base: str, chat_id: str, paths: list[Path]) -> list[httpx.Request]:
    """The multipart requests, PER_REQUEST files each, encoded before the clock starts: the
    benchmark times the server, not the client's encoding (both share the 2 cores)."""
    requests = []
    for start in range(0, len(paths), PER_REQUEST):
        files = [("files", (p.name, p.read_bytes())) for p in paths[start : start + PER_REQUEST]]
        request = httpx.Request("POST", f"{base}/chats/{chat_id}/upload", files=files, headers=DEV)
        request.read()
        requests.append(request)
    return requests


def send_all(requests: list[httpx.Request]) -> list[httpx.Response]:
    """CLIENTS threads, each with one keep-alive connection."""
    local = threading.local()

    def send(request: httpx.Request) -> httpx.Response:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=600)
        response: httpx.Response = local.client.send(request)
        return response.raise_for_status()

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(send, requests))


def upload_all(requests: list[httpx.Request]) -> list[dict[str, object]]:
    return [result for response in send_all(requests) for result in response.json()["files"]]


def wait_indexed(base: str, chat_id: str, expected: int) -> None:
    with httpx.Client(base_url=base, headers=DEV, timeout=60) as client:
        while True:
            summary = client.get(f"/chats/{chat_id}/ingestion").json()
            if summary["files"]["failed"]:
                raise RuntimeError(f"{summary['files']['failed']} file(s) failed")
            if (
                summary["files"]["indexed"] >= expected
                and summary["files"]["indexed"] == summary["total"]
            ):
                return
            time.sleep(0.1)


def ragline_chunks(data_dir: Path) -> list[str]:
    from ragline.config import Settings
    from ragline.rag.providers import build_stores

    stores = build_stores(Settings(_env_file=None, ragline_data_dir=data_dir))  # type: ignore[call-arg]
    try:
        [chat_id] = stores.vectors.chat_ids()  # the benchmark's one assistant
        ids = sorted(stores.vectors.ids(chat_id))
        stored = stores.keywords.chunks(ids)  # the keyword index keeps the chunk text
        return [stored[i].text for i in ids if i in stored and stored[i].text]
    finally:
        stores.keywords.close()


def count_tokens(texts: list[str]) -> int:
    from ragline.rag.providers import minilm_tokenizer

    tokenize = minilm_tokenizer()
    return sum(min(len(tokenize(text)), MAX_TOKENS - 2) + 2 for text in texts)


def run_ragline(paths: list[Path], work: Path) -> dict[str, float]:
    data = work / "ragline-data"
    data.mkdir()
    with ragline_server(data) as base:
        chat = httpx.post(f"{base}/chats", json={"title": "bench"}, headers=DEV).json()
        requests = encode_uploads(base, chat["id"], paths)
        started = time.perf_counter()
        results = upload_all(requests)
        assert all(r["status"] == "accepted" for r in results), [
            r for r in results if r["status"] != "accepted"
        ][:3]
        wait_indexed(base, chat["id"], len(paths))
        first = time.perf_counter() - started

        requests = encode_uploads(base, chat["id"], paths)
        started = time.perf_counter()
        again = upload_all(requests)
        wait_indexed(base, chat["id"], len(paths))
        unchanged = time.perf_counter() - started
        assert all(r["status"] == "duplicate" for r in again)

        edited = random.Random(7).sample(paths, max(1, len(paths) // 10))
        by_name = {r["name"]: r["file_id"] for r in results}
        puts = []
        for path in edited:  # one sentence revised in each
            text = path.read_text().replace(". ", ". This sentence was revised. ", 1)
            url = f"{base}/chats/{chat['id']}/files/{by_name[path.name]}"
            put = httpx.Request("PUT", url, files={"file": (path.name, text.encode())}, headers=DEV)
            put.read()
            puts.append(put)
        started = time.perf_counter()
        send_all(puts)
        replaced = time.perf_counter() - started
        wait_indexed(base, chat["id"], len(paths))
        ten_percent = time.perf_counter() - started
        print(
            f"(edited: PUT requests done after {replaced:.2f} s, "
            f"all indexed after {ten_percent:.2f} s)"
        )
    chunks = ragline_chunks(data)
    return {
        "seconds": first,
        "tokens": count_tokens(chunks),
        "chunks": len(chunks),
        "unchanged_seconds": unchanged,
        "edited_seconds": ten_percent,
        "edited_files": len(edited),
        "_texts": chunks,  # type: ignore[dict-item]
    }


def run_raw_embedder(texts: list[str]) -> dict[str, float]:
    from ragline.config import Settings
    from ragline.rag.providers import build_base_embedder

    embedder = build_base_embedder(Settings(_env_file=None))  # type: ignore[call-arg]
    embedder.embed(texts[:32])  # warm up
    started = time.perf_counter()
    for start in range(0, len(texts), 256):
        embedder.embed(texts[start : start + 256])
    return {
        "seconds": time.perf_counter() - started,
        "tokens": count_tokens(texts),
        "chunks": len(texts),
    }


def run_naive(folder: Path, work: Path) -> dict[str, float]:
    import chromadb
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from ragline.rag.embeddings.prepare import shipped_model_dir
    from ragline.rag.providers import minilm_tokenizer

    started = time.perf_counter()
    documents = SimpleDirectoryReader(str(folder)).load_data()
    client = chromadb.PersistentClient(path=str(work / "naive-chroma"))
    collection = client.get_or_create_collection("naive", embedding_function=None)
    storage = StorageContext.from_defaults(
        vector_store=ChromaVectorStore(chroma_collection=collection)
    )
    splitter = SentenceSplitter(chunk_size=250, chunk_overlap=0, tokenizer=minilm_tokenizer())
    embed = HuggingFaceEmbedding(
        model_name=str(shipped_model_dir()), max_length=MAX_TOKENS, device="cpu"
    )
    index = VectorStoreIndex.from_documents(
        documents, storage_context=storage, embed_model=embed, transformations=[splitter]
    )
    seconds = time.perf_counter() - started
    texts = [node.get_content() for node in splitter(documents)]
    del index
    return {"seconds": seconds, "tokens": count_tokens(texts), "chunks": len(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="first N abstracts only")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG bar chart")
    args = parser.parse_args()

    docs = scifact_corpus(args.limit)
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-ingest-"))
    try:
        paths = write_corpus(docs, work / "corpus")
        print(f"corpus: {len(paths)} SciFact abstracts as .txt files")
        ragline = run_ragline(paths, work)
        texts = ragline.pop("_texts")  # type: ignore[misc]
        raw = run_raw_embedder(texts)  # type: ignore[arg-type]
        naive = None if args.skip_naive else run_naive(work / "corpus", work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {"ragline": ragline, "raw embedder": raw}
    if naive:
        results["naive LlamaIndex"] = naive
    rate = {name: r["tokens"] / r["seconds"] for name, r in results.items()}
    rows = [("pipeline", "chunks", "embedded tokens", "seconds", "tokens/s", "ragline ÷ this")]
    for name, result in results.items():
        rows.append(
            (
                name,
                f"{result['chunks']:.0f}",
                f"{result['tokens']:.0f}",
                f"{result['seconds']:.1f}",
                f"{rate[name]:,.0f}",
                f"{rate['ragline'] / rate[name]:.2f}",
            )
        )
    print(table(rows))
    first = ragline["seconds"]
    unchanged, edited = ragline["unchanged_seconds"], ragline["edited_seconds"]
    print(
        f"re-ingest of the unchanged corpus: {unchanged:.2f} s = {unchanged / first:.1%} "
        "of the first ingest (target < 2%)"
    )
    print(
        f"re-ingest with {ragline['edited_files']:.0f} documents (10%) edited: {edited:.2f} s "
        f"= {edited / first:.1%} of the first ingest (target < 15%)"
    )
    print("targets: ragline >= 18,000 tokens/s; >= 3x naive; >= 0.8 of the raw embedder")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.bar(
            list(rate), list(rate.values()), color=["#2b6cb0", "#718096", "#c05621"][: len(rate)]
        )
        ax.axhline(18_000, linestyle="--", color="black", linewidth=1, label="target 18k")
        ax.set_ylabel("embedded tokens / s")
        ax.set_title(f"Ingestion throughput, SciFact ({len(paths)} abstracts)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
