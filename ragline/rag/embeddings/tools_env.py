"""The environment of its own in which the local embedding model's int8 build runs.

NNCF (with scikit-learn, SciPy, pandas, ...) is needed once, to quantise; ragline's own
virtual environment never holds it. The first ``ragline models prepare`` creates a venv
under ``$XDG_CACHE_HOME/ragline/tools/`` with NNCF and the same OpenVINO, tokenizers and
NumPy versions as ragline's (so the graph it writes is the one ragline reads), installed
by pip from the package registry: install time only, never at run time. Later builds (a
new calibration text, a new OpenVINO) reuse it. The build sees only the ``ragline``
package (through a folder holding a link to it), none of ragline's other dependencies.

Telemetry: NNCF sends usage events through ``openvino-telemetry`` unless told not to;
``NNCF_CI=1`` turns its collector into a stub, and ``CI=true`` makes
``openvino-telemetry``'s own opt-in check decline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from filelock import FileLock

import ragline

logger = logging.getLogger(__name__)

NNCF_REQUIREMENT = "nncf>=3.4,<4"
OFFLINE_ENV = {"NNCF_CI": "1", "CI": "true", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def tools_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ragline" / "tools"


def requirements() -> list[str]:
    """NNCF, and ragline's own versions of what the build shares with the run time."""
    pinned = [f"{name}=={metadata.version(name)}" for name in ("openvino", "tokenizers", "numpy")]
    return [NNCF_REQUIREMENT, *pinned, "safetensors", "filelock"]


def ensure_tools_python() -> Path:
    """The tools venv's interpreter, the venv created first if missing (pip, once)."""
    wanted = requirements()
    key = hashlib.sha256("\n".join([sys.version, *wanted]).encode()).hexdigest()[:12]
    venv = tools_dir() / f"quantise-{key}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(venv.parent / f"{venv.name}.lock"):
        if marker.is_file():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a build that died half-way
        started = time.perf_counter()
        base_python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603  # our own interpreter and pinned requirements
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted],
            check=True,
        )
        marker.touch()
        logger.info(
            "made the quantisation environment %s in %.1f s", venv, time.perf_counter() - started
        )
    return python


def run_quantisation(source: Path, calibration: Path, out: Path, fingerprint: str) -> None:
    """Runs :mod:`ragline.rag.embeddings.quantise` in the tools venv, writing into ``out``."""
    python = ensure_tools_python()
    with tempfile.TemporaryDirectory(prefix="ragline-path-") as shim:
        # Only the ragline package on the path: none of ragline's venv leaks in.
        os.symlink(Path(ragline.__file__).parent, Path(shim) / "ragline")
        env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": shim}
        subprocess.run(  # noqa: S603  # our own interpreter and module
            [
                str(python),
                "-m",
                "ragline.rag.embeddings.quantise",
                str(source),
                str(calibration),
                str(out),
                fingerprint,
            ],
            check=True,
            env=env,
        )
