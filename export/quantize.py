"""Optional reduced precision of exported graphs: int8 dynamic quantisation or fp16 weights; and, for the video
encoder alone, static int8 (QDQ, calibrated on clips) or an offline graph-optimisation pass.

Inputs and outputs stay float32 either way, so the engine and the artifacts contract do not change.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

MODES = ("int8", "fp16")  # `slr export --quantize`: every graph of a version
# What `slr export-variant` can make of one graph of an existing version (export/variants.py). "int8-static" needs
# calibration clips (the video encoder's input); "optimized" is onnxruntime's extended graph optimisation, saved.
VARIANTS = ("optimized", "int8", "int8-static", "fp16")
# Static int8: the convolutions (what dynamic int8 leaves in fp32, see INT8_OPS) and the projections; activations
# uint8, weights int8 per output channel, ranges from min/max over the calibration clips. The GRU stays fp32.
STATIC_OPS = ["Conv", "Relu"]
CALIBRATION_BATCH = 8
# Conv is left in fp32: onnxruntime's ConvInteger is slower on CPU than its fp32 Conv (measured 2x on the
# demo video encoder), while int8 LSTM / MatMul / embedding Gather are faster and smaller.
INT8_OPS = ["MatMul", "LSTM", "Gather", "Attention", "EmbedLayerNormalization"]


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """onnxruntime.quantization logs a "consider pre-processing" hint on every call; it is advice, not a fault."""
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.getLogger().setLevel(level)


def quantize_graph(src: Path, dst: Path, mode: str, calibration: dict[str, np.ndarray] | None = None) -> None:
    """Write a reduced-precision (or optimised) copy of src to dst and check it.

    calibration: for "int8-static", the graph's inputs over N samples (axis 0), fed CALIBRATION_BATCH at a time."""
    if mode == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _quiet_logging():
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS)
    elif mode == "int8-static":
        if not calibration:
            raise ValueError("int8-static quantisation needs calibration inputs")
        quantize_static_graph(src, dst, calibration)
    elif mode == "optimized":
        optimize_graph(src, dst)
    elif mode == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # keep_io_types: casts at the edges, so callers keep feeding and reading float32.
        proto = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(topologically_sorted(proto), str(dst))
    else:
        raise ValueError(f"unknown quantize mode {mode!r}; known: {VARIANTS}")
    if mode != "optimized":  # an optimised graph holds onnxruntime's own fused ops (com.microsoft), unknown to onnx
        onnx.checker.check_model(onnx.load(str(dst)), full_check=True)


def optimize_graph(src: Path, dst: Path) -> None:
    """onnxruntime's extended graph optimisations (constant folding, fusions), applied once and saved, so a session
    starts from the optimised graph. Extended, not all: the layout transforms of ORT_ENABLE_ALL are specific to
    the machine that runs them, and a session applies them itself at load."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    if not dst.is_file():
        raise RuntimeError(f"onnxruntime wrote no optimised graph for {src}")


def quantize_static_graph(src: Path, dst: Path, calibration: dict[str, np.ndarray]) -> None:
    """Static int8 in QDQ form (QuantizeLinear / DequantizeLinear pairs that onnxruntime fuses into QLinearConv and
    friends): weights int8 per channel, activations uint8 with ranges from the calibration inputs (min / max)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    n = min(len(v) for v in calibration.values())
    if n == 0:
        raise ValueError("int8-static quantisation needs at least one calibration sample")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{k: np.ascontiguousarray(v[i: i + CALIBRATION_BATCH], dtype=v.dtype)
                                  for k, v in calibration.items()} for i in range(0, n, CALIBRATION_BATCH)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="slr-quant-") as tmp, _quiet_logging():
        pre = Path(tmp) / "pre.onnx"
        # Shape inference and the fusions quantisation expects, written beside; its temp files stay in tmp.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=STATIC_OPS,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


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
