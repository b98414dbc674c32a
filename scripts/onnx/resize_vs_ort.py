#!/usr/bin/env python3
"""Resize and Upsample against ONNX Runtime on every backend: builds one-node
models (opsets 9-19, every mode and coordinate transformation, antialias, axes
with keep_aspect_ratio_policy, scales whose product with the size is not an
integer), runs them with ONNX Runtime and with `smelt run` on each backend, and
prints the largest absolute difference per case (fails above 1e-4).

Needs a Python with onnx, onnxruntime, numpy and safetensors (the benchmark venv
has them: scripts/bench/run.sh) and a built CLI. Usage:
  python resize_vs_ort.py [SMELT_BINARY] [BACKENDS]   # default target/debug/smelt, interp,cranelift,llvm,wgsl
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file, save_file

SMELT = sys.argv[1] if len(sys.argv) > 1 else "target/debug/smelt"
BACKENDS = (sys.argv[2] if len(sys.argv) > 2 else "interp,cranelift,llvm,wgsl").split(",")
OUT = tempfile.mkdtemp(prefix="smelt-resize-")
rng = np.random.default_rng(1)
cases = []


def one(name, shape, attrs, scales=None, sizes=None, opset=19, roi=None, op="Resize", axes=None):
    inits=[]; ins=["x"]
    if op=="Upsample":
        inits.append(numpy_helper.from_array(np.array(scales,np.float32),"scales")); ins.append("scales")
    elif opset==10:
        inits.append(numpy_helper.from_array(np.array(scales,np.float32),"scales")); ins.append("scales")
    else:
        ins.append("")
        if roi is not None or opset < 13:
            inits.append(numpy_helper.from_array(np.array(roi or [],np.float32),"roi")); ins[1]="roi"
        if scales is not None:
            inits.append(numpy_helper.from_array(np.array(scales,np.float32),"scales")); ins.append("scales")
        else:
            ins.append(""); inits.append(numpy_helper.from_array(np.array(sizes,np.int64),"sizes")); ins.append("sizes")
    if axes is not None: attrs=dict(attrs, axes=axes)
    n=helper.make_node(op,ins,["y"],**attrs)
    g=helper.make_graph([n],"g",[helper.make_tensor_value_info("x",TensorProto.FLOAT,shape)],[helper.make_tensor_value_info("y",TensorProto.FLOAT,None)],inits)
    m=helper.make_model(g,opset_imports=[helper.make_opsetid("",opset)])
    m.ir_version=8
    x=rng.standard_normal(shape).astype(np.float32)
    y=ort.InferenceSession(m.SerializeToString(),providers=["CPUExecutionProvider"]).run(None,{"x":x})[0]
    d=os.path.join(OUT, name); os.makedirs(d,exist_ok=True)
    onnx.save(m,d+"/model.onnx"); np.save(d+"/x.npy",x); np.save(d+"/y.npy",y)
    cases.append(name)
one("upsample9_nearest",[1,2,3,4],dict(mode="nearest"),scales=[1,1,2,3],opset=9,op="Upsample")
one("upsample9_linear",[1,2,3,4],dict(mode="linear"),scales=[1,1,2,2.5],opset=9,op="Upsample")
one("resize10_nearest_down",[1,2,7,9],dict(mode="nearest"),scales=[1,1,0.6,0.45],opset=10)
one("resize10_nearest_up",[1,2,3,5],dict(mode="nearest"),scales=[1,1,1.7,2.2],opset=10)
one("resize10_linear",[1,2,5,6],dict(mode="linear"),scales=[1,1,1.5,0.7],opset=10)
one("resize11_cubic_align",[1,1,17,23],dict(mode="cubic",coordinate_transformation_mode="align_corners"),scales=[1,1,.5,.5],opset=11)
one("resize13_linear_align",[2,3,17,23],dict(mode="linear",coordinate_transformation_mode="align_corners"),scales=[1,1,.5,.6],opset=13)
one("resize13_pytorch_one",[1,1,4,7],dict(mode="cubic",coordinate_transformation_mode="pytorch_half_pixel"),sizes=[1,1,1,3],opset=13)
one("resize13_pytorch_scales",[1,1,5,7],dict(mode="cubic",coordinate_transformation_mode="pytorch_half_pixel"),scales=[1,1,0.3,0.3],opset=13)
one("resize13_tfcrop",[1,1,5,7],dict(mode="linear",coordinate_transformation_mode="tf_crop_and_resize",extrapolation_value=1.5),scales=[1,1,0.7,1.7],roi=[0,0,0.1,-0.2,1,1,0.9,1.1],opset=13)
one("resize13_half_pixel_nearest_ceil",[2,3,6,7],dict(mode="nearest",nearest_mode="round_prefer_ceil"),scales=[1,1,1.5,0.6],opset=13)
one("resize13_cubic_exclude",[1,2,6,7],dict(mode="cubic",exclude_outside=1,cubic_coeff_a=-0.5),sizes=[1,2,11,4],opset=13)
one("resize18_antialias_linear",[1,2,31,17],dict(mode="linear",antialias=1),sizes=[1,2,7,6],opset=18)
one("resize18_antialias_cubic",[1,2,31,17],dict(mode="cubic",antialias=1),scales=[1,1,0.3,0.45],opset=18)
one("resize18_axes_keep",[2,3,10,14],dict(mode="linear",keep_aspect_ratio_policy="not_larger"),sizes=[7,9],axes=[2,3],opset=18)
one("resize19_symmetric",[1,2,5,6],dict(mode="linear",coordinate_transformation_mode="half_pixel_symmetric"),scales=[1,1,1.7,0.7],opset=19)
one("resize19_floor_asym_big",[1,16,40,48],dict(mode="nearest",coordinate_transformation_mode="asymmetric",nearest_mode="floor"),scales=[1,1,2,2],opset=19)

worst = 0.0
for name in cases:
    d = os.path.join(OUT, name)
    save_file({"x": np.load(os.path.join(d, "x.npy"))}, os.path.join(d, "in.safetensors"))
    want = np.load(os.path.join(d, "y.npy"))
    row = []
    for b in BACKENDS:
        out = os.path.join(d, b + ".safetensors")
        p = subprocess.run([SMELT, "run", os.path.join(d, "model.onnx"), "--inputs", os.path.join(d, "in.safetensors"),
                            "--backend", b, "-o", out], capture_output=True, text=True)
        if p.returncode != 0:
            row.append(f"{b} ERROR {p.stderr.strip().splitlines()[0] if p.stderr.strip() else p.returncode}")
            worst = float("inf")
            continue
        y = list(load_file(out).values())[0]
        if y.shape != want.shape:
            row.append(f"{b} shape {y.shape} vs {want.shape}")
            worst = float("inf")
            continue
        e = float(np.abs(y - want).max())
        worst = max(worst, e)
        row.append(f"{b} {e:.1e}")
    print(f"{name:34s} " + " | ".join(row))
print(f"largest difference from ONNX Runtime {ort.__version__}: {worst:.1e}")
sys.exit(0 if worst <= 1e-4 else 1)
