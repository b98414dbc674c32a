#!/usr/bin/env python3
"""Dynamic int8 against fp32 and against ONNX Runtime, on a BERT-base-size encoder.

A Hugging Face `transformers` BertModel built from its config with random weights
(12 layers, hidden 768, 12 heads, intermediate 3072 by default; `--layers` for a
quicker run), exported with torch.onnx (opset 17, batch 1, sequence 128, the
attention mask as an input) → median times, 1 thread, every system in one run:
  ORT fp32, ORT int8 (its own `quantize_dynamic`: u8 activations, s8 weights),
  smelt fp32, smelt quantize --mode dynamic (its own int8 of the fp32 model; and
  with --reduce-range, 7-bit weights, which AVX2 hosts without VNNI multiply as
  u8×s8 quads),
on smelt's LLVM and Cranelift backends. smelt's dynamic int8 outputs are compared
with its fp32 outputs and ONNX Runtime's int8 outputs with ONNX Runtime's fp32
(relative L2 error of the last hidden state) on the same input.

Usage: python scripts/bench/dynamic.py [--layers 12] [--seq 128] [--runs 10] [--smelt target/release/smelt] [--keep DIR]
Needs torch, transformers, onnx, onnxruntime, safetensors (e.g. target/models-venv).
"""
import argparse
import os
import subprocess
import tempfile

import bert
import numpy as np
import onnxruntime as ort
import timing
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import load_file, save_file
from timing import cpu_model, need


def smelt_time(smelt, path, backend, runs):
    return need(timing.smelt_time(smelt, path, backend, runs, "--warmup", "2"), f"smelt bench {path} --backend {backend}")


def smelt_out(smelt, path, backend, inputs, out):
    r = subprocess.run([smelt, "run", path, "--inputs", inputs, "--backend", backend, "-o", out], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"smelt run {path} failed:\n{r.stderr}")
    return load_file(out)


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--backends", default="llvm,cranelift")
    ap.add_argument("--smelt", default="target/release/smelt")
    ap.add_argument("--keep", help="write the models into this directory (else a temporary one)")
    a = ap.parse_args()
    print(f"CPU: {cpu_model()}, 1 thread, BERT encoder {a.layers} layers d768 ffn3072 seq {a.seq}, batch 1, "
          f"median of {a.runs} runs (ms); onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        os.makedirs(d, exist_ok=True)
        fp32, int8 = f"{d}/bert.onnx", f"{d}/bert_int8.onnx"
        feeds = bert.export(fp32, a.layers, a.seq)
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
        save_file(feeds, f"{d}/x.safetensors")
        own, own7 = f"{d}/bert_dyn", f"{d}/bert_dyn7"
        for out, extra in [(own, []), (own7, ["--reduce-range"])]:
            r = subprocess.run([a.smelt, "quantize", fp32, "--mode", "dynamic", "--calibrate", f"{d}/x.safetensors", "-o", out,
                                "--backend", "llvm"] + extra, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            print(" ".join(extra) or "8-bit weights", "|", r.stdout.strip().splitlines()[-2])
        t_ort32, y32 = timing.ort_time(fp32, feeds, a.runs, warmup=2)
        t_ort8, y8 = timing.ort_time(int8, feeds, a.runs, warmup=2)
        print(f"ORT fp32 {t_ort32:.1f}, ORT dynamic int8 {t_ort8:.1f} ({t_ort32 / t_ort8:.2f}×; output error vs fp32 {rel(y8, y32):.2e})")
        print("| backend | smelt fp32 | smelt dynamic int8 | 7-bit weights | int8 speed-up (7-bit) | int8 / ORT int8 | fp32 / ORT fp32 | int8 error vs smelt fp32 (7-bit) |")
        print("|---|---|---|---|---|---|---|---|")
        for b in a.backends.split(","):
            t32 = smelt_time(a.smelt, fp32, b, a.runs)
            t8 = smelt_time(a.smelt, own + ".smelt", b, a.runs)
            t7 = smelt_time(a.smelt, own7 + ".smelt", b, a.runs)
            o32 = smelt_out(a.smelt, fp32, b, f"{d}/x.safetensors", f"{d}/o32.safetensors")["last_hidden_state"]
            o8 = smelt_out(a.smelt, own + ".smelt", b, f"{d}/x.safetensors", f"{d}/o8.safetensors")["last_hidden_state"]
            o7 = smelt_out(a.smelt, own7 + ".smelt", b, f"{d}/x.safetensors", f"{d}/o7.safetensors")["last_hidden_state"]
            print(f"| {b} | {t32:.1f} | {t8:.1f} | {t7:.1f} | {t32 / t8:.2f}× ({t32 / t7:.2f}×) | {t8 / t_ort8:.2f} | {t32 / t_ort32:.2f} | "
                  f"{rel(o8, o32):.2e} ({rel(o7, o32):.2e}) |", flush=True)


if __name__ == "__main__":
    main()
