"""What answering needs, built once in the lifespan: the chat model and the retriever
(with its own query embedder: the ingestion workers may live in other processes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ragline.config import Settings
from ragline.rag.embeddings.lazy import LazyEmbedder
from ragline.rag.ingest.store import Stores
from ragline.rag.llm.base import LLM
from ragline.rag.providers import build_embedder, build_llm, minilm_tokenizer
from ragline.rag.query.retrieve import HybridRetriever


@dataclass
class ChatRuntime:
    settings: Settings
    llm: LLM
    retriever: HybridRetriever
    count_tokens: Callable[[str], int]

    async def aclose(self) -> None:
        self.retriever.close()
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
        ),
        count_tokens=lambda text: len(tokenizer(text)),
    )
