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


PAD_MULTIPLE = 16
"""Batches are padded to a multiple of this many tokens (queries: 8). OpenVINO prepares its
kernels for each new input shape on first use (measured: 15-40 ms for a query of a length
not seen before, against 3-4 ms once seen), so a server kept pausing as new query lengths
came, and an ingest paid it for most of its (batch, length) pairs; with lengths in steps of
16 there are at most 16 shapes per batch size. Embedding 1,500 SciFact abstracts in a fresh
process, same run: 12.3-12.7 s padded to 16, 12.7-14.8 s to 8, 13.3-17.8 s unpadded. The
pad costs at most 15 masked tokens per text (the tokens counted as embedded are the real
ones)."""


MISCOMPUTED_LENGTHS = frozenset({32})
"""Input lengths the int8 model is computed wrongly at by OpenVINO's CPU plugin (seen on a
CPU with AMX and AVX-512 VNNI): inputs exactly 32 tokens long came out with a cosine of
0.60-0.94 to the fp32 reference (batches of 16 / of one), against >= 0.97 at every other
length from 8 to 64 and every multiple of 8 up to 256 (scanned on SciFact text). Such a
batch is padded to the next multiple instead; the pad is masked, so nothing else changes."""


def pad_batch(
    encodings: Sequence[Encoding], multiple: int = 1, *, rows: int | None = None
) -> dict[str, npt.NDArray[np.int64]]:
    """Right-padded model inputs, as long as the longest encoding in the batch, rounded up
    to ``multiple`` tokens; with ``rows``, that many rows (the extra ones hold one masked-in
    [PAD] token, so that their pooling divides by one, and are discarded by the caller)."""
    length = -(-max(len(e.ids) for e in encodings) // multiple) * multiple
    if length in MISCOMPUTED_LENGTHS:
        length += multiple
    input_ids = np.zeros((max(rows or 0, len(encodings)), length), dtype=np.int64)
    attention_mask = np.zeros_like(input_ids)
    attention_mask[len(encodings) :, 0] = 1
    for row, encoding in enumerate(encodings):
        input_ids[row, : len(encoding.ids)] = encoding.ids
        attention_mask[row, : len(encoding.ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def rows_for(count: int) -> int:
    """Batches of queries are padded to a power of two rows: few input shapes to prepare."""
    return 1 << (count - 1).bit_length()


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
        pad_multiple: int = PAD_MULTIPLE,
        warm_lengths: int = 0,
        pad_rows: bool = False,
    ) -> None:
        """``warm_lengths``: run inputs of every padded length up to this many tokens once,
        in a background thread, so that no caller pays a shape's first run; ``pad_rows``:
        pad each call's rows to a power of two (:func:`rows_for`; queries batched by
        :class:`~ragline.rag.embeddings.batching.QueryBatcher`), and warm those too."""
        manifest = json.loads((artefact_dir / "manifest.json").read_text())
        self._model_name: str = manifest["model_name"]
        self._dimension: int = manifest["dimension"]
        self._batch_size = batch_size
        self._pad = pad_multiple
        self._pad_rows = pad_rows
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
        warm_up = pad_batch(self._truncating.encode_batch(["warm up"]), self._pad)
        for _ in range(streams):
            request = compiled.create_infer_request()
            request.infer(warm_up)
            request.get_output_tensor(0).data.copy()
            self._idle.put(request)
        self._pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="local-embed")
        self._closed = threading.Event()
        self._warming: threading.Thread | None = None
        if warm_lengths > 0:
            self._warming = threading.Thread(
                target=self._warm_up, args=(warm_lengths,), name="local-embed-warm", daemon=True
            )
            self._warming.start()

    def _warm_up(self, up_to: int) -> None:
        """One inference per padded length (a request at a time: callers wait for at most
        one of them)."""
        row_counts = [1]
        while self._pad_rows and row_counts[-1] < self._batch_size:
            row_counts.append(row_counts[-1] * 2)
        for rows in row_counts:
            for length in range(self._pad, min(up_to, MAX_SEQ_LENGTH) + 1, self._pad):
                if self._closed.is_set():
                    return
                if length in MISCOMPUTED_LENGTHS:
                    continue  # pad_batch never makes inputs of this length
                ids = np.full((rows, length), 100, dtype=np.int64)  # [UNK]: any token will do
                self._infer({"input_ids": ids, "attention_mask": np.ones_like(ids)})

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
        if len(batches) == 1:  # e.g. search queries: no hop through the pool
            rows = rows_for(len(encodings)) if self._pad_rows else None
            inputs = pad_batch(encodings, self._pad, rows=rows)
            single: list[list[float]] = self._infer(inputs)[: len(encodings)].tolist()
            return single
        futures = [
            self._pool.submit(self._infer, pad_batch([encodings[i] for i in batch], self._pad))
            for batch in batches
        ]
        vectors = np.empty((len(texts), self._dimension), dtype=np.float32)
        for batch, future in zip(batches, futures, strict=True):
            vectors[batch] = future.result()
        return vectors.tolist()

    def close(self) -> None:
        self._closed.set()
        if self._warming is not None:
            self._warming.join()
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
