#!/usr/bin/env python3
"""Static INT8 quantization of a compiled S² model (s2-policy compile) with onnxruntime's own tools.

Recipe: onnxruntime.quantization.quant_pre_process (shape inference), then quantize_static in QDQ format with
per-channel INT8 weights and UINT8 activations, calibrated on base images N x C x H x W (.npy, normalised as the
model expects: the frames the node feeds it). Only the backbone's weight products are quantized: Conv and
MatMul/Gemm nodes inside the inlined backbone whose second input is a constant. The S² resampling products
(resize, pooling), LayerNorm, Softmax and GELU stay float32, and so do attention's activation x activation
products unless --products all.
The compiled model's metadata is carried over, with s2.quantization describing what was done.

    python3 scripts/quantize_int8.py --model s2_vits16.onnx --calibration frames.npy --out s2_vits16.int8.onnx

Calibration frames: `npm run bench:int8` renders them from the built-in simulation (through the node's own
ingestion) and runs this script; any N x C x H x W float32 .npy of real frames works the same way.
Needs: pip install onnxruntime onnx numpy.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}


def fail(msg):
    print(f"quantize_int8: {msg}", file=sys.stderr)
    sys.exit(2)


class Frames(CalibrationDataReader):
    """Calibration batches; set_range lets the calibrator take them one at a time (bounded memory)."""

    def __init__(self, name, frames, batch):
        self.name = name
        self.batches = [frames[i : i + batch] for i in range(0, len(frames), batch)]
        self.set_range(0, len(self.batches))

    def __len__(self):
        return len(self.batches)

    def set_range(self, start_index, end_index):
        self.i = start_index
        self.end = min(end_index, len(self.batches))

    def get_next(self):
        if self.i >= self.end:
            return None
        self.i += 1
        return {self.name: self.batches[self.i - 1]}

    def rewind(self):
        self.set_range(0, len(self.batches))


def backbone_nodes(model, products):
    """Names of the inlined backbone's Conv / MatMul / Gemm nodes: those with a constant weight input, or with
    products 'all' also activation x activation products (attention's QK^T and AV)."""
    inits = {i.name for i in model.graph.initializer}
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    names = []
    for n in model.graph.node:
        if not n.name.startswith("backbone@") or n.op_type not in ("Conv", "MatMul", "Gemm") or len(n.input) < 2:
            continue
        if products == "all" or n.input[1] in inits or n.input[1] in consts:
            names.append(n.name)
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="compiled S² model (fp32)")
    ap.add_argument("--calibration", required=True, help="float32 .npy of base images N x C x H x W")
    ap.add_argument("--out", required=True)
    ap.add_argument("--method", choices=sorted(METHODS), default="percentile", help="activation range calibration (default percentile 99.999)")
    ap.add_argument("--batch", type=int, default=2, help="frames per calibration run")
    ap.add_argument("--products", choices=["weights", "all"], default="weights", help="quantize weight products only (default) or also attention's activation products")
    a = ap.parse_args()

    for flag, path in (("--model", a.model), ("--calibration", a.calibration)):
        if not os.path.isfile(path):
            fail(f"{path}: no such file ({flag}; `s2-policy sim frames --out frames.npy --size H` renders calibration frames)" if flag == "--calibration" else f"{path}: no such file ({flag})")
    try:
        model = onnx.load(a.model)
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        fail(f"{a.model}: not a readable ONNX model ({str(e).splitlines()[0]})")
    meta = {p.key: p.value for p in model.metadata_props}
    if "s2.compiled" not in meta:
        fail(f"{a.model}: not a compiled S² model (run s2-policy compile first)")
    info = json.loads(meta["s2.compiled"])
    try:
        frames = np.load(a.calibration)
    except Exception as e:  # noqa: BLE001
        fail(f"{a.calibration}: not a .npy file ({str(e).splitlines()[0]})")
    want = [info["channels"], *info["inputSize"]]
    if frames.dtype != np.float32 or frames.ndim != 4 or list(frames.shape[1:]) != want:
        fail(f"{a.calibration}: is {frames.dtype} {tuple(frames.shape)}, the model takes float32 N x {want[0]} x {want[1]} x {want[2]}")
    nodes = backbone_nodes(model, a.products)
    if not nodes:
        fail(f"{a.model}: no Conv/MatMul/Gemm weights inside the backbone to quantize")

    out_dir = os.path.dirname(os.path.abspath(a.out))
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        # Shape inference only: onnxruntime's graph optimisation would rename the nodes chosen above.
        quant_pre_process(a.model, pre, skip_optimization=True, skip_onnx_shape=False, skip_symbolic_shape=False)
        q = os.path.join(tmp, "int8.onnx")
        quantize_static(
            pre,
            q,
            Frames(info["input"], frames, a.batch),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"],
            nodes_to_quantize=nodes,
            calibrate_method=METHODS[a.method],
            # One batch at a time: the histogram calibrators otherwise keep every intermediate tensor of every
            # frame (a ViT-S/16 with two scales ran out of 23 GB at 32 frames).
            extra_options={"CalibStridedMinMax": 1, **({"CalibPercentile": 99.999} if a.method == "percentile" else {})},
        )
        out = onnx.load(q)
        del out.metadata_props[:]
        meta["s2.quantization"] = json.dumps(
            {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ", "weights": "int8 per-channel", "activations": "uint8",
             "calibration": a.method, "frames": int(frames.shape[0]), "products": a.products, "nodes": len(nodes)}
        )
        for k, v in meta.items():
            e = out.metadata_props.add()
            e.key, e.value = k, v
        tmp_out = os.path.join(tmp, "out.onnx")
        onnx.save(out, tmp_out)
        os.replace(tmp_out, a.out)
    print(f"wrote {a.out}: {len(nodes)} backbone {'weight ' if a.products == 'weights' else ''}products quantized (QDQ, int8 per-channel weights, uint8 activations, {a.method} calibration on {frames.shape[0]} frames)")


if __name__ == "__main__":
    main()
