"""The BERT-base-size encoder the benchmarks share (dynamic.py, sparse_bert.py):
a Hugging Face `transformers` BertModel built from its config with random
weights (seed 0; hidden 768, 12 heads, intermediate 3072), exported with
torch.onnx (TorchScript exporter, opset 17, batch 1) with the attention mask as
an input and the last hidden state as the output."""
import numpy as np
import torch
from transformers import BertConfig, BertModel


class Encoder(torch.nn.Module):
    """The encoder's last hidden state, called with positional tensors."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export(path, layers=12, seq=128):
    """Writes the encoder with `layers` layers to `path`; returns the feeds it
    was exported with (random token ids, a full mask)."""
    torch.manual_seed(0)
    cfg = BertConfig(num_hidden_layers=layers, hidden_size=768, num_attention_heads=12, intermediate_size=3072)
    m = BertModel(cfg, add_pooling_layer=False).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg.vocab_size, (1, seq)).astype(np.int64)
    mask = np.ones((1, seq), np.int64)
    with torch.no_grad():
        torch.onnx.export(Encoder(m), (torch.from_numpy(ids), torch.from_numpy(mask)), path, input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False)
    return {"input_ids": ids, "attention_mask": mask}
