#!/usr/bin/env python3
"""smelt from Python, end to end: load a trained ONNX classifier, compile it on
two backends, quantize it to int8, and compare accuracy and speed with ONNX
Runtime; print a table and save a bar chart.

The model is the digits CNN of the test fixtures (scripts/models/digits.py:
trained on scikit-learn's digits, exported by torch.onnx) with its held-out
test images.

    python examples/python/compare.py [--plot compare.png] [--runs 20]

Needs smelt (pip install ./python), numpy, safetensors; onnxruntime and
matplotlib are used when installed.
"""
import argparse
import os
import time

import numpy as np
from safetensors.numpy import load_file

import smelt

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "digits")


def timed(run, runs):
    run()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = run()
        ts.append(time.perf_counter() - t0)
    return out, float(np.median(ts)) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot", default="compare.png", help="where to save the chart ('' for none)")
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    model = os.path.join(FIXTURES, "digits_cnn.onnx")
    test = load_file(os.path.join(FIXTURES, "test.safetensors"))
    x, labels = test["x"], test["labels"]
    calib = load_file(os.path.join(FIXTURES, "calibration.safetensors"))["x"]  # [12, 16, 1, 8, 8]

    rows = []  # (system, accuracy, ms per batch)
    try:
        import onnxruntime as ort

        o = ort.SessionOptions()
        o.intra_op_num_threads = 1
        s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
        out, ms = timed(lambda: s.run(None, {"x": x})[0], a.runs)
        rows.append(("onnxruntime fp32", float((out.argmax(1) == labels).mean()), ms))
    except ImportError:
        pass
    for backend in ["cranelift", "llvm"]:
        try:
            m = smelt.compile(model, backend=backend)
        except smelt.OptionsError as e:  # a backend left out of this build
            print(f"skipping {backend}: {e}")
            continue
        out, ms = timed(lambda: m.run({"x": x})["logits"], a.runs)
        rows.append((f"smelt {backend} fp32", float((out.argmax(1) == labels).mean()), ms))
    q = smelt.quantize(model, calibration=[{"x": calib}])
    print(f"quantized: {sum(l['precision'] != 'f32' for l in q.report['layers'])} layers int8, "
          f"output error {q.report['error']:.3%} on {q.report['held_out_inputs']} held-out batches")
    for backend in ["cranelift", "llvm"]:
        try:
            m = q.compile(backend=backend)
        except smelt.OptionsError:
            continue
        out, ms = timed(lambda: m.run({"x": x})["logits"], a.runs)
        rows.append((f"smelt {backend} int8", float((out.argmax(1) == labels).mean()), ms))

    print(f"\ndigits CNN, {len(labels)} test images in one batch, 1 thread, median of {a.runs} runs")
    print(f"{'system':<22} {'accuracy':>9} {'ms/batch':>9}")
    for name, acc, ms in rows:
        print(f"{name:<22} {acc:>8.2%} {ms:>9.3f}")
    if a.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("(matplotlib is not installed: no chart)")
            return
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.barh([r[0] for r in rows], [r[2] for r in rows])
        for i, r in enumerate(rows):
            ax.text(r[2], i, f" {r[1]:.1%}", va="center")
        ax.set_xlabel("ms per batch (label: test accuracy)")
        fig.tight_layout()
        fig.savefig(a.plot)
        print(f"saved {a.plot}")


if __name__ == "__main__":
    main()
