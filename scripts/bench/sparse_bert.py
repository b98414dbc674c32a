#!/usr/bin/env python3
"""Pruned BERT-base-size encoders against the dense one, and against ONNX Runtime.

A Hugging Face `transformers` BertModel built from its config with random weights
(12 layers, hidden 768, 12 heads, intermediate 3072 by default; `--layers` for a
quicker run), exported with torch.onnx (opset 17, batch 1, sequence 128), then
`smelt prune` at each sparsity in each pattern (every linear layer of the
encoder: Q, K, V, the attention output and the two FFN layers) → median times on
one thread of the dense model (smelt and ONNX Runtime fp32) and of each pruned
model (smelt; the optimizer chooses dense or sparse per layer), the layers that
went sparse, and the output error `smelt prune` measured against the dense model.
Random weights make the error a stress figure, not an accuracy: pruning a
trained model (and fine-tuning it) is what keeps accuracy.

Usage: python scripts/bench/sparse_bert.py [--layers 12] [--seq 128] [--runs 10]
    [--sparsity 0.5,0.7,0.8,0.9,0.95] [--patterns block:16x1,unstructured,block:4x4]
    [--backend llvm] [--threads 1] [--smelt target/release/smelt] [--keep DIR]
Needs torch, transformers, onnx, onnxruntime, safetensors (e.g. target/models-venv).
"""
import argparse
import json
import os
import subprocess
import tempfile

import bert
import timing
from safetensors.numpy import save_file
from timing import cpu_model, need


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--sparsity", default="0.5,0.7,0.8,0.9,0.95")
    ap.add_argument("--patterns", default="block:16x1,unstructured,block:4x4")
    ap.add_argument("--backend", default="llvm")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smelt", default="target/release/smelt")
    ap.add_argument("--keep", help="write the models into this directory (else a temporary one)")
    a = ap.parse_args()
    print(f"CPU: {cpu_model()}, {a.threads} thread(s), BERT encoder {a.layers} layers d768 ffn3072 seq {a.seq}, batch 1, "
          f"smelt {a.backend}, median of {a.runs} runs (ms)")
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        os.makedirs(d, exist_ok=True)
        fp32 = f"{d}/bert.onnx"
        feeds = bert.export(fp32, a.layers, a.seq)
        save_file(feeds, f"{d}/x.safetensors")
        bench = lambda p: need(timing.smelt_time(a.smelt, p, a.backend, a.runs, "--warmup", "2", "--threads", str(a.threads)), f"smelt bench {p}")
        if a.threads == 1:
            t_ort, _ = timing.ort_time(fp32, feeds, a.runs, warmup=2)
            print(f"ONNX Runtime fp32 (dense): {t_ort:.1f} ms")
        dense = bench(fp32)
        print(f"smelt dense: {dense:.1f} ms")
        print("| pattern | sparsity | sparse layers | smelt ms | speed-up vs dense | output error vs dense |")
        print("|---|---|---|---|---|---|")
        for p in a.patterns.split(","):
            for s in a.sparsity.split(","):
                out = f"{d}/bert_{p.replace(':', '_')}_{round(float(s) * 100)}"
                r = subprocess.run([a.smelt, "prune", fp32, "--sparsity", s, "--pattern", p, "--inputs", f"{d}/x.safetensors", "-o", out,
                                    "--backend", a.backend, "--report", out + ".json"], capture_output=True, text=True)
                if r.returncode != 0:
                    raise SystemExit(r.stderr)
                rep = json.load(open(out + ".json"))
                t = bench(out + ".smelt")
                print(f"| {p} | {float(s):.0%} | {rep['sparse_layers']}/{len(rep['layers'])} | {t:.1f} | {dense / t:.2f}× | {rep['error']:.2e} |", flush=True)


if __name__ == "__main__":
    main()
