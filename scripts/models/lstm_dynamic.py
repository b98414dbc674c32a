#!/usr/bin/env python3
"""A PyTorch LSTM and ONNX Runtime's dynamic int8 of it (com.microsoft
DynamicQuantizeLSTM), for the import tests.

`nn.LSTM(12, 20, num_layers=2, bidirectional=True)` with random weights (seed 0)
and a linear head, exported with torch.onnx (TorchScript exporter, opset 17,
dynamic batch and sequence axes) as users export it, then quantized by ONNX
Runtime's `quantize_dynamic` (s8 weights, per tensor): its LSTMs become
DynamicQuantizeLSTM (int8 W and R with scales and zero points; the activations
quantized at each step), its MatMuls integer matmuls.

Writes to OUT (default tests/fixtures/dynamic):
  lstm.onnx               the float model
  lstm_dynamic.onnx       ONNX Runtime's dynamic int8 of it
  lstm_io.safetensors     x (f32[7, 3, 12]: sequence, batch, features) and ONNX
                          Runtime's outputs expected.fp32 and expected.int8

Usage: python scripts/models/lstm_dynamic.py [OUT]   (needs torch, onnx, onnxruntime, safetensors)
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import save_file


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(12, 20, num_layers=2, bidirectional=True)
        self.head = torch.nn.Linear(40, 5)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y)


OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/dynamic"


def main():
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(7, 3, 12)
    os.makedirs(OUT, exist_ok=True)
    fp32 = os.path.join(OUT, "lstm.onnx")
    int8 = os.path.join(OUT, "lstm_dynamic.onnx")
    with torch.no_grad():
        torch.onnx.export(net, (x,), fp32, input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {0: "T", 1: "N"}, "y": {0: "T", 1: "N"}}, dynamo=False)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
    ops = sorted({(n.domain, n.op_type) for n in onnx.load(int8).graph.node})
    assert ("com.microsoft", "DynamicQuantizeLSTM") in ops, ops
    feeds = {"x": x.numpy()}
    run = lambda p: ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    want32, want8 = run(fp32), run(int8)
    save_file({"x": feeds["x"], "expected.fp32": want32, "expected.int8": want8}, os.path.join(OUT, "lstm_io.safetensors"))
    err = np.abs(want8 - want32).max() / np.abs(want32).max()
    print(f"ops: {ops}\nwrote {fp32}, {int8}; ONNX Runtime int8 vs fp32: max|d|/max = {err:.2e}")


if __name__ == "__main__":
    main()
