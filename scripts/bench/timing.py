"""Timing helpers shared by the int8 benchmarks (int8.py, dynamic.py): the CPU's
name, ONNX Runtime's median on one thread, and `smelt bench`'s median."""
import platform
import re
import subprocess
import time

import numpy as np


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def ort_time(path, feeds, runs, warmup=3):
    """Median ms of ONNX Runtime (1 thread) on `feeds`, and its first output."""
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        s.run(None, feeds)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = s.run(None, feeds)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3, out[0]


def smelt_time(smelt, path, backend, runs, *extra):
    """Median ms of `smelt bench PATH --backend BACKEND` (with `extra` arguments);
    None when it fails."""
    r = subprocess.run([smelt, "bench", path, "--backend", backend, "--runs", str(runs), *extra], capture_output=True, text=True)
    m = re.search(r"^run\s+([\d.]+) ms\s+median", r.stdout, re.M)
    return float(m.group(1)) if m else None


def need(t, what):
    if t is None:
        raise SystemExit(f"{what} failed")
    return t
