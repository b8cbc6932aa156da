#!/usr/bin/env python3
"""Tiny ViT-like backbones for testing the INT8 accuracy gate, one of them with an outlier channel; writes the fixtures.

Both are a 32x32 ViT (patch 8, CLS + 4x4 tokens of 32 channels, two pre-norm blocks of single-head attention and a
GELU MLP), built with onnx.helper from seeded random weights (no PyTorch). In the outlier model one hidden channel of
the first block's MLP carries a constant activation of 400 (as trained ViTs grow a few channels of huge activations)
whose weight into the next product is tiny: harmless in float32, but the per-tensor UINT8 range of that product's
input becomes 0..400, which rounds every other hidden value away. Quantizing all weight products therefore fails the
gate; keeping that one product (backbone@…/fc2 of block 0) in float32 repairs it.

    python3 scripts/int8_test_models.py --out-dir test/fixtures/int8

writes there the outlier backbone, vit_outlier.onnx, and (through `node bin/s2-policy.js compile --img-sizes 32,64`
and scripts/quantize_int8.py with its defaults; needs `npm run build` and pip install onnx onnxruntime numpy) its
compiled S² model quantized by the search, outlier_s2.int8.onnx, which the TypeScript tests read for its
s2.quantization metadata and check against the fp32 model they compile themselves. scripts/test_quantize_gate.py imports `build_vit`.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZE, PATCH, DIM, HIDDEN, DEPTH = 32, 8, 32, 64, 2
GRID = SIZE // PATCH
OUTLIER = 400.0


def build_vit(outlier, seed=0):
    """The tiny ViT as an ONNX ModelProto (opset 17, dynamic batch), with s2.* metadata."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def w(name, *shape, scale=None):
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else shape[0]
        a = rng.standard_normal(shape).astype(np.float32) * (scale if scale is not None else fan_in**-0.5)
        inits.append(numpy_helper.from_array(a, name))
        return name

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def layer_norm(x, name):
        g = const(f"{name}.weight", np.ones(DIM, np.float32))
        b = const(f"{name}.bias", np.zeros(DIM, np.float32))
        return node("LayerNormalization", [x, g, b], name, axis=-1, epsilon=1e-6)

    def linear(x, name, fan_in, fan_out, weight=None, bias=None):
        wn = const(f"{name}.weight", weight) if weight is not None else w(f"{name}.weight", fan_in, fan_out)
        bn = const(f"{name}.bias", bias if bias is not None else np.zeros(fan_out, np.float32))
        return node("Add", [node("MatMul", [x, wn], f"{name}/matmul"), bn], f"{name}/out")

    x = "pixel_values"
    t = node("Conv", [x, w("patch.weight", DIM, 3, PATCH, PATCH, scale=(3 * PATCH * PATCH) ** -0.5), const("patch.bias", np.zeros(DIM, np.float32))],
             "patch", kernel_shape=[PATCH, PATCH], strides=[PATCH, PATCH])
    t = node("Reshape", [t, const("grid_shape", np.array([0, DIM, GRID * GRID], np.int64))], "flat")
    t = node("Transpose", [t], "tokens", perm=[0, 2, 1])
    batch = node("Slice", [node("Shape", [x], "in_shape"), const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64))], "batch")
    cls_shape = node("Concat", [batch, const("cls_rest", np.array([1, DIM], np.int64))], "cls_shape", axis=0)
    cls = node("Expand", [w("cls", 1, 1, DIM, scale=0.02), cls_shape], "cls_b")
    t = node("Concat", [cls, t], "with_cls", axis=1)
    t = node("Add", [t, w("pos", 1, 1 + GRID * GRID, DIM, scale=0.1)], "embedded")
    for i in range(DEPTH):
        p = f"block{i}"
        h = layer_norm(t, f"{p}/norm1")
        q = linear(h, f"{p}/q", DIM, DIM)
        k = linear(h, f"{p}/k", DIM, DIM)
        v = linear(h, f"{p}/v", DIM, DIM)
        s = node("Mul", [node("MatMul", [q, node("Transpose", [k], f"{p}/kT", perm=[0, 2, 1])], f"{p}/scores"), const(f"{p}/scale", np.float32(DIM**-0.5))], f"{p}/scaled")
        a = node("MatMul", [node("Softmax", [s], f"{p}/attn", axis=-1), v], f"{p}/mixed")
        t = node("Add", [t, linear(a, f"{p}/proj", DIM, DIM)], f"{p}/res1")
        h = layer_norm(t, f"{p}/norm2")
        w1 = rng.standard_normal((DIM, HIDDEN)).astype(np.float32) * DIM**-0.5
        b1 = np.zeros(HIDDEN, np.float32)
        w2 = rng.standard_normal((HIDDEN, DIM)).astype(np.float32) * HIDDEN**-0.5
        if outlier and i == 0:
            # One "massive activation": a constant hidden channel, nearly ignored by the next product.
            w1[:, 0] = 0
            b1[0] = OUTLIER
            w2[0, :] = rng.standard_normal(DIM).astype(np.float32) * 0.5 / OUTLIER
        f = linear(h, f"{p}/fc1", DIM, HIDDEN, w1, b1)
        # GELU (erf form; opset 17 has no Gelu operator).
        g = node("Mul", [node("Mul", [f, const(f"{p}/half", np.float32(0.5))], f"{p}/half_x"),
                         node("Add", [node("Erf", [node("Mul", [f, const(f"{p}/rsqrt2", np.float32(2**-0.5))], f"{p}/x_rsqrt2")], f"{p}/erf"),
                                      const(f"{p}/one_f", np.float32(1.0))], f"{p}/erf1")], f"{p}/gelu")
        t = node("Add", [t, linear(g, f"{p}/fc2", HIDDEN, DIM, w2)], f"{p}/res2")
    out = layer_norm(t, "features")
    graph = helper.make_graph(
        nodes,
        "tiny_vit_outlier" if outlier else "tiny_vit",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", 1 + GRID * GRID, DIM])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="s2_policy int8_test_models")
    model.ir_version = 8
    for k, v in {"s2.kind": "vit", "s2.image_size": str(SIZE), "s2.num_prefix_tokens": "1", "s2.mean": "0.485,0.456,0.406", "s2.std": "0.229,0.224,0.225"}.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    return model


def compile_s2(backbone, out, sizes="32,64"):
    """`s2-policy compile` of this checkout: the compiled S² model the INT8 tool takes."""
    r = subprocess.run(["node", os.path.join(ROOT, "bin", "s2-policy.js"), "compile", "--model", backbone, "--img-sizes", sizes, "--out", out, "--force"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"int8_test_models: s2-policy compile failed: {r.stderr.strip()} (run npm run build)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        bb = os.path.join(a.out_dir, "vit_outlier.onnx")
        onnx.save(build_vit(True), bb)
        s2 = os.path.join(tmp, "outlier_s2.onnx")
        compile_s2(bb, s2)
        out = os.path.join(a.out_dir, "outlier_s2.int8.onnx")
        r = subprocess.run([sys.executable, os.path.join(HERE, "quantize_int8.py"), "--model", s2, "--out", out], text=True)
        if r.returncode != 0:
            sys.exit(r.returncode)


if __name__ == "__main__":
    main()
