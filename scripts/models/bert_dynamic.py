#!/usr/bin/env python3
"""A tiny BERT encoder and ONNX Runtime's dynamic int8 of it, for the import tests.

A Hugging Face `transformers` BertModel built from a small config with random
weights (seed 0: 2 layers, hidden 64, 4 heads, intermediate 128, vocab 200),
exported with torch.onnx (TorchScript exporter, opset 17, dynamic batch and
sequence axes) as users export it, then quantized by ONNX Runtime's
`quantize_dynamic` (s8 weights; u8 activations quantized at run time by
DynamicQuantizeLinear, MatMulInteger, then a float rescale).

Writes to OUT (default tests/fixtures/dynamic):
  bert_tiny.onnx            the float model
  bert_tiny_dynamic.onnx    ONNX Runtime's dynamic int8 of it
  io.safetensors            input_ids, attention_mask (i64[2, 11]) and ONNX Runtime's
                            outputs: expected.fp32 and expected.int8 (last_hidden_state)

Usage: python scripts/models/bert_dynamic.py [OUT]   (needs torch, transformers, onnx, onnxruntime, safetensors)
"""
import os
import sys

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import save_file
from transformers import BertConfig, BertModel


class Encoder(torch.nn.Module):
    """The encoder's last hidden state, called with positional tensors."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/dynamic"


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=200, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                     max_position_embeddings=64)
    m = BertModel(cfg, add_pooling_layer=False).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 200, (2, 11)).astype(np.int64)
    mask = np.ones((2, 11), np.int64)
    mask[1, 8:] = 0
    fp32, int8 = f"{OUT}/bert_tiny.onnx", f"{OUT}/bert_tiny_dynamic.onnx"
    with torch.no_grad():
        torch.onnx.export(Encoder(m), (torch.from_numpy(ids), torch.from_numpy(mask)), fp32,
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "last_hidden_state": {0: "batch", 1: "seq"}},
                          opset_version=17, dynamo=False)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
    feeds = {"input_ids": ids, "attention_mask": mask}
    y32 = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    y8 = ort.InferenceSession(int8, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    save_file({**feeds, "expected.fp32": y32, "expected.int8": y8}, f"{OUT}/io.safetensors")
    err = np.linalg.norm(y8 - y32) / np.linalg.norm(y32)
    print(f"ONNX Runtime dynamic int8 against fp32: relative error {err:.3e}")


if __name__ == "__main__":
    main()
