#!/usr/bin/env python3
"""ONNX Runtime (CPU execution provider) on the benchmark models: the reference
outputs that the other systems are checked against, and its times.

Inputs are seeded standard-normal fp32 tensors, one per graph input (the seed is
derived from the model's name and --seed). Sessions use intra-op threads = N,
inter-op threads = 1, sequential execution and every graph optimization; the
session's creation time is the `compile_ms`.

    ort_bench.py reference MODELS_DIR [--models a,b] [--seed 0]
        writes MODELS_DIR/MODEL.io.safetensors: the inputs under their ONNX names and
        ONNX Runtime's outputs (one thread) as `expected.<output name>`.
    ort_bench.py time MODELS_DIR OUT.json [--threads 1,2] [--runs 20] [--warmup 3] [--models a,b]
        the reference files, then each model timed alone: --warmup runs, then --runs
        timed runs; OUT.json = {"system": "onnxruntime", "version", "results": [{model,
        threads, compile_ms, median_ms, min_ms, mean_ms, runs, warmup}]}.
    ort_bench.py serve MODELS_DIR [--seed 0]
        a worker for the bench/ crate, which times every system side by side: one JSON
        request per line on stdin, one reply per line on stdout. It greets with
        {"ok": true, "version"}; {"op": "open", "model", "threads"} opens a session
        (replacing the last one; intra-op spinning off, so that its idle threads do not
        take the CPU from the systems timed between its runs) -> {"ok", "compile_ms"};
        {"op": "run"} runs it once -> {"ok", "ms"}. Errors: {"ok": false, "error"}.

MODELS_DIR holds MODEL.onnx (scripts/bench/make_models.py); default models: all of them.
"""

import argparse
import json
import os
import struct
import sys
import time
import zlib

import numpy as np
import onnxruntime as ort


def write_safetensors(path, tensors):
    """A safetensors file (the format smelt reads) of fp32 numpy arrays, written
    atomically: 8-byte little-endian header size, a JSON header, the raw data."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        data = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def session(path, threads, spinning=True):
    so = ort.SessionOptions()
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def inputs_for(sess, model, seed):
    rng = np.random.default_rng(zlib.crc32(f"{model}/{seed}".encode()))
    feeds = {}
    for i in sess.get_inputs():
        if i.type != "tensor(float)":
            raise ValueError(f"{model}: input {i.name} is {i.type}; the benchmark feeds fp32 inputs only")
        if not all(isinstance(d, int) for d in i.shape):
            raise ValueError(f"{model}: input {i.name} has a symbolic shape {i.shape}; benchmark models are static")
        feeds[i.name] = rng.standard_normal(i.shape).astype(np.float32)
    return feeds


def time_runs(sess, feeds, warmup, runs):
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def reference(models_dir, model, seed):
    """Writes MODEL.io.safetensors; returns the inputs."""
    path = os.path.join(models_dir, f"{model}.onnx")
    ref = session(path, 1)
    feeds = inputs_for(ref, model, seed)
    outs = ref.run(None, feeds)
    io = dict(feeds)
    for o, v in zip(ref.get_outputs(), outs):
        io[f"expected.{o.name}"] = v
    write_safetensors(os.path.join(models_dir, f"{model}.io.safetensors"), io)
    print(f"wrote {model}.io.safetensors", flush=True)
    return feeds


def serve(models_dir, seed):
    def reply(**kw):
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()

    reply(ok=True, version=ort.__version__)
    sess = feeds = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            if req["op"] == "open":
                sess = None
                path = os.path.join(models_dir, f"{req['model']}.onnx")
                t0 = time.perf_counter()
                sess = session(path, int(req["threads"]), spinning=False)
                compile_ms = (time.perf_counter() - t0) * 1e3
                feeds = inputs_for(sess, req["model"], seed)
                reply(ok=True, compile_ms=compile_ms)
            elif req["op"] == "run":
                if sess is None:
                    raise ValueError("no session open")
                t0 = time.perf_counter()
                sess.run(None, feeds)
                reply(ok=True, ms=(time.perf_counter() - t0) * 1e3)
            else:
                raise ValueError(f"unknown op {req['op']!r}")
        except Exception as e:  # the worker reports every failure and goes on
            reply(ok=False, error=f"{type(e).__name__}: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("mode", choices=["reference", "time", "serve"])
    ap.add_argument("models_dir")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--models", default="")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.mode == "serve":
        return serve(a.models_dir, a.seed)
    if a.mode == "time" and not a.out:
        ap.error("time needs OUT.json")
    threads = [int(t) for t in a.threads.split(",") if t]
    if a.models:
        models = a.models.split(",")
    else:
        models = sorted(f[:-5] for f in os.listdir(a.models_dir) if f.endswith(".onnx"))
    results = []
    for model in models:
        feeds = reference(a.models_dir, model, a.seed)
        if a.mode == "reference":
            continue
        path = os.path.join(a.models_dir, f"{model}.onnx")
        for t in threads:
            t0 = time.perf_counter()
            sess = session(path, t)
            compile_ms = (time.perf_counter() - t0) * 1e3
            times = time_runs(sess, feeds, a.warmup, a.runs)
            r = {
                "model": model, "threads": t, "compile_ms": compile_ms,
                "median_ms": float(np.median(times)), "min_ms": min(times), "mean_ms": float(np.mean(times)),
                "runs": a.runs, "warmup": a.warmup,
            }
            print(f"onnxruntime {model:>14} {t} thread(s): median {r['median_ms']:9.3f} ms  min {r['min_ms']:9.3f} ms",
                  flush=True)
            results.append(r)
            del sess
    if a.mode == "time":
        doc = {"system": "onnxruntime", "version": ort.__version__, "results": results}
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
