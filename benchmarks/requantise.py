"""Requantise a GGUF's Q4_1 tensors to another type (the chat-model candidates of
benchmarks/answers.py): each Q4_1 tensor is dequantised by gguf-py and quantised again as
`--type` (Q8_0, Q4_0, ...); every other tensor and all metadata are copied as they are,
`general.file_type` updated. The shipped SmolLM2 GGUF has no higher-precision source, so a
Q8_0 made this way holds the Q4_1 values on a finer grid (no information is gained: it
measures the runtime's speed on Q8_0 kernels), and a Q4_0 loses a little more.

    python -m benchmarks.requantise --type Q8_0 OUT.gguf [--source IN.gguf]

Needs the `gguf` package (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gguf  # type: ignore[import-untyped]
import numpy as np

from ragline.rag.llm.local import shipped_gguf

FILE_TYPES = {"Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}


def requantise(source: Path, target: Path, qtype: str) -> None:
    reader = gguf.GGUFReader(source, "r")
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, arch=arch, endianess=reader.endianess)
    new_type = gguf.GGMLQuantizationType[qtype]
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(FILE_TYPES[qtype])
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, field.types[0], sub_type=sub_type)
    tensors: list[tuple[str, np.ndarray, gguf.GGMLQuantizationType]] = []
    for tensor in reader.tensors:
        data, kind = np.asarray(tensor.data), tensor.tensor_type
        if kind == gguf.GGMLQuantizationType.Q4_1:
            values = gguf.quants.dequantize(data, kind)
            data, kind = gguf.quants.quantize(values, new_type), new_type
        tensors.append((tensor.name, data, kind))
    for name, data, kind in tensors:
        writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, data, _ in tensors:
        writer.write_tensor_data(data)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--type", choices=sorted(FILE_TYPES), required=True)
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args()
    requantise(args.source or shipped_gguf(), args.target, args.type)
    print(f"{args.target}: {args.target.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
