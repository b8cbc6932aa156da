#!/usr/bin/env python3
"""INT8 quantization of a compiled S² model (s2-policy compile) with onnxruntime's own tools, behind an accuracy gate.

Recipe (--mode static, the default): onnxruntime.quantization.quant_pre_process (shape inference), then
quantize_static in QDQ format with per-channel INT8 weights and UINT8 activations, calibrated on base images
N x C x H x W (.npy, normalised as the model expects: the frames the node feeds it). --mode dynamic: quantize_dynamic,
per-channel INT8 weights of MatMul/Gemm and UINT8 activations whose range is taken per run (no calibration;
onnxruntime fuses each product into DynamicQuantizeMatMul, which ran faster on CPU for a ViT-Tiny). Only the
backbone's weight products are quantized: Conv (static only) and MatMul/Gemm nodes inside the inlined backbone whose
second input is a constant. The S² resampling products
(resize, pooling), LayerNorm, Softmax and GELU stay float32, and so do attention's activation x activation
products unless --products all.

The gate: on held-out frames (--frames; by default rendered from the built-in simulation by `s2-policy sim frames`,
apart from the calibration frames) the S² features of the INT8 model are compared with the fp32 compiled model's,
token by token (cosine over channels; for bchw outputs a token is one grid position): the --percentile-th percentile
of the token cosines (default the 1st) must be at least --min-cosine (default 0.99). When all weight products
quantized miss it, the search measures each product's sensitivity (that product alone quantized, on a few
calibration frames) and returns the most sensitive ones to float32 (quantize_static's nodes_to_exclude), one at a
time, until the gate holds on the held-out frames. If it never holds (or with --no-search), nothing is written: one
line on stderr names the figures, exit status 1. The written model carries the compiled model's metadata plus
s2.quantization (JSON: method, calibration, quantized and excluded nodes, gate, measured cosines, relative error,
frame count), which s2-policy reads and prints.

    python3 scripts/quantize_int8.py --model s2_vits16.onnx --out s2_vits16.int8.onnx
    python3 scripts/quantize_int8.py --model s2_vits16.onnx --calibration calib.npy --frames heldout.npy --out s2_vits16.int8.onnx

Frames without --calibration / --frames are rendered by `node bin/s2-policy.js sim frames` of this checkout (needs
`npm run build`), with the normalisation of the model's s2.mean/s2.std (imagenet, clip or none); any N x C x H x W
float32 .npy of real frames, preprocessed as the node does, is better. Errors: one line, exit 2; gate refused: exit 1.
Needs: pip install onnxruntime onnx numpy.
"""
import argparse
import contextlib
import inspect
import json
import logging
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
# Seeds of rendered frames: calibration and held-out frames come from different episodes.
CALIB_SEED = 1000
HELDOUT_SEED = 5000
METHOD_TEXT = {
    "static": "onnxruntime.quantization.quantize_static, QDQ, int8 per-channel weights, uint8 activations",
    "dynamic": "onnxruntime.quantization.quantize_dynamic, int8 per-channel weights, uint8 activations ranged per run",
}


class Refused(Exception):
    """The gate is not met: one line, exit 1."""


def fail(msg, status=2):
    print(f"quantize_int8: {msg}", file=sys.stderr)
    sys.exit(status)


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


def backbone_nodes(model, products, ops=("Conv", "MatMul", "Gemm")):
    """Names of the inlined backbone's `ops` nodes: those with a constant weight input, or with products 'all' also
    activation x activation products (attention's QK^T and AV)."""
    inits = {i.name for i in model.graph.initializer}
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    names = []
    for n in model.graph.node:
        if not n.name.startswith("backbone@") or n.op_type not in ops or len(n.input) < 2:
            continue
        if products == "all" or n.input[1] in inits or n.input[1] in consts:
            names.append(n.name)
    return names


