#!/usr/bin/env python3
"""Per-call overhead of the Python package: `smelt.Model.run` against ONNX
Runtime's `InferenceSession.run` on a tiny model (x[1, 64] · W[64, 10]), one
thread, side by side in one process (median of 20 rounds of 2,000 calls).

Usage: python scripts/bench/python_overhead.py [--backend cranelift]
Needs the smelt package (pip install ./python), onnx, onnxruntime.
"""
import argparse
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import smelt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="cranelift")
    ap.add_argument("--calls", type=int, default=2000)
    a = ap.parse_args()
    w = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    x = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), o, providers=["CPUExecutionProvider"])
    sm = smelt.compile(m, backend=a.backend)
    np.testing.assert_allclose(sm.run({"x": x})["y"], s.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    calls = {"onnxruntime": lambda: s.run(None, {"x": x}), f"smelt {a.backend}": lambda: sm.run({"x": x})}
    rounds = {k: [] for k in calls}
    for _ in range(20):
        for k, f in calls.items():
            t0 = time.perf_counter()
            for _ in range(a.calls):
                f()
            rounds[k].append((time.perf_counter() - t0) / a.calls * 1e6)
    for k, v in rounds.items():
        print(f"{k:>20}: {np.median(v):6.2f} µs per call (min {min(v):.2f})")


if __name__ == "__main__":
    main()
