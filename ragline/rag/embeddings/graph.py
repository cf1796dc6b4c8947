"""Builds the all-MiniLM-L6-v2 sentence encoder as an OpenVINO graph from its safetensors.

Build-time only (called by ``prepare``). The graph is written op by op from the BERT
weights, so conversion needs neither torch nor an exporter: ``input_ids`` and
``attention_mask`` (int64, batch x length, both dynamic) in, ``sentence_embedding``
(batch x 384, mean-pooled over the mask and L2-normalised) out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov  # type: ignore[import-untyped]
import openvino.opset13 as ops  # type: ignore[import-untyped]
from safetensors.numpy import load_file

Node = Any  # openvino.Output / Node; the opset functions are not typed precisely.


def build_minilm_graph(model_dir: Path) -> ov.Model:
    """The encoder with pooling and normalisation, in fp32."""
    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    heads: int = config["num_attention_heads"]
    hidden: int = config["hidden_size"]
    eps: float = config["layer_norm_eps"]

    def const(name: str) -> Node:
        return ops.constant(np.ascontiguousarray(weights[name], dtype=np.float32))

    def dense(x: Node, prefix: str) -> Node:
        y = ops.matmul(x, const(f"{prefix}.weight"), transpose_a=False, transpose_b=True)
        return ops.add(y, const(f"{prefix}.bias"))

    def layer_norm(x: Node, prefix: str) -> Node:
        normed = ops.mvn(x, ops.constant(np.array([-1], np.int64)), True, eps, "inside_sqrt")
        return ops.add(ops.multiply(normed, const(f"{prefix}.weight")), const(f"{prefix}.bias"))

    input_ids = ops.parameter([-1, -1], ov.Type.i64, name="input_ids")
    attention_mask = ops.parameter([-1, -1], ov.Type.i64, name="attention_mask")
    mask = ops.convert(attention_mask, ov.Type.f32)

    # Token type is always 0: fold its embedding into the position table.
    positions_table = weights["embeddings.position_embeddings.weight"]
    positions_table = positions_table + weights["embeddings.token_type_embeddings.weight"][0]
    length = ops.gather(ops.shape_of(input_ids), ops.constant(np.array([1], np.int64)), 0)
    zero = ops.constant(np.array([0], np.int64))
    positions = ops.slice(ops.constant(positions_table), zero, length, ops.constant([1]))
    words = ops.gather(const("embeddings.word_embeddings.weight"), input_ids, 0)
    x = layer_norm(ops.add(words, positions), "embeddings.LayerNorm")

    # Additive mask, batch x 1 x 1 x length: 0 where attended, -10000 on padding.
    bias = ops.multiply(ops.subtract(ops.constant(np.float32(1.0)), mask), np.float32(-1e4))
    bias = ops.unsqueeze(bias, ops.constant(np.array([1, 2], np.int64)))

    for i in range(config["num_hidden_layers"]):
        prefix = f"encoder.layer.{i}"
        x = _encoder_layer(x, bias, prefix, heads, hidden, dense, layer_norm)

    summed = ops.reduce_sum(ops.multiply(x, ops.unsqueeze(mask, -1)), 1, keep_dims=False)
    count = ops.maximum(ops.reduce_sum(mask, 1, keep_dims=True), np.float32(1e-9))
    pooled = ops.divide(summed, count)
    embedding = ops.normalize_l2(pooled, ops.constant(np.array([1], np.int64)), 1e-12, "max")
    embedding.get_output_tensor(0).set_names({"sentence_embedding"})
    return ov.Model([embedding], [input_ids, attention_mask], "all-MiniLM-L6-v2")


def _encoder_layer(
    x: Node, bias: Node, prefix: str, heads: int, hidden: int, dense: Any, layer_norm: Any
) -> Node:
    """One BERT layer: self-attention, add & norm, GELU feed-forward, add & norm."""
    head_dim = hidden // heads
    split = ops.constant(np.array([0, 0, heads, head_dim], np.int64))
    merge = ops.constant(np.array([0, 0, hidden], np.int64))

    def to_heads(t: Node) -> Node:  # batch x length x hidden -> batch x heads x length x dim
        return ops.transpose(ops.reshape(t, split, special_zero=True), [0, 2, 1, 3])

    query = to_heads(dense(x, f"{prefix}.attention.self.query"))
    key = to_heads(dense(x, f"{prefix}.attention.self.key"))
    value = to_heads(dense(x, f"{prefix}.attention.self.value"))
    scores = ops.matmul(query, key, transpose_a=False, transpose_b=True)
    scores = ops.add(ops.multiply(scores, np.float32(1.0 / np.sqrt(head_dim))), bias)
    context = ops.matmul(ops.softmax(scores, -1), value, transpose_a=False, transpose_b=False)
    context = ops.reshape(ops.transpose(context, [0, 2, 1, 3]), merge, special_zero=True)

    attended = layer_norm(
        ops.add(dense(context, f"{prefix}.attention.output.dense"), x),
        f"{prefix}.attention.output.LayerNorm",
    )
    inner = ops.gelu(dense(attended, f"{prefix}.intermediate.dense"), "erf")
    return layer_norm(
        ops.add(dense(inner, f"{prefix}.output.dense"), attended), f"{prefix}.output.LayerNorm"
    )
