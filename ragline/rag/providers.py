"""Providers chosen by configuration: embedder, vector store, keyword index.

This module reads ragline's Settings but nothing web or ORM; everything it builds is a
plain object with a small interface (``Embedder``, ``ChromaVectorStore``, ``KeywordIndex``).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from redis import Redis

from ragline.config import Provider, Settings, UnsafeConfigurationError
from ragline.rag.embeddings.base import Embedder, Tokenizer
from ragline.rag.embeddings.batching import QueryBatcher
from ragline.rag.embeddings.cache import CachedEmbedder, EmbeddingCache, MemoryCache, RedisCache
from ragline.rag.ingest.guards import IngestLimits
from ragline.rag.ingest.store import Stores
from ragline.rag.llm.base import LLM
from ragline.rag.stores.keyword import build_keyword_index
from ragline.rag.stores.vector import ChromaVectorStore, chroma_client

logger = logging.getLogger(__name__)
REMOTE_TIMEOUT_S = 60.0
QUERY_BATCH = 8
"""Queries embedded in one inference at most (see ``QueryBatcher``). Measured with the local
model on one thread, 24-token queries: 1.9 ms CPU for one, 1.1 ms each in fours, 1.0 ms
each in eights (0.9 in sixteens, but a 15 ms wait for the first of them)."""


@lru_cache(maxsize=1)
def minilm_tokenizer() -> Tokenizer:
    """The MiniLM tokenizer shipped with the local model: sizes chunks for any provider."""
    from ragline.rag.embeddings.local import load_tokenizer
    from ragline.rag.embeddings.prepare import shipped_model_dir

    tokenizer = load_tokenizer(shipped_model_dir() / "tokenizer.json", truncate=False)
    return lambda text: list(tokenizer.encode(text, add_special_tokens=False).ids)


def build_base_embedder(settings: Settings, *, for_queries: bool = False) -> Embedder:
    """``for_queries``: short texts, few at a time, latency first: the local model runs one
    inference at a time on one thread (two threads took 0.2 ms off a query's 1.8 ms but
    doubled its CPU time, which concurrent searches need for everything else)."""
    provider = settings.embed_provider
    if provider is Provider.LOCAL:
        from ragline.rag.embeddings.local import LocalEmbedder
        from ragline.rag.embeddings.prepare import find_local_model

        if for_queries:
            return LocalEmbedder(
                find_local_model(settings.models_dir),
                batch_size=QUERY_BATCH,
                streams=1,
                threads=1,
                compile_options={"PERFORMANCE_HINT": "LATENCY"},
                pad_multiple=8,  # queries are short: a smaller pad, 8 shapes up to 64 tokens
                warm_lengths=64,
                pad_rows=True,
            )
        return LocalEmbedder(find_local_model(settings.models_dir))
    from ragline.rag.embeddings.remote import OllamaEmbedder, OpenAIEmbedder

    if provider is Provider.OLLAMA:
        return OllamaEmbedder(
            base_url=f"http://{settings.ollama_host}:{settings.ollama_port}",
            model=_required(settings.ollama_embed_model, settings),
            tokenizer=minilm_tokenizer(),
            max_tokens=settings.chunk_size,
            timeout=REMOTE_TIMEOUT_S,
        )
    return OpenAIEmbedder(
        base_url=settings.ionos_base_url,
        api_key=settings.ionos_api_key,
        model=_required(settings.ionos_embed_model, settings),
        tokenizer=minilm_tokenizer(),
        max_tokens=settings.chunk_size,
        timeout=REMOTE_TIMEOUT_S,
    )


def expected_embedding_model(settings: Settings) -> str | None:
    """The model name files will record, known without loading the model."""
    if settings.embed_provider is Provider.LOCAL:
        from ragline.rag.embeddings.prepare import MODEL_NAME

        return MODEL_NAME
    if settings.embed_provider is Provider.OLLAMA:
        return settings.ollama_embed_model
    return settings.ionos_embed_model


def build_embedding_cache(settings: Settings) -> EmbeddingCache:
    if settings.redis_url:
        # Bounded waits: a hung Redis makes a cache miss after 1 s, never a hung search.
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
        return RedisCache(client, settings.embedding_cache_ttl_seconds)
    return MemoryCache(settings.embedding_cache_size)


def build_embedder(settings: Settings, *, for_queries: bool = False) -> Embedder:
    embedder = build_base_embedder(settings, for_queries=for_queries)
    if for_queries:
        embedder = QueryBatcher(embedder, max_batch=QUERY_BATCH)
    if settings.chunk_size > embedder.max_tokens:
        raise ValueError(
            f"CHUNK_SIZE={settings.chunk_size} exceeds what {embedder.model_name} reads "
            f"({embedder.max_tokens} tokens besides its special tokens)"
        )
    if settings.embedding_cache_size == 0:
        return embedder
    return CachedEmbedder(embedder, build_embedding_cache(settings))


def build_stores(settings: Settings) -> Stores:
    """Chroma (embedded unless CHROMA_HOST) and the keyword index beside it: SQLite FTS5
    under the data dir with the embedded database, PostgreSQL with PostgreSQL."""
    client = chroma_client(
        path=settings.ragline_data_dir / "chroma",
        host=settings.chroma_host,
        port=settings.chroma_port,
    )
    vectors = ChromaVectorStore(client, settings.chroma_collection_name)
    keywords = build_keyword_index(
        database_url=settings.sqlalchemy_url, data_dir=settings.ragline_data_dir
    )
    return Stores(vectors=vectors, keywords=keywords)


def ingest_limits(settings: Settings) -> IngestLimits:
    return IngestLimits(
        max_file_bytes=settings.upload_max_bytes,
        max_text_bytes=settings.text_max_bytes,
        max_pdf_pages=settings.pdf_max_pages,
        max_zip_entries=settings.zip_max_entries,
        max_zip_total_bytes=settings.zip_max_total_bytes,
        max_zip_ratio=settings.zip_max_ratio,
        max_spreadsheet_cells=settings.spreadsheet_max_cells,
    )


def build_llm(settings: Settings) -> LLM:
    """The chat model: ``local`` (in-process, OpenVINO GenAI), ``ollama`` or OpenAI-compatible.
    A chat's own ``model`` overrides the provider's default model name per request."""
    provider = settings.llm_provider
    if provider is Provider.LOCAL:
        from ragline.rag.llm.local import LocalLLM

        return LocalLLM(
            model_path=settings.llm_local_model or _prepared_chat_model(settings),
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads or None,
            keep_alive_s=settings.llm_keep_alive_seconds,
        )
    if provider is Provider.OLLAMA:
        from ragline.rag.llm.ollama import OllamaLLM

        return OllamaLLM(
            base_url=f"http://{settings.ollama_host}:{settings.ollama_port}",
            model=_required(settings.ollama_model, settings),
            timeout=settings.llm_timeout_seconds,
            connect_timeout=settings.llm_connect_timeout_seconds,
        )
    from ragline.rag.llm.openai import OpenAILLM

    return OpenAILLM(
        base_url=settings.ionos_base_url,
        api_key=settings.ionos_api_key,
        model=_required(settings.ionos_model, settings),
        timeout=settings.llm_timeout_seconds,
        connect_timeout=settings.llm_connect_timeout_seconds,
    )


def _prepared_chat_model(settings: Settings) -> Path | None:
    """The Q8_0 file ``ragline models prepare`` makes (``make run`` runs it); without it,
    the shipped Q4_1 file, with a warning (it answers worse: rag/llm/requantise.py)."""
    from ragline.rag.llm.requantise import find_chat_model

    path = find_chat_model(settings.models_dir)
    if path is None:
        logger.warning(
            "the chat model's Q8_0 file is not prepared in %s: using the Q4_1 file, which "
            "answers worse (run `ragline models prepare`)",
            settings.models_dir,
        )
    return path


def _required(value: str | None, settings: Settings) -> str:
    """A provider's model name. ``Settings`` refuses it unset (``provider_problems``);
    settings made with ``model_copy`` skip that check, so it is made again here."""
    if not value or not value.strip():
        raise UnsafeConfigurationError("; ".join(settings.provider_problems()))
    return value


def check_local_models(settings: Settings, *, llm: bool = True) -> None:
    """Fail at start-up rather than at the first upload or question when a local model is
    not there: ``LocalModelMissing`` (run ``ragline models prepare``), ``LLMUnavailable``
    (the chat model's package). ``llm=False``: the ingestion worker needs no chat model."""
    if settings.embed_provider is Provider.LOCAL:
        from ragline.rag.embeddings.prepare import find_local_model

        find_local_model(settings.models_dir)
    if llm and settings.llm_provider is Provider.LOCAL:
        from ragline.rag.llm.local import local_gguf

        local_gguf(settings.llm_local_model)
