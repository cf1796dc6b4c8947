"""What answering needs, built once in the lifespan: the chat model and the retriever
(with its own query embedder: the ingestion workers may live in other processes)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from ragline.config import Settings
from ragline.rag.embeddings.lazy import LazyEmbedder
from ragline.rag.ingest.store import Stores
from ragline.rag.llm.base import LLM
from ragline.rag.providers import build_embedder, build_llm, minilm_tokenizer
from ragline.rag.query.retrieve import HybridRetriever

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class ChatRuntime:
    settings: Settings
    llm: LLM
    retriever: HybridRetriever
    count_tokens: Callable[[str], int]
    threads: ThreadPoolExecutor  # blocking search work (see ``in_thread``)

    async def in_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking search work in the runtime's own threads (not asyncio's default
        pool, which other work shares and which is only cores + 4 threads)."""
        call: Callable[[], T] = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.threads, call)

    async def aclose(self) -> None:
        self.retriever.close()
        self.threads.shutdown(wait=False)
        await self.llm.aclose()


def open_chat_runtime(settings: Settings, stores: Stores) -> ChatRuntime:
    embedder = LazyEmbedder(lambda: build_embedder(settings, for_queries=True))
    tokenizer = minilm_tokenizer()
    return ChatRuntime(
        settings=settings,
        llm=build_llm(settings),
        retriever=HybridRetriever(
            embedder=embedder,
            stores=stores,
            candidates=settings.retrieval_candidates,
            alpha=settings.hybrid_alpha,
            threads=settings.search_threads,
        ),
        count_tokens=lambda text: len(tokenizer(text)),
        threads=ThreadPoolExecutor(settings.search_threads, thread_name_prefix="search"),
    )
