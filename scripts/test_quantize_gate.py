#!/usr/bin/env python3
"""Checks the accuracy gate and the search of scripts/quantize_int8.py on the tiny ViTs of scripts/int8_test_models.py.

    python3 scripts/test_quantize_gate.py

Prints PASS/FAIL per check and exits 1 if any failed. Needs onnx, onnxruntime, numpy, and node with this checkout
built (`npm run build`: the models are compiled and the frames rendered by s2-policy). Not part of `npm test`.
"""
import json
import os
import subprocess
import sys
import tempfile

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from int8_test_models import build_vit, compile_s2  # noqa: E402

QUANTIZE = os.path.join(HERE, "quantize_int8.py")
CLI = os.path.join(ROOT, "bin", "s2-policy.js")
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}{'' if ok else f': {detail}'}", flush=True)


def quantize(model, out, *flags):
    return subprocess.run([sys.executable, QUANTIZE, "--model", model, "--out", out, *flags], capture_output=True, text=True)


def quantization_of(path):
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    return json.loads(meta["s2.quantization"]), meta


def leftovers(folder):
    return [f for f in os.listdir(folder) if f.startswith(".quantize_int8.")]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for name, outlier in (("outlier", True), ("benign", False)):
            bb = os.path.join(tmp, f"{name}.onnx")
            onnx.save(build_vit(outlier), bb)
            models[name] = os.path.join(tmp, f"{name}_s2.onnx")
            compile_s2(bb, models[name])
        frames = {}
        for kind, seed, count in (("calibration", 1, 24), ("frames", 2, 10)):
            frames[kind] = os.path.join(tmp, f"{kind}.npy")
            r = subprocess.run(["node", CLI, "sim", "frames", "--out", frames[kind], "--count", str(count), "--size", "32", "--seed", str(seed)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"test_quantize_gate: s2-policy sim frames failed: {r.stderr.strip()} (run npm run build)")
        given = ["--calibration", frames["calibration"], "--frames", frames["frames"]]

        # 1. The outlier model with every weight product quantized misses the gate: refused, one line with the figures.
        out = os.path.join(tmp, "refused.int8.onnx")
        r = quantize(models["outlier"], out, "--no-search", *given)
        lines = r.stderr.strip().splitlines()
        check("outlier model, search disabled: non-zero exit", r.returncode == 1, f"exit {r.returncode}, stderr {r.stderr!r}")
        check("outlier model, search disabled: one-line error naming the figures",
              len(lines) == 1 and "refused" in lines[0] and "p1 0." in lines[0] and "mean 0." in lines[0] and "gate ≥ 0.99" in lines[0], repr(r.stderr))
        p1 = float(lines[0].split("p1 ")[1].split(" ")[0]) if lines and "p1 " in lines[0] else 1.0
        check("outlier model, search disabled: p1 cosine really below 0.99", p1 < 0.99, f"p1 {p1}")
        check("outlier model, search disabled: nothing written", not os.path.exists(out) and not leftovers(tmp), str(os.listdir(tmp)))

        # 2. With the search (the default) the product after the outlier channel stays float32 and the gate holds.
        out = os.path.join(tmp, "outlier.int8.onnx")
        r = quantize(models["outlier"], out, *given)
        check("outlier model with search: exit 0", r.returncode == 0, r.stderr.strip())
        if r.returncode == 0:
            q, meta = quantization_of(out)
            nodes = q["quantized"] + len(q["excluded"])
            check("outlier model with search: some products kept in float32, the outlier's among them",
                  0 < len(q["excluded"]) < nodes and any(n.endswith("block0/fc2/matmul") for n in q["excluded"]), json.dumps(q))
            check("outlier model with search: metadata records the gate and the figures",
                  q["gate"]["min_cosine"] == 0.99 and q["gate"]["percentile"] == 1 and q["measured"]["p_cosine"] >= 0.99
                  and 0 < q["measured"]["mean_cosine"] <= 1 and q["measured"]["frames"] == 10 and q["search"] == "sensitivity"
                  and "s2.compiled" in meta, json.dumps(q))
            ops = {n.op_type for n in onnx.load(out).graph.node}
            check("outlier model with search: a QDQ model", {"QuantizeLinear", "DequantizeLinear"} <= ops, str(ops))

        # 3. The benign model passes with every product quantized (frames rendered by the tool itself).
        out = os.path.join(tmp, "benign.int8.onnx")
        r = quantize(models["benign"], out)
        check("benign model: exit 0", r.returncode == 0, r.stderr.strip())
        if r.returncode == 0:
            q, _ = quantization_of(out)
            check("benign model: all products quantized, no search", q["excluded"] == [] and q["quantized"] == 13 and q["search"] == "not needed" and q["mode"] == "static"
                  and q["measured"]["p_cosine"] >= 0.99 and q["measured"]["frames"] == 12 and q["calibration"]["frames"] == 32, json.dumps(q))

        # 4. A gate nothing can meet: the search runs out and refuses, writing nothing.
        out = os.path.join(tmp, "never.int8.onnx")
        r = quantize(models["outlier"], out, "--min-cosine", "0.999999", "--percentile", "0", *given)
        lines = r.stderr.strip().splitlines()
        check("unreachable gate: refused after the search, one line, nothing written",
              r.returncode == 1 and len(lines) == 1 and "no choice of products" in lines[0] and "p0 " in lines[0]
              and not os.path.exists(out) and not leftovers(tmp), f"exit {r.returncode}, {r.stderr!r}")

        # 5. Dynamic quantization (activation ranges per run) meets the same outlier and the same repair.
        out = os.path.join(tmp, "outlier.dynamic.onnx")
        r = quantize(models["outlier"], out, "--mode", "dynamic", *given)
        ok = r.returncode == 0
        q = quantization_of(out)[0] if ok else {}
        ops = {n.op_type for n in onnx.load(out).graph.node} if ok else set()
        check("outlier model, dynamic mode: repaired by keeping block0/fc2 in float32, recorded as dynamic",
              ok and q["mode"] == "dynamic" and any(n.endswith("block0/fc2/matmul") for n in q["excluded"]) and q["measured"]["p_cosine"] >= 0.99
              and q["calibration"]["frames"] == 0 and ("DynamicQuantizeLinear" in ops or "MatMulInteger" in ops), f"{r.stderr.strip()} {json.dumps(q)} {ops}")
        out = os.path.join(tmp, "outlier.dynamic.refused.onnx")
        r = quantize(models["outlier"], out, "--mode", "dynamic", "--no-search", *given)
        check("outlier model, dynamic mode, search disabled: refused, nothing written",
              r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and not os.path.exists(out), repr(r.stderr))

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
