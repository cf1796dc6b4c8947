"""What answering needs, built once in the lifespan: the chat model and the retriever
(with its own query embedder: the ingestion workers may live in other processes)."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from ragline.config import Settings
from ragline.rag.embeddings.lazy import LazyEmbedder
from ragline.rag.ingest.store import Stores
from ragline.rag.llm.base import LLM
from ragline.rag.llm.local import LocalLLM
from ragline.rag.providers import build_embedder, build_llm, minilm_tokenizer
from ragline.rag.query.retrieve import HybridRetriever

logger = logging.getLogger(__name__)
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
    llm = build_llm(settings)
    if settings.llm_warm_up and isinstance(llm, LocalLLM):
        threading.Thread(target=_warm_up, args=(llm,), name="llm-warm-up", daemon=True).start()
    return ChatRuntime(
        settings=settings,
        llm=llm,
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


def _warm_up(llm: LocalLLM) -> None:
    """Load the local model in the background right after start-up, so the first question
    does not wait for it. A failure is only logged: the first question loads it again and
    reports its own error."""
    try:
        llm.warm_up()
    except Exception:
        logger.warning("chat model warm-up failed; the first question will load it", exc_info=True)
