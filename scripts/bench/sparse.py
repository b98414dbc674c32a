#!/usr/bin/env python3
"""Sparse products against the dense GEMM: one `matmul(x[M, K], W[K, N])` per
point, W random and pruned by magnitude to a sparsity in a pattern, timed with
`smelt bench` (the e-graph chooses dense or sparse) next to the same product
with W dense.

    python scripts/bench/sparse.py [--smelt target/release/smelt] [--backend llvm]
        [--shapes 128x768x3072,1x768x768] [--sparsity 0,0.5,0.7,0.8,0.9,0.95]
        [--patterns unstructured,block:16x1,block:4x4] [--json OUT]

Patterns name blocks as `smelt prune` does: R×C of the [out, in] weight (R
output features × C inputs), so `16x1` is 16 consecutive columns of W[K, N] at
one row. Prints one row per point: dense ms, chosen ms, speed-up, and which
form the optimizer kept (`--emit`-free: read from the optimized graph's ops).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import save_file


def prune(w, sparsity, pattern):
    """W [K, N] with `sparsity` of its entries zero, by magnitude, in `pattern`."""
    if sparsity <= 0:
        return w
    k, n = w.shape
    if pattern == "unstructured":
        t = np.quantile(np.abs(w), sparsity)
        return np.where(np.abs(w) > t, w, 0).astype(np.float32)
    m = re.fullmatch(r"block:(\d+)x(\d+)", pattern)
    if not m:
        sys.exit(f"unknown pattern {pattern}")
    r, c = int(m.group(1)), int(m.group(2))  # r along N (outputs), c along K
    score = np.abs(w).reshape(k // c, c, n // r, r).mean(axis=(1, 3))
    t = np.quantile(score, sparsity)
    keep = np.repeat(np.repeat(score > t, c, axis=0), r, axis=1)
    return np.where(keep, w, 0).astype(np.float32)


def bench(smelt, model, backend, threads, runs):
    out = subprocess.run(
        [smelt, "bench", model, "--backend", backend, "--threads", str(threads), "--runs", str(runs), "--json"],
        capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"smelt bench {model} failed:\n{out.stderr}")
    return json.loads(out.stdout)["median_ms"]


def chosen(smelt, model):
    out = subprocess.run([smelt, "opt", model, "-O2"], capture_output=True, text=True)
    if out.returncode != 0:
        return "?"
    m = re.search(r"sparse_matmul\([^)]*\)\s*(\{[^}]*\})?", out.stdout)
    if not m:
        return "dense"
    attrs = m.group(1) or ""
    b = re.search(r"block = \[(\d+), (\d+)\]", attrs)
    return f"bsr {b.group(1)}x{b.group(2)}" if b else "csr"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smelt", default="target/release/smelt")
    ap.add_argument("--backend", default="llvm")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--shapes", default="128x768x3072,128x3072x768,1x768x768")
    ap.add_argument("--sparsity", default="0,0.5,0.7,0.8,0.9,0.95")
    ap.add_argument("--patterns", default="unstructured,block:16x1,block:4x4")
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for shape in a.shapes.split(","):
            m, k, n = (int(s) for s in shape.split("x"))
            w0 = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
            src = f"graph ffn(x: f32[{m}, {k}]) -> (y) {{\n  w = param f32[{k}, {n}]\n  y = matmul(x, w)\n}}\n"
            dense = os.path.join(d, "dense.smelt")
            open(dense, "w").write(src)
            save_file({"w": w0}, os.path.join(d, "dense.safetensors"))
            dense_ms = bench(a.smelt, dense, a.backend, a.threads, a.runs)
            for pattern in a.patterns.split(","):
                for s in (float(x) for x in a.sparsity.split(",")):
                    w = prune(w0, s, pattern)
                    p = os.path.join(d, "sparse.smelt")
                    open(p, "w").write(src)
                    save_file({"w": w}, os.path.join(d, "sparse.safetensors"))
                    ms = bench(a.smelt, p, a.backend, a.threads, a.runs)
                    form = chosen(a.smelt, p)
                    real = float((w == 0).mean())
                    row = dict(shape=shape, pattern=pattern, sparsity=real, dense_ms=dense_ms, ms=ms, speedup=dense_ms / ms, form=form)
                    rows.append(row)
                    print(f"{shape:>16} {pattern:>14} {real:5.2f}  dense {dense_ms:8.3f} ms  chosen {ms:8.3f} ms  {dense_ms / ms:5.2f}x  {form}", flush=True)
    if a.json:
        json.dump(rows, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
