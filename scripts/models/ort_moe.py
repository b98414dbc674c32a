#!/usr/bin/env python3
"""Fixtures for the com.microsoft MoE importer: small ONNX Runtime MoE models
(random weights, torch.nn.Linear layout [E, out, in]) and ONNX Runtime's outputs.

  ort_moe.onnx          x [T, 12], logits [T, 5]; relu, k = 2, normalized weights
  ort_moe_softmax.onnx  x [2, 5, 12] (batch, sequence), logits [10, 5]; gelu, k = 1,
                        weights the softmax over all experts (not renormalized)

io.safetensors holds each model's inputs (`<model>.x`, `<model>.logits`) and
ONNX Runtime's output (`<model>.expected`). Usage:
  python scripts/models/ort_moe.py tests/fixtures/moe
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

E, D, H = 5, 12, 20


def model(name, x_shape, t, k, act, normalize, rng):
    fc1 = rng.standard_normal((E, H, D), dtype=np.float32) * 0.3
    fc2 = rng.standard_normal((E, D, H), dtype=np.float32) * 0.3
    node = helper.make_node("MoE", ["x", "logits", "fc1", "", "fc2"], ["y"], domain="com.microsoft", name="moe",
                            k=k, activation_type=act, normalize_routing_weights=normalize)
    g = helper.make_graph([node], name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
                           helper.make_tensor_value_info("logits", TensorProto.FLOAT, [t, E])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, x_shape)],
                          [numpy_helper.from_array(fc1, "fc1"), numpy_helper.from_array(fc2, "fc2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    io = {}
    for name, x_shape, t, k, act, norm in [("ort_moe", [7, D], 7, 2, "relu", 1), ("ort_moe_softmax", [2, 5, D], 10, 1, "gelu", 0)]:
        m = model(name, x_shape, t, k, act, norm, rng)
        path = f"{out}/{name}.onnx"
        onnx.save(m, path)
        x = rng.standard_normal(x_shape, dtype=np.float32)
        logits = rng.standard_normal((t, E), dtype=np.float32)
        y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x, "logits": logits})[0]
        io.update({f"{name}.x": x, f"{name}.logits": logits, f"{name}.expected": y})
    save_file(io, f"{out}/io.safetensors")


if __name__ == "__main__":
    main()
