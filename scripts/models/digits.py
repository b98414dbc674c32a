#!/usr/bin/env python3
"""Trains the small digits classifiers the quantization tests use, and exports them.

scikit-learn's bundled digits (1,797 8x8 images, 10 classes) split 80/20 with a
fixed seed; a small CNN and an LSTM classifier (the image's rows as 8 steps of 8
features) are trained with PyTorch on the CPU and exported with torch.onnx
(TorchScript exporter, opset 17, dynamic batch), as users export them.

Writes to OUT (default tests/fixtures/digits):
  digits_cnn.onnx, digits_lstm.onnx   the trained models
  calibration.safetensors            x: f32[12, 16, 1, 8, 8]: 12 batches of 16 training images
  test.safetensors                   x: f32[360, 1, 8, 8], labels: i64[360] (held out)
  digits_cnn_qdq.onnx                the CNN quantized by ONNX Runtime's quantize_static
                                     (QDQ, per-channel s8 weights, u8 activations, MinMax)
  ort_qdq.safetensors                logits: ONNX Runtime's outputs of it on the test images
  accuracy.json                      test accuracies: PyTorch float, ONNX Runtime QDQ int8

Usage: python scripts/models/digits.py [OUT]   (needs torch, onnx, scikit-learn, safetensors)
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/digits"


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.c2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc1 = torch.nn.Linear(32 * 4 * 4, 64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.c1(x)))
        x = self.pool(torch.relu(self.c2(x)))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class Lstm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(8, 48, batch_first=True)
        self.fc = torch.nn.Linear(48, 10)

    def forward(self, x):
        seq = x.reshape(x.shape[0], 8, 8)
        out, _ = self.lstm(seq)
        return self.fc(out[:, -1])


def train(model, xtr, ytr, epochs):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    n = len(xtr)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, 32):
            idx = perm[i : i + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
    model.eval()


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def main():
    os.makedirs(OUT, exist_ok=True)
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=0, stratify=d.target)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    xte_t, yte_t = torch.from_numpy(xte), torch.from_numpy(yte).long()
    acc = {}
    for name, model, epochs in [("digits_cnn", Cnn(), 30), ("digits_lstm", Lstm(), 40)]:
        train(model, xtr_t, ytr_t, epochs)
        acc[name] = accuracy(model, xte_t, yte_t)
        torch.onnx.export(
            model,
            (xte_t[:2],),
            f"{OUT}/{name}.onnx",
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
        print(f"{name}: test accuracy {acc[name]:.4f}")
    save_file({"x": np.ascontiguousarray(xtr[: 12 * 16].reshape(12, 16, 1, 8, 8))}, f"{OUT}/calibration.safetensors")
    save_file({"x": np.ascontiguousarray(xte), "labels": yte.astype(np.int64)}, f"{OUT}/test.safetensors")
    acc["digits_cnn_qdq_ort"] = ort_qdq(xtr[: 12 * 16], xte, yte)
    with open(f"{OUT}/accuracy.json", "w") as f:
        json.dump(acc, f, indent=1)


def ort_qdq(calib, xte, yte):
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calib[i : i + 16]} for i in range(0, len(calib), 16)])

        def get_next(self):
            return next(self.batches, None)

    pre = f"{OUT}/digits_cnn_pre.onnx"
    quant_pre_process(f"{OUT}/digits_cnn.onnx", pre)
    quantize_static(
        pre,
        f"{OUT}/digits_cnn_qdq.onnx",
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    os.remove(pre)
    s = ort.InferenceSession(f"{OUT}/digits_cnn_qdq.onnx", providers=["CPUExecutionProvider"])
    logits = s.run(None, {"x": xte})[0]
    save_file({"logits": np.ascontiguousarray(logits)}, f"{OUT}/ort_qdq.safetensors")
    return float((logits.argmax(1) == yte).mean())


if __name__ == "__main__":
    main()
