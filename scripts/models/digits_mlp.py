#!/usr/bin/env python3
"""Trains the digits MLP that the pruning tests use (all of its weights are in
linear layers, so pruning reaches all of them), and exports it.

The same data and split as `digits.py` (scikit-learn's bundled digits, 80/20,
seed 0); a 64-256-256-10 ReLU MLP trained with PyTorch on the CPU and exported
with torch.onnx (TorchScript exporter, opset 17, dynamic batch), as users
export them. Writes OUT/digits_mlp.onnx and adds its PyTorch test accuracy to
OUT/accuracy.json (default OUT: tests/fixtures/digits).

Usage: python scripts/models/digits_mlp.py [OUT]   (needs torch, onnx, scikit-learn)
"""
import json
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/digits"


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 256)
        self.fc2 = torch.nn.Linear(256, 256)
        self.fc3 = torch.nn.Linear(256, 10)

    def forward(self, x):
        x = torch.relu(self.fc1(x.flatten(1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def main():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=0, stratify=d.target)
    model = Mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    for _ in range(60):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 32):
            idx = perm[i : i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    torch.onnx.export(
        model,
        (torch.from_numpy(xte[:2]),),
        f"{OUT}/digits_mlp.onnx",
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
    path = f"{OUT}/accuracy.json"
    accs = json.load(open(path))
    accs["digits_mlp"] = acc
    with open(path, "w") as f:
        json.dump(accs, f, indent=1)
    print(f"digits_mlp: test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
