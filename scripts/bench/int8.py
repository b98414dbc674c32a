#!/usr/bin/env python3
"""int8 against fp32 and against ONNX Runtime, on torchvision's ResNets (random weights).

For each model: torch.onnx export (opset 17, batch 1, 224x224) → ONNX Runtime's
quantize_static (QDQ, per-channel s8 weights, u8 activations, MinMax on 8 random
calibration images) → median times, 1 thread, every system in one run:
  ORT fp32, ORT int8 (its own QDQ model),
  smelt fp32 (the fp32 ONNX), smelt on ORT's QDQ model (folded into integer kernels),
  smelt quantize (its own int8 of the fp32 model, calibrated on the same images),
on smelt's LLVM and Cranelift backends. smelt's outputs on the QDQ model are
checked against ONNX Runtime's on the same input (relative L2 error).

Usage: python scripts/bench/int8.py [--models resnet18,resnet50] [--runs 20] [--smelt target/release/smelt]
Needs torch, torchvision, onnx, onnxruntime, safetensors (e.g. target/models-venv).
"""
import argparse
import subprocess
import tempfile

import numpy as np
import onnxruntime as ort
import timing
import torch
import torchvision
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from safetensors.numpy import load_file, save_file
from timing import cpu_model, need


def smelt_time(smelt, path, backend, runs):
    t = timing.smelt_time(smelt, path, backend, runs, "--dim", "N=1")
    return need(t if t is not None else timing.smelt_time(smelt, path, backend, runs), f"smelt bench {path} --backend {backend}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet18,resnet50")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--smelt", default="target/release/smelt")
    a = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(8)]
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    print(f"CPU: {cpu_model()}, 1 thread, batch 1, median of {a.runs} runs (ms); onnxruntime {ort.__version__}")
    print("| model | ORT fp32 | ORT int8 | smelt llvm fp32 | smelt llvm ORT-QDQ | smelt llvm own int8 | smelt cranelift fp32 | smelt cranelift own int8 | llvm int8/fp32 | llvm own int8 / ORT int8 | QDQ outputs vs ORT |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        save_file({"x": np.concatenate(calib)[:, None]}, f"{d}/calib.safetensors")
        save_file({"x": x}, f"{d}/x.safetensors")
        for name in a.models.split(","):
            m = getattr(torchvision.models, name)(weights=None).eval()
            fp32 = f"{d}/{name}.onnx"
            torch.onnx.export(m, (torch.from_numpy(x),), fp32, input_names=["x"], output_names=["logits"], opset_version=17, dynamo=False)

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.it = iter([{"x": c} for c in calib])

                def get_next(self):
                    return next(self.it, None)

            pre, qdq = f"{d}/{name}_pre.onnx", f"{d}/{name}_qdq.onnx"
            quant_pre_process(fp32, pre)
            quantize_static(pre, qdq, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            own = f"{d}/{name}_int8"
            r = subprocess.run([a.smelt, "quantize", fp32, "--calibrate", f"{d}/calib.safetensors", "-o", own, "--backend", "llvm"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            t_ort32, _ = timing.ort_time(fp32, {"x": x}, a.runs)
            t_ort8, y_ort8 = timing.ort_time(qdq, {"x": x}, a.runs)
            t_l32 = smelt_time(a.smelt, fp32, "llvm", a.runs)
            t_lq = smelt_time(a.smelt, qdq, "llvm", a.runs)
            t_l8 = smelt_time(a.smelt, own + ".smelt", "llvm", a.runs)
            t_c32 = smelt_time(a.smelt, fp32, "cranelift", a.runs)
            t_c8 = smelt_time(a.smelt, own + ".smelt", "cranelift", a.runs)
            subprocess.run([a.smelt, "run", qdq, "--inputs", f"{d}/x.safetensors", "--backend", "llvm", "-o", f"{d}/y.safetensors"],
                           check=True, capture_output=True)
            y = load_file(f"{d}/y.safetensors")["logits"]
            err = float(np.linalg.norm(y - y_ort8) / np.linalg.norm(y_ort8))
            print(f"| {name} | {t_ort32:.2f} | {t_ort8:.2f} | {t_l32:.2f} | {t_lq:.2f} | {t_l8:.2f} | {t_c32:.2f} | {t_c8:.2f} | "
                  f"{t_l8 / t_l32:.2f} | {t_l8 / t_ort8:.2f} | {err:.2e} |", flush=True)


if __name__ == "__main__":
    main()
