"""The int8 build of the local embedding model, run by :mod:`tools_env` in the
environment of its own that holds NNCF (never in ragline's virtual environment).

    python -m ragline.rag.embeddings.quantise SOURCE_DIR CALIBRATION OUT_DIR FINGERPRINT
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import openvino as ov  # type: ignore[import-untyped]
from tokenizers import Tokenizer

from ragline.rag.embeddings.local import MAX_SEQ_LENGTH, load_tokenizer, pad_batch
from ragline.rag.embeddings.prepare import ARTEFACT_VERSION, CALIBRATION_SAMPLES, MODEL_NAME


def build(source: Path, calibration: Path, out: Path, fingerprint: str) -> None:
    import nncf  # type: ignore[import-not-found, unused-ignore]  # the tools environment's

    from ragline.rag.embeddings.graph import build_minilm_graph

    tokenizer = load_tokenizer(source / "tokenizer.json", truncate=True)
    samples = list(_calibration_inputs(calibration.read_text().splitlines(), tokenizer))
    quantised = nncf.quantize(
        build_minilm_graph(source),
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(samples),
    )
    ov.save_model(quantised, out / "model.xml", compress_to_fp16=False)
    shutil.copyfile(source / "tokenizer.json", out / "tokenizer.json")
    manifest = {
        "model_name": MODEL_NAME,
        "dimension": 384,
        "max_seq_length": MAX_SEQ_LENGTH,
        "precision": "int8 (NNCF post-training, mixed preset)",
        "fingerprint": fingerprint,
        "artefact_version": ARTEFACT_VERSION,
        "openvino": ov.__version__,
    }
    # Written last: its presence marks the artefact complete.
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _calibration_inputs(
    lines: list[str], tokenizer: Tokenizer
) -> Iterator[dict[str, npt.NDArray[np.int64]]]:
    """Single sentences, then runs of consecutive sentences of random length (some past
    256 tokens, so truncated inputs are seen too), each as a batch of one."""
    sentences = [line.strip() for line in lines if line.strip()]
    rng = np.random.default_rng(0)
    texts = list(sentences)
    while len(texts) < CALIBRATION_SAMPLES:
        start = int(rng.integers(len(sentences)))
        count = int(rng.integers(2, 16))
        texts.append(" ".join(sentences[start : start + count]))
    for text in texts[:CALIBRATION_SAMPLES]:
        yield pad_batch([tokenizer.encode(text)])


if __name__ == "__main__":
    source_dir, calibration_file, out_dir, fingerprint_arg = sys.argv[1:5]
    build(Path(source_dir), Path(calibration_file), Path(out_dir), fingerprint_arg)
