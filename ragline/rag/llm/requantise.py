"""The embedded chat model as Q8_0: made once at install time (``ragline models prepare``)
from the shipped Q4_1 GGUF, with gguf-py (llama.cpp's own GGUF library): each Q4_1 tensor
is dequantised and quantised again as Q8_0; the other tensors and all metadata are copied.

No information is added (the Q8_0 grid holds the Q4_1 values), yet OpenVINO GenAI answers
better and sooner from it: on the docs-qa dev split (3 chunks, 64 tokens, greedy) right
answers 26.2% against 9.5% and first token 0.54 s against 1.28 s; on the test split
(served, default sampling) token F1 0.061 against 0.039 (benchmarks/answer_lab.py,
benchmarks/answers.py). Its Q4_1 path is the lossy one, not the weights."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ragline.rag.llm.local import shipped_gguf

PREPARED = "SmolLM2-135M-Instruct.Q8_0.gguf"


def prepared_path(models_dir: Path, source: Path) -> Path:
    """In a folder keyed by the source file's size (another package: another file)."""
    return models_dir / f"smollm2-135m-instruct-q8_0-{source.stat().st_size}" / PREPARED


def find_chat_model(models_dir: Path) -> Path | None:
    """The prepared Q8_0 file, when ``ragline models prepare`` has made it."""
    path = prepared_path(models_dir, shipped_gguf())
    return path if path.is_file() else None


def prepare_chat_model(models_dir: Path) -> Path:
    """Makes the Q8_0 file if it is not there (a few seconds); returns its path."""
    source = shipped_gguf()
    target = prepared_path(models_dir, source)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        requantise(source, partial, "Q8_0")
        partial.replace(target)  # atomic: a reader sees the whole file or none
    finally:
        partial.unlink(missing_ok=True)
    return target


def requantise(source: Path, target: Path, qtype: str) -> None:
    """``source``'s Q4_1 tensors as ``qtype`` (``Q8_0``, ``Q4_0``), everything else copied."""
    import gguf
    import numpy as np

    logging.getLogger("gguf").setLevel(logging.WARNING)  # one INFO line per file written
    file_types = {"Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}
    reader = gguf.GGUFReader(source, "r")
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, arch=arch, endianess=reader.endianess)
    new_type = gguf.GGMLQuantizationType[qtype]
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(file_types[qtype])
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, field.types[0], sub_type=sub_type)
    tensors = []
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
