#!/usr/bin/env python3
"""scikit-learn pipelines trained on the bundled digits and exported with skl2onnx
(the `ai.onnx.ml` domain's Scaler, Normalizer, LinearClassifier,
LinearRegressor, TreeEnsembleClassifier and TreeEnsembleRegressor), with ONNX Runtime's outputs on the held-out images.

Writes to OUT (default tests/fixtures/sklearn):
  logreg.onnx       StandardScaler + LogisticRegression (label, probabilities)
  norm_logreg.onnx  Normalizer (L2) + LogisticRegression
  ridge.onnx        MinMaxScaler + Ridge regression of the digit's value
  forest.onnx       a random forest (12 trees, depth 7): TreeEnsembleClassifier
  boosted.onnx      gradient-boosted regression trees (25, depth 3): TreeEnsembleRegressor
  data.safetensors  x: f32[N, 64] held-out images, labels: i64[N], and for each
                    model ONNX Runtime's outputs (`MODEL.OUTPUT`)

Usage: python scripts/models/sklearn_models.py [OUT]
(needs scikit-learn, skl2onnx, onnxruntime, safetensors)
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import save_file
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/sklearn"
os.makedirs(out, exist_ok=True)
X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
xtr, xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
models = {
    "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    "norm_logreg": make_pipeline(Normalizer(), LogisticRegression(max_iter=1000)),
    "ridge": make_pipeline(MinMaxScaler(), Ridge()),
    "forest": RandomForestClassifier(n_estimators=12, max_depth=7, random_state=0),
    "boosted": GradientBoostingRegressor(n_estimators=25, max_depth=3, random_state=0),
}
data = {"x": xte, "labels": yte.astype(np.int64)}
for name, m in models.items():
    if name in ("ridge", "boosted"):
        m.fit(xtr, ytr.astype(np.float32))
        opts = None
    else:
        m.fit(xtr, ytr)
        est = m.steps[-1][1] if hasattr(m, "steps") else m
        opts = {id(est): {"zipmap": False}}
    onx = to_onnx(m, xtr[:1], options=opts, target_opset={"": 17, "ai.onnx.ml": 3})
    path = os.path.join(out, f"{name}.onnx")
    onnx.save(onx, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for o, v in zip(sess.get_outputs(), sess.run(None, {sess.get_inputs()[0].name: xte})):
        data[f"{name}.{o.name}"] = np.ascontiguousarray(v)
    if name not in ("ridge", "boosted"):
        print(f"{name}: accuracy {float((data[name + '.label'] == yte).mean()):.4f} (ONNX Runtime)")
save_file(data, os.path.join(out, "data.safetensors"))