def token_cosines(a, b, layout):
    """Cosine over channels of each token of two feature batches (bnc: B x N x C; bchw: one token per grid position)."""
    if layout == "bchw":
        a = np.moveaxis(a, 1, -1)
        b = np.moveaxis(b, 1, -1)
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    ab = (a * b).sum(1)
    na = np.sqrt((a * a).sum(1))
    nb = np.sqrt((b * b).sum(1))
    both_zero = (na == 0) & (nb == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(both_zero, 1.0, ab / (na * nb))
    return np.nan_to_num(cos, nan=0.0)


class Gate:
    """Features of the fp32 model on the held-out frames, computed once; a candidate is measured against them."""

    def __init__(self, fp32_path, info, frames, min_cosine, percentile, threads):
        self.info = info
        self.frames = frames
        self.min_cosine = min_cosine
        self.percentile = percentile
        self.threads = threads
        self.reference = self.run(fp32_path, frames)

    def session(self, path):
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def run(self, path, frames):
        s = self.session(path)
        # One frame per call: the node runs one base-image group at a time, and memory stays bounded.
        return np.concatenate([s.run([self.info["output"]], {self.info["input"]: frames[i : i + 1]})[0] for i in range(len(frames))])

    def measure(self, path, count=None):
        n = len(self.frames) if count is None else min(count, len(self.frames))
        got = self.run(path, self.frames[:n])
        ref = self.reference[:n]
        cos = token_cosines(ref, got, self.info["outputShape"])
        rel = float(np.linalg.norm((got - ref).astype(np.float64)) / max(np.linalg.norm(ref.astype(np.float64)), 1e-30))
        return {
            "frames": int(n),
            "tokens": int(cos.size),
            "mean_cosine": float(cos.mean()),
            "p_cosine": float(np.percentile(cos, self.percentile)),
            "rel_error": rel,
        }

    def passes(self, m):
        return m["p_cosine"] >= self.min_cosine

    def text(self, m):
        return (f"p{self.percentile:g} {m['p_cosine']:.4f} (gate ≥ {self.min_cosine:g}), mean {m['mean_cosine']:.4f}, "
                f"rel. error {m['rel_error']:.4f} over {m['tokens']} tokens of {m['frames']} held-out frames")


def load_frames(path, flag, want):
    if not os.path.isfile(path):
        fail(f"{path}: no such file ({flag}; `s2-policy sim frames --out frames.npy --size H` renders frames)")
    try:
        frames = np.load(path)
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        fail(f"{path}: not a .npy file ({flag}; {str(e).splitlines()[0]})")
    if frames.dtype != np.float32 or frames.ndim != 4 or list(frames.shape[1:]) != want or frames.shape[0] < 1:
        fail(f"{path}: is {frames.dtype} {tuple(frames.shape)}, the model takes float32 N x {want[0]} x {want[1]} x {want[2]} ({flag})")
    return frames


def normalization_of(meta, model_path):
    """The sim frames preset matching the model's s2.mean/s2.std, for rendering frames as the node would feed it."""
    try:
        mean = tuple(float(v) for v in meta["s2.mean"].split(","))
        std = tuple(float(v) for v in meta["s2.std"].split(","))
    except (KeyError, ValueError):
        return None
    for name, (m, s) in NORMALIZATIONS.items():
        if np.allclose(mean, m, atol=1e-4) and np.allclose(std, s, atol=1e-4):
            return name
    return None


def render_frames(out, count, seed, size, normalization, flag):
    """Frames from the built-in simulation through the node's own ingestion (`s2-policy sim frames`)."""
    h, w = size
    args = ["sim", "frames", "--out", out, "--count", str(count), "--size", f"{h}x{w}", "--seed", str(seed), "--normalization", normalization, "--force"]
    cli = os.path.join(ROOT, "bin", "s2-policy.js")
    by_hand = f"npx s2-policy {' '.join(a for a in args if a != '--force').replace(out, 'frames.npy')} and pass {flag} frames.npy"
    try:
        r = subprocess.run(["node", cli, *args], capture_output=True, text=True)
    except OSError as e:
        fail(f"cannot render {flag} frames with node ({e.strerror}): run `{by_hand}`")
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["no message"])[-1]
        fail(f"cannot render {flag} frames ({why}): run `npm run build`, or `{by_hand}`")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="compiled S² model (fp32)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--calibration", help="float32 .npy of calibration base images N x C x H x W (default: 32 rendered simulation frames)")
    ap.add_argument("--frames", help="float32 .npy of held-out base images for the gate (default: 12 rendered simulation frames)")
    ap.add_argument("--min-cosine", type=float, default=0.99, help="gate: lowest allowed percentile token cosine (default 0.99)")
    ap.add_argument("--percentile", type=float, default=1.0, help="gate: percentile of the token cosines held to --min-cosine (default 1)")
    ap.add_argument("--no-search", action="store_true", help="quantize every weight product or refuse; no search of products to keep in float32")
    ap.add_argument("--sensitivity-frames", type=int, default=4, help="calibration frames each product's sensitivity is measured on (default 4)")
    ap.add_argument("--mode", choices=["static", "dynamic"], default="static", help="static (calibrated QDQ, default) or dynamic (activation ranges per run)")
    ap.add_argument("--method", choices=sorted(METHODS), default="percentile", help="activation range calibration (default percentile 99.999)")
    ap.add_argument("--batch", type=int, default=2, help="frames per calibration run")
    ap.add_argument("--products", choices=["weights", "all"], default="weights", help="quantize weight products only (default) or also attention's activation products")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the gate's runs (default 1)")
    a = ap.parse_args()

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's advice lines; the result is printed below
    ort.set_default_logger_severity(3)
    if not 0 < a.min_cosine <= 1:
        fail(f"--min-cosine {a.min_cosine:g}: expected a cosine in (0, 1]")
    if not 0 <= a.percentile <= 100:
        fail(f"--percentile {a.percentile:g}: expected 0 to 100")
    if not os.path.isfile(a.model):
        fail(f"{a.model}: no such file (--model)")
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        fail(f"--out {a.out}: folder {out_dir} does not exist")
    if os.path.abspath(a.out) == os.path.abspath(a.model):
        fail(f"--out {a.out}: is the input model; write the INT8 model to another file")
    try:
        model = onnx.load(a.model)
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        fail(f"{a.model}: not a readable ONNX model ({str(e).splitlines()[0]})")
    meta = {p.key: p.value for p in model.metadata_props}
    if "s2.compiled" not in meta:
        fail(f"{a.model}: not a compiled S² model (run s2-policy compile first)")
    info = json.loads(meta["s2.compiled"])
    want = [info["channels"], *info["inputSize"]]
    # Dynamic quantization of Conv (ConvInteger) is slower than float32 on CPU: MatMul/Gemm only.
    ops = ("Conv", "MatMul", "Gemm") if a.mode == "static" else ("MatMul", "Gemm")
    nodes = backbone_nodes(model, a.products, ops)
    if not nodes:
        fail(f"{a.model}: no {'/'.join(ops)} weights inside the backbone to quantize")
    del model

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".quantize_int8.") as tmp:
        norm = None
        if a.calibration is None or a.frames is None:
            norm = normalization_of(meta, a.model)
            if norm is None:
                missing = "--calibration and --frames" if a.calibration is None and a.frames is None else ("--calibration" if a.calibration is None else "--frames")
                fail(f"{a.model}: its s2.mean/s2.std match no normalisation sim frames renders (imagenet, clip, none): pass {missing}")
        calib_path = a.calibration
        if calib_path is None:
            calib_path = os.path.join(tmp, "calibration.npy")
            render_frames(calib_path, 32, CALIB_SEED, info["inputSize"], norm, "--calibration")
        calib = load_frames(calib_path, "--calibration", want)
        held_path = a.frames
        if held_path is None:
            held_path = os.path.join(tmp, "heldout.npy")
            render_frames(held_path, 12, HELDOUT_SEED, info["inputSize"], norm, "--frames")
        held = load_frames(held_path, "--frames", want)
        source = "given" if a.frames else f"rendered from the simulation, seed {HELDOUT_SEED}"

        pre = os.path.join(tmp, "pre.onnx")
        # Shape inference only: onnxruntime's graph optimisation would rename the nodes chosen above.
        quant_pre_process(a.model, pre, skip_optimization=True, skip_onnx_shape=False, skip_symbolic_shape=False)
        cache = os.path.join(tmp, "ranges.json")
        cached = "calibration_cache_path" in inspect.signature(quantize_static).parameters
        counter = [0]

        def quantize(exclude):
            """The model with every chosen product quantized but `exclude`; activation ranges calibrated once and reused."""
            counter[0] += 1
            q = os.path.join(tmp, f"q{counter[0]}.onnx")
            # The calibrators print progress to stdout; this tool prints its own lines.
            chosen = [n for n in nodes if n not in exclude]
            if a.mode == "dynamic":
                quantize_dynamic(pre, q, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=list(ops), nodes_to_quantize=chosen,
                                 extra_options={"MatMulConstBOnly": a.products == "weights"})
                return q
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                quantize_static(
                    pre,
                    q,
                    Frames(info["input"], calib, a.batch),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                    nodes_to_quantize=chosen,
                    calibrate_method=METHODS[a.method],
                    # One batch at a time: the histogram calibrators otherwise keep every intermediate tensor of every
                    # frame (a ViT-S/16 with two scales ran out of 23 GB at 32 frames).
                    extra_options={"CalibStridedMinMax": 1, **({"CalibPercentile": 99.999} if a.method == "percentile" else {})},
                    **({"calibration_cache_path": cache} if cached else {}),
                )
            return q

        gate = Gate(a.model, info, held, a.min_cosine, a.percentile, a.threads)
        what = f"{len(nodes)} backbone {'weight ' if a.products == 'weights' else ''}products"
        excluded = []
        q = quantize(excluded)
        m = gate.measure(q)
        print(f"all {what} quantized: {gate.text(m)}", flush=True)
        search = "not needed"
        if not gate.passes(m):
            if a.no_search:
                fail(f"refused, nothing written: INT8 token cosine to fp32 {gate.text(m)}, all {what} quantized (--no-search)", 1)
            search = "sensitivity"
            # Each product alone quantized, measured on a few calibration frames (the held-out frames judge the result).
            probe = Gate(pre, info, calib[: max(1, a.sensitivity_frames)], a.min_cosine, a.percentile, a.threads)
            sens = []
            for name in nodes:
                alone = probe.measure(quantize([n for n in nodes if n != name]))
                sens.append((1 - alone["p_cosine"], alone["rel_error"], name))
            ranked = [name for _, _, name in sorted(sens, key=lambda s: (-s[0], -s[1]))]
            top = ", ".join(f"{name} {1 - d:.4f}" for d, _, name in sorted(sens, key=lambda s: (-s[0], -s[1]))[:3])
            print(f"sensitivity of each product alone (p{a.percentile:g} cosine on {probe.frames.shape[0]} calibration frames), most sensitive: {top}", flush=True)
            best = (m, [])
            for name in ranked[:-1]:  # at least one product stays quantized
                excluded.append(name)
                q = quantize(excluded)
                m = gate.measure(q)
                print(f"  {name} kept in float32 ({len(excluded)} of {len(nodes)}): {gate.text(m)}", flush=True)
                if m["p_cosine"] > best[0]["p_cosine"]:
                    best = (m, list(excluded))
                if gate.passes(m):
                    break
            if not gate.passes(m):
                bm, bx = best
                fail(f"refused, nothing written: no choice of products kept in float32 meets the gate; best {gate.text(bm)} with {len(bx)} of {len(nodes)} kept in float32", 1)

        out = onnx.load(q)
        del out.metadata_props[:]
        meta["s2.quantization"] = json.dumps({
            "mode": a.mode,
            "method": METHOD_TEXT[a.mode],
            "calibration": {"method": a.method, "frames": int(calib.shape[0])} if a.mode == "static" else {"method": "none", "frames": 0},
            "products": a.products,
            "quantized": len(nodes) - len(excluded),
            "excluded": excluded,
            "search": search,
            "gate": {"metric": "token cosine to fp32", "percentile": a.percentile, "min_cosine": a.min_cosine},
            "measured": {**m, "source": source},
        })
        for k, v in meta.items():
            e = out.metadata_props.add()
            e.key, e.value = k, v
        tmp_out = os.path.join(tmp, "out.onnx")
        onnx.save(out, tmp_out)
        os.chmod(tmp_out, 0o644)
        os.replace(tmp_out, a.out)
    kept = f", {len(excluded)} kept in float32 ({', '.join(excluded)})" if excluded else ""
    how = (f"QDQ, int8 per-channel weights, uint8 activations, {a.method} calibration on {calib.shape[0]} frames" if a.mode == "static"
           else "dynamic, int8 per-channel weights, uint8 activations ranged per run")
    print(f"wrote {a.out}: {len(nodes) - len(excluded)} of {what} quantized{kept} ({how}); token cosine to fp32 {gate.text(m)}")


if __name__ == "__main__":
    main()
