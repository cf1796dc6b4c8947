"""The ``local`` embedder: all-MiniLM-L6-v2, int8, on OpenVINO's CPU runtime. Offline.

It reads the artefact that ``prepare.prepare_local_model`` writes (``model.xml``/``.bin``,
``tokenizer.json``, ``manifest.json``) and never touches the network or torch.

Throughput comes from three things, each measured (``benchmarks/embedders.py``): int8
weights and activations (VNNI), batches of texts of similar length (little padding), and
several inference requests in flight at once, one per CPU stream, so both cores stay busy.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import openvino as ov  # type: ignore[import-untyped]
from tokenizers import Encoding, Tokenizer

from ragline.rag.embeddings.base import EmbeddingError

MAX_SEQ_LENGTH = 256
"""The model's max_seq_length, [CLS] and [SEP] included (the shipped tokenizer.json says 128)."""


def load_tokenizer(path: Path, *, truncate: bool) -> Tokenizer:
    """The model's tokenizer without its fixed 128-token padding and truncation; with
    ``truncate``, cut at the model's 256 tokens instead."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    if truncate:
        tokenizer.enable_truncation(MAX_SEQ_LENGTH)
    return tokenizer


def pad_batch(encodings: Sequence[Encoding]) -> dict[str, npt.NDArray[np.int64]]:
    """Right-padded model inputs, as long as the longest encoding in the batch."""
    length = max(len(e.ids) for e in encodings)
    input_ids = np.zeros((len(encodings), length), dtype=np.int64)
    attention_mask = np.zeros_like(input_ids)
    for row, encoding in enumerate(encodings):
        input_ids[row, : len(encoding.ids)] = encoding.ids
        attention_mask[row, : len(encoding.ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


class LocalEmbedder:
    """Implements ``Embedder``. Thread-safe: callers share a pool of inference requests."""

    def __init__(
        self,
        artefact_dir: Path,
        *,
        batch_size: int = 16,
        streams: int = 2,
        threads: int | None = None,
        compile_options: Mapping[str, object] | None = None,
    ) -> None:
        manifest = json.loads((artefact_dir / "manifest.json").read_text())
        self._model_name: str = manifest["model_name"]
        self._dimension: int = manifest["dimension"]
        self._batch_size = batch_size
        self._tokenizer = load_tokenizer(artefact_dir / "tokenizer.json", truncate=False)
        self._truncating = load_tokenizer(artefact_dir / "tokenizer.json", truncate=True)
        config: dict[str, object] = {"NUM_STREAMS": streams, "PERFORMANCE_HINT": "THROUGHPUT"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        config.update(compile_options or {})
        compiled = ov.Core().compile_model(artefact_dir / "model.xml", "CPU", config)
        self._idle: queue.SimpleQueue[ov.InferRequest] = queue.SimpleQueue()
        # Run each request once, here, on one thread: the first call into OpenVINO's Python
        # data dispatcher initialises C++ function-local statics that need the GIL, and two
        # threads doing that at once deadlock (one holds the static's guard and waits for the
        # GIL, the other holds the GIL and waits for the guard) — seen under load.
        warm_up = pad_batch(self._truncating.encode_batch(["warm up"]))
        for _ in range(streams):
            request = compiled.create_infer_request()
            request.infer(warm_up)
            request.get_output_tensor(0).data.copy()
            self._idle.put(request)
        self._pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="local-embed")
        self._closed = threading.Event()

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        """Content tokens that fit: the model's 256 less [CLS] and [SEP]."""
        return MAX_SEQ_LENGTH - 2

    def tokenize(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._closed.is_set():
            raise EmbeddingError("the local embedder is closed")
        if not texts:
            return []
        encodings = self._truncating.encode_batch(list(texts))
        # Length buckets: sorted by length, batches pad to their own longest text. Longest
        # first: the streams then finish a call on short batches, and the one left running
        # while the other idles is short (shortest-first idled a core on a long batch at the
        # end of every call).
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        batches = [
            order[start : start + self._batch_size]
            for start in range(0, len(order), self._batch_size)
        ]
        if len(batches) == 1:  # e.g. a search query: no hop through the pool
            single: list[list[float]] = self._infer(pad_batch(encodings)).tolist()
            return single
        futures = [
            self._pool.submit(self._infer, pad_batch([encodings[i] for i in batch]))
            for batch in batches
        ]
        vectors = np.empty((len(texts), self._dimension), dtype=np.float32)
        for batch, future in zip(batches, futures, strict=True):
            vectors[batch] = future.result()
        return vectors.tolist()

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=True)

    def _infer(self, inputs: dict[str, npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
        request = self._idle.get()
        try:
            request.infer(inputs)
            output: npt.NDArray[np.float32] = request.get_output_tensor(0).data.copy()
            return output
        except RuntimeError as error:
            raise EmbeddingError(f"local model inference failed: {error}") from error
        finally:
            self._idle.put(request)
