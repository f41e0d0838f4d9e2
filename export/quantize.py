"""Optional reduced precision of exported graphs: int8 dynamic quantisation or fp16 weights.

Inputs and outputs stay float32 either way, so the engine and the artifacts contract do not change.
"""
from __future__ import annotations

import logging
from pathlib import Path

import onnx

MODES = ("int8", "fp16")
# Conv is left in fp32: onnxruntime's ConvInteger is slower on CPU than its fp32 Conv (measured 2x on the
# demo video encoder), while int8 LSTM / MatMul / embedding Gather are faster and smaller.
INT8_OPS = ["MatMul", "LSTM", "Gather", "Attention", "EmbedLayerNormalization"]


def quantize_graph(src: Path, dst: Path, mode: str) -> None:
    """Write a reduced-precision copy of src to dst and check it."""
    if mode == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # quantize_dynamic logs a "consider pre-processing" hint on every call; it is advice, not a fault.
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS)
        finally:
            logging.getLogger().setLevel(quiet)
    elif mode == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # keep_io_types: casts at the edges, so callers keep feeding and reading float32.
        proto = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(topologically_sorted(proto), str(dst))
    else:
        raise ValueError(f"unknown quantize mode {mode!r}; known: {MODES}")
    onnx.checker.check_model(onnx.load(str(dst)), full_check=True)


def topologically_sorted(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The fp16 converter appends its input casts at the end of the node list; ONNX requires every node
    after the producers of its inputs (onnxruntime tolerates it, onnx.checker does not)."""
    graph = proto.graph
    nodes = [onnx.NodeProto() for _ in graph.node]
    for copy, node in zip(nodes, graph.node):
        copy.CopyFrom(node)
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(range(len(nodes))), []
    while pending:
        ready = [i for i in pending if all(x in known for x in nodes[i].input)]
        if not ready:
            raise ValueError("graph has a cycle or an input no node produces")
        for i in ready:
            known.update(nodes[i].output)
        ordered += ready
        pending = [i for i in pending if i not in set(ready)]
    del graph.node[:]
    graph.node.extend(nodes[i] for i in ordered)
    return proto
