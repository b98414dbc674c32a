#!/usr/bin/env python3
"""Sparse products against the dense GEMM, and the optimizer's choice between
them: one `matmul(x[M, K], W[K, N])` per point, W random and pruned by magnitude
to a sparsity in a pattern, timed with `smelt bench` three ways: the pruned
matmul at -O1 (dense: no e-graph), the same weight written as `sparse_matmul`
(CSR, or BSR in the pattern's blocks) at -O1 (forced sparse), and the pruned
matmul at -O2 (the e-graph chooses). The summary counts the points where the
choice was the faster form and where it was within 2% / 10% of it.

    python scripts/bench/sparse.py [--smelt target/release/smelt] [--backend llvm]
        [--shapes 128x768x3072,1x768x768] [--sparsity 0,0.5,0.7,0.8,0.9,0.95]
        [--patterns unstructured,block:16x1,block:4x4] [--json OUT]

Patterns name blocks as `smelt prune` does: R×C of the [out, in] weight (R
output features × C inputs), so `16x1` is 16 consecutive columns of W[K, N] at
one row. Prints one row per point: dense, sparse and chosen ms, and which form
the optimizer kept (read from `smelt opt`'s output).
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


def bench(smelt, model, backend, threads, runs, level="2"):
    out = subprocess.run(
        [smelt, "bench", model, "--backend", backend, "--threads", str(threads), "--runs", str(runs), "--json", f"-O{level}"],
        capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"smelt bench {model} failed:\n{out.stderr}")
    return json.loads(out.stdout)["median_ms"]


def sparse_model(d, w, m, pattern):
    """`sparse_matmul` of W in CSR (unstructured) or BSR in the pattern's blocks."""
    k, n = w.shape
    mb = re.fullmatch(r"block:(\d+)x(\d+)", pattern)
    br, bc = (int(mb.group(2)), int(mb.group(1))) if mb else (1, 1)
    blocks = w.reshape(k // br, br, n // bc, bc).transpose(0, 2, 1, 3)
    stored = np.any(blocks != 0, axis=(2, 3))
    rows, cols = np.nonzero(stored)
    nnz = len(cols)
    idx = cols.astype(np.int32)
    off = np.concatenate([[0], np.cumsum(stored.sum(axis=1))]).astype(np.int32)
    if (br, bc) == (1, 1):
        v = np.ascontiguousarray(blocks[rows, cols, 0, 0], np.float32)
        attrs, vdecl = f"{{cols = {n}}}", f"{nnz}"
    else:
        v = np.ascontiguousarray(blocks[rows, cols], np.float32)
        attrs, vdecl = f"{{format = bsr, cols = {n}, block = [{br}, {bc}]}}", f"{nnz}, {br}, {bc}"
    src = (f"graph sp(x: f32[{m}, {k}]) -> (y) {{\n  v = param f32[{vdecl}]\n  i = param i32[{nnz}]\n  o = param i32[{len(off)}]\n"
           f"  y = sparse_matmul(x, v, i, o) {attrs}\n}}\n")
    p = os.path.join(d, "forced.smelt")
    open(p, "w").write(src)
    save_file({"v": v, "i": idx, "o": off}, os.path.join(d, "forced.safetensors"))
    return p


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
    print(f"{'M x K x N':>16} {'pattern':>14} {'zeros':>5}  {'dense':>8} {'sparse':>8} {'chosen':>8}  form")
    with tempfile.TemporaryDirectory() as d:
        for shape in a.shapes.split(","):
            m, k, n = (int(s) for s in shape.split("x"))
            w0 = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
            src = f"graph ffn(x: f32[{m}, {k}]) -> (y) {{\n  w = param f32[{k}, {n}]\n  y = matmul(x, w)\n}}\n"
            for pattern in a.patterns.split(","):
                for s in (float(x) for x in a.sparsity.split(",")):
                    w = prune(w0, s, pattern)
                    p = os.path.join(d, "pruned.smelt")
                    open(p, "w").write(src)
                    save_file({"w": w}, os.path.join(d, "pruned.safetensors"))
                    forced = sparse_model(d, w, m, pattern)
                    dense = bench(a.smelt, p, a.backend, a.threads, a.runs, "1")
                    sparse = bench(a.smelt, forced, a.backend, a.threads, a.runs, "1")
                    ms = bench(a.smelt, p, a.backend, a.threads, a.runs, "2")
                    form = chosen(a.smelt, p)
                    real = float((w == 0).mean())
                    row = dict(shape=shape, pattern=pattern, sparsity=real, dense_ms=dense, sparse_ms=sparse, chosen_ms=ms, form=form)
                    rows.append(row)
                    print(f"{shape:>16} {pattern:>14} {real:5.2f}  {dense:8.3f} {sparse:8.3f} {ms:8.3f}  {form}", flush=True)
    # The choice against the forms' own timings (noise included: each is its own process).
    right = sum(1 for r in rows if (r["form"] == "dense") == (r["dense_ms"] <= r["sparse_ms"]))
    best = [min(r["dense_ms"], r["sparse_ms"]) for r in rows]
    pick = [r["dense_ms"] if r["form"] == "dense" else r["sparse_ms"] for r in rows]
    w2 = sum(1 for b, p in zip(best, pick) if p <= 1.02 * b)
    w10 = sum(1 for b, p in zip(best, pick) if p <= 1.10 * b)
    worst = max(p / b for b, p in zip(best, pick))
    print(f"choice: the faster form at {right}/{len(rows)} points; within 2% at {w2}, within 10% at {w10}; worst {worst:.2f}× the faster")
    if a.json:
        json.dump(rows, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
