"""What answering needs, built once in the lifespan: the chat model, the retriever
(with its own query embedder: the ingestion workers may live in other processes), the
prompt's token counters and the per-user cap on answers in progress."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from ragline.config import Settings
from ragline.errors import TooManyRequests, Unprocessable
from ragline.rag.embeddings.lazy import LazyEmbedder
from ragline.rag.ingest.store import Stores
from ragline.rag.llm.base import LLM
from ragline.rag.llm.local import LocalLLM
from ragline.rag.providers import build_embedder, build_llm, minilm_tokenizer
from ragline.rag.query.budget import PromptBudget, estimate_tokens
from ragline.rag.query.retrieve import HybridRetriever

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class TooManyAnswers(TooManyRequests):
    code = "too_many_answers"


class GenerationSlots:
    """At most ``per_user`` answers in progress per user in this process; one more is
    refused at once (429) rather than queued behind the model."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._busy: Counter[object] = Counter()

    def acquire(self, user: object) -> None:
        if self._busy[user] >= self.per_user:
            raise TooManyAnswers(
                f"You have {self.per_user} answers in progress; wait for one to end "
                "(CHAT_MAX_CONCURRENT_PER_USER).",
                headers={"Retry-After": "1"},
            )
        self._busy[user] += 1

    def release(self, user: object) -> None:
        self._busy[user] -= 1
        if self._busy[user] <= 0:
            del self._busy[user]


@dataclass
class ChatRuntime:
    settings: Settings
    llm: LLM
    retriever: HybridRetriever
    count_tokens: Callable[[str], int]
    """MiniLM WordPiece tokens (chunk sizes)."""
    prompt_tokens: Callable[[str], int]
    """The chat model's tokens: its own tokenizer (embedded model) or an upper estimate."""
    estimate_tokens: Callable[[str], int]
    """An upper estimate, without loading any model (validating an assistant's prompt)."""
    threads: ThreadPoolExecutor  # blocking search work (see ``in_thread``)
    generations: GenerationSlots

    def check_system_prompt(self, text: str) -> None:
        """422 if an assistant's system prompt (``context``) would leave no room in the
        model's window for a question, a passage and the answer (estimated: no model is
        loaded for this)."""
        window, answer = self.settings.llm_context_tokens, self.settings.llm_max_tokens
        budget = PromptBudget(window=window, answer_tokens=answer, count=self.estimate_tokens)
        limit, needed = budget.max_system_prompt(), self.estimate_tokens(text)
        if needed > limit:
            raise Unprocessable(
                f"The context is too long for the model: it needs about {needed} tokens of "
                f"its {window}-token window (LLM_CONTEXT_TOKENS), and at most {limit} leave "
                f"room for a question and the answer ({answer} tokens, LLM_MAX_TOKENS)."
            )

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
    estimate = estimate_tokens(tokenizer)
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
        prompt_tokens=llm.count_tokens if isinstance(llm, LocalLLM) else estimate,
        estimate_tokens=estimate,
        threads=ThreadPoolExecutor(settings.search_threads, thread_name_prefix="search"),
        generations=GenerationSlots(settings.chat_max_concurrent_per_user),
    )


def _warm_up(llm: LocalLLM) -> None:
    """Load the local model in the background right after start-up, so the first question
    does not wait for it. A failure is only logged: the first question loads it again and
    reports its own error."""
    try:
        llm.warm_up()
    except Exception:
        logger.warning("chat model warm-up failed; the first question will load it", exc_info=True)
