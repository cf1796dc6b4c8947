"""Requantise the shipped SmolLM2 GGUF's Q4_1 tensors to another type (the chat-model
candidates of benchmarks/answers.py), with ragline's own `rag.llm.requantise` (which
`ragline models prepare` uses to make the default Q8_0 file).

    python -m benchmarks.requantise --type Q4_0 OUT.gguf [--source IN.gguf]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ragline.rag.llm.local import shipped_gguf
from ragline.rag.llm.requantise import requantise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--type", choices=["Q8_0", "Q4_0"], required=True)
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args()
    requantise(args.source or shipped_gguf(), args.target, args.type)
    print(f"{args.target}: {args.target.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
