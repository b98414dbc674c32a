#!/usr/bin/env python3
"""Mixture of experts: smelt's strategies (forced and chosen) against ONNX Runtime's
com.microsoft MoE op, one model, every token count, 1 thread.

The model is one ORT `MoE` node (top-k routing on given router logits, relu
experts, normalized weights; random weights as torch.nn.Linear lays them out) with
a symbolic token count T. For each T: ORT's median, then `smelt bench` of the same
ONNX file with `--schedule moe=dense|gather|loop` and with the default (the
strategy the cost model chooses, `auto`); the choice is read from `smelt compile
--emit kernel` (the kernels each strategy emits differ). smelt's output at the
first T is checked against ORT's (max |Δ| / max |ORT|). Strategies predicted to
take over `--skip-over` seconds a run (`dense` with E=64 at thousands of tokens)
are skipped and say so.

Usage: python scripts/bench/moe.py [--experts 8] [--k 2] [--d-model 1024] [--d-ff 2816]
       [--tokens 1,4,16,64,256,1024,4096] [--backend llvm] [--smelt target/release/smelt]
Needs onnx, onnxruntime, safetensors, numpy (e.g. target/models-venv).
"""
import argparse
import os
import re
import subprocess
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file, save_file
from timing import cpu_model, ort_time, smelt_time

STRATEGIES = ["dense", "gather", "loop"]


def make_model(path, e, k, d, h, seed=0):
    rng = np.random.default_rng(seed)
    fc1 = (rng.standard_normal((e, h, d), dtype=np.float32) / np.sqrt(d)).astype(np.float32)
    fc2 = (rng.standard_normal((e, d, h), dtype=np.float32) / np.sqrt(h)).astype(np.float32)
    node = helper.make_node("MoE", ["x", "logits", "fc1", "", "fc2"], ["y"], domain="com.microsoft", k=k,
                            activation_type="relu", normalize_routing_weights=1, name="moe")
    g = helper.make_graph([node], "moe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", d]),
                                         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["T", e])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", d])],
                          [numpy_helper.from_array(fc1, "fc1"), numpy_helper.from_array(fc2, "fc2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    onnx.save(m, path, save_as_external_data=fc1.nbytes + fc2.nbytes > 1 << 30, location="moe.weights")


def chosen(smelt, path, backend, t):
    """The strategy smelt's default plan takes at T = t, from its kernels' names."""
    r = subprocess.run([smelt, "compile", path, "--backend", backend, "--emit", "kernel", "--dim", f"T={t}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"? ({r.stderr.strip()[:80]})"
    if re.search(r"_dense_pairs\b", r.stdout):
        return "dense"
    if re.search(r"_down_gemm\b", r.stdout):
        return "gather"
    if re.search(r"_down\b", r.stdout):
        return "loop"
    return "?"


def predicted(e, k, d, h, t, s):
    """Seconds per run, roughly (for skipping): GEMM FLOPs at 50 GFLOP/s."""
    rows = {"dense": t * e, "gather": t * k, "loop": t * k * 4}[s]
    return rows * 4 * d * h / 50e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=1024)
    ap.add_argument("--d-ff", type=int, default=2816)
    ap.add_argument("--tokens", default="1,4,16,64,256,1024,4096")
    ap.add_argument("--backend", default="llvm")
    ap.add_argument("--smelt", default="target/release/smelt")
    ap.add_argument("--skip-over", type=float, default=20.0)
    a = ap.parse_args()
    e, k, d, h = a.experts, a.k, a.d_model, a.d_ff
    tokens = [int(t) for t in a.tokens.split(",")]
    print(f"CPU: {cpu_model()}, 1 thread, E={e}, k={k}, d_model {d}, d_ff {h}, relu experts, fp32; "
          f"onnxruntime {ort.__version__}; smelt --backend {a.backend}; median ms")
    print("| tokens | ORT MoE | smelt dense | smelt gather | smelt loop | smelt auto | auto chose | auto / best forced | auto / ORT |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as dir:
        path = os.path.join(dir, "moe.onnx")
        make_model(path, e, k, d, h)
        rng = np.random.default_rng(1)
        for i, t in enumerate(tokens):
            x = rng.standard_normal((t, d), dtype=np.float32)
            logits = rng.standard_normal((t, e), dtype=np.float32)
            slow = t * k * 4 * d * h > 20e9
            runs, warmup = (3, 1) if slow else (20, 3)
            ort_ms, want = ort_time(path, {"x": x, "logits": logits}, runs, warmup=warmup)
            if i == 0:
                inp, out = os.path.join(dir, "in.safetensors"), os.path.join(dir, "out.safetensors")
                save_file({"x": x, "logits": logits}, inp)
                r = subprocess.run([a.smelt, "run", path, "--backend", a.backend, "--inputs", inp, "-o", out], capture_output=True, text=True)
                if r.returncode != 0:
                    raise SystemExit(f"smelt run failed: {r.stderr}")
                got = load_file(out)["y"]
                err = float(np.abs(got - want).max() / np.abs(want).max())
                print(f"(T={t}: smelt's output vs ORT's: max|Δ|/max|ORT| = {err:.1e})")
            times = {}
            for s in STRATEGIES + ["auto"]:
                if s != "auto" and predicted(e, k, d, h, t, s) > a.skip_over:
                    times[s] = None
                    continue
                sched = [] if s == "auto" else ["--schedule", f"moe={s}"]
                times[s] = smelt_time(a.smelt, path, a.backend, runs, "--warmup", str(warmup), "--dim", f"T={t}", *sched)
            pick = chosen(a.smelt, path, a.backend, t)
            forced = [v for s, v in times.items() if s != "auto" and v is not None]
            best = min(forced) if forced else None
            fmt = lambda v: "skipped" if v is None else f"{v:.3g}"
            ratio = lambda x, y: "-" if x is None or y is None else f"{x / y:.2f}"
            print(f"| {t} | {ort_ms:.3g} | {fmt(times['dense'])} | {fmt(times['gather'])} | {fmt(times['loop'])} | "
                  f"{fmt(times['auto'])} | {pick} | {ratio(times['auto'], best)} | {ratio(times['auto'], ort_ms)} |", flush=True)


if __name__ == "__main__":
    main()
