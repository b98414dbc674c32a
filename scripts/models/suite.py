#!/usr/bin/env python3
"""The real-model suite: architectures as users export them, run by smelt on every
backend and compared with ONNX Runtime.

Each model is built in PyTorch with random weights (torchvision models, Hugging
Face `transformers` architectures from small configs, GAN generators written
here), exported with `torch.onnx.export` (the TorchScript exporter, and the
dynamo exporter where asked) with dynamic axes, and run at two input sizes
(exercising the dynamic dims) by ONNX Runtime and by `smelt run MODEL --inputs
X --backend B` on each backend. A backend passes a model when every output at
both sizes has max|Δ| / max|expected| ≤ 1e-4.

Usage (a Python with torch, torchvision, transformers, onnx, onnxruntime,
safetensors; a built CLI):
  python scripts/models/suite.py [--models a,b] [--backends interp,cranelift,llvm,wgsl]
                                 [--smelt target/release/smelt] [--out target/models] [--markdown]
Prints one row per model: exporter, opset, the result on each backend (`ok` with
the worst relative error, or the first line of the error). `--list` names the models.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

TOL = 1e-4


# ---------------------------------------------------------------- the models

def tv(name, **kw):
    def make():
        import torchvision
        return getattr(torchvision.models, name)(weights=None, **kw)
    return make


def tv_seg(name, **kw):
    def make():
        import torch
        import torchvision

        class Out(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, **kw)

            def forward(self, x):
                return self.m(x)["out"]
        return Out()
    return make


def image(sizes, dynamic=True):
    """Inputs `x: [N, 3, H, W]` at each (N, H, W); dynamic batch (and spatial dims)."""
    axes = {0: "N", 2: "H", 3: "W"} if dynamic else {0: "N"}
    return {"inputs": [("x", [[n, 3, h, w] for n, h, w in sizes], "float32")], "axes": {"x": axes}}


def dcgan():
    import torch.nn as nn
    nz, ngf = 16, 8
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())


def sagan():
    import torch
    import torch.nn as nn

    class SelfAttention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.q, self.k = nn.Conv2d(c, c // 8, 1), nn.Conv2d(c, c // 8, 1)
            self.v, self.gamma = nn.Conv2d(c, c, 1), nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            n, c, h, w = x.shape
            q = self.q(x).flatten(2).transpose(1, 2)
            k = self.k(x).flatten(2)
            a = torch.softmax(torch.bmm(q, k), dim=-1)
            o = torch.bmm(self.v(x).flatten(2), a.transpose(1, 2)).view(n, c, h, w)
            return x + self.gamma * o

    class Gen(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 32 * 4 * 4)
            self.up1 = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU())
            self.att = SelfAttention(32)
            self.up2 = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(32, 16, 3, padding=1),
                                     nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1), nn.Tanh())

        def forward(self, z):
            return self.up2(self.att(self.up1(self.fc(z).view(-1, 32, 4, 4))))
    return Gen()


def latent(dims):
    return lambda sizes: {"inputs": [("z", [[n] + dims for n in sizes], "float32")], "axes": {"z": {0: "N"}}}


def hf(kind, **cfg):
    """A `transformers` model from a small config with random weights; its logits
    (or last hidden state) as the output."""
    def make():
        import torch
        import transformers as t
        config = getattr(t, kind + "Config")(**cfg)
        # Attention written out (as the TorchScript exporter needs for GQA).
        model = getattr(t, kind + "Model")._from_config(config, attn_implementation="eager")

        class Out(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = model

            def forward(self, ids):
                return self.m(input_ids=ids, return_dict=True).last_hidden_state
        return Out()
    return make


def hfm(cls, config_cls, inputs, out=lambda o: o.last_hidden_state, **cfg):
    """A `transformers` model of class `cls` from a small `config_cls` with random
    weights, called with keyword inputs named as `inputs`; `out` picks the output."""
    def make():
        import torch
        import transformers as t
        config = getattr(t, config_cls)(**cfg)
        model = getattr(t, cls)._from_config(config, attn_implementation="eager")

        class Out(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = model

            def forward(self, *xs):
                return out(self.m(**dict(zip(inputs, xs)), return_dict=True))
        return Out()
    return make


def gpt2_past():
    """A GPT-2 decoder step with past keys and values (as generation runs it):
    inputs the new token ids and each layer's cached keys and values, outputs the
    hidden states and the extended caches."""
    import torch
    import transformers as t
    cfg = t.GPT2Config(vocab_size=500, n_embd=64, n_layer=2, n_head=4, n_positions=64)
    model = t.GPT2Model._from_config(cfg, attn_implementation="eager")

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, ids, *past):
            cache = t.DynamicCache(config=cfg)
            for layer in range(cfg.n_layer):
                cache.update(past[2 * layer], past[2 * layer + 1], layer)
            p = past[0].shape[2]
            pos = torch.arange(p, p + ids.shape[1]).unsqueeze(0)
            o = self.m(input_ids=ids, past_key_values=cache, position_ids=pos, use_cache=True, return_dict=True)
            outs = [o.last_hidden_state]
            for layer in o.past_key_values.layers:
                outs += [layer.keys, layer.values]
            return tuple(outs)
    return Step()


def gpt2_past_inputs(sizes):
    """ids [batch, new] and 2 layers' keys and values [batch, 4 heads, past, 16]."""
    past = [(f"past_{l}_{kv}", [[b, 4, p, 16] for b, _, p in sizes], "float32") for l in range(2) for kv in ("k", "v")]
    axes = {"ids": {0: "batch", 1: "new"}}
    axes.update({n: {0: "batch", 2: "past"} for n, _, _ in past})
    return {"inputs": [("ids", [[b, n] for b, n, _ in sizes], "int64", 500)] + past, "axes": axes}


def floats(name, axes):
    """One float input `name` at the given shapes; `axes` its dynamic axes."""
    return lambda shapes: {"inputs": [(name, shapes, "float32")], "axes": {name: axes}}


def seq2seq(vocab):
    """Encoder ids [batch, sequence] and decoder ids [batch, target]."""
    return lambda sizes: {"inputs": [("ids", [[b, t] for b, t, _ in sizes], "int64", vocab),
                                     ("decoder_ids", [[b, u] for b, _, u in sizes], "int64", vocab)],
                          "axes": {"ids": {0: "batch", 1: "sequence"}, "decoder_ids": {0: "batch", 1: "target"}}}


def tokens(vocab):
    return lambda sizes: {"inputs": [("ids", [[b, t] for b, t in sizes], "int64", vocab)],
                          "axes": {"ids": {0: "batch", 1: "sequence"}}}


def raft():
    """torchvision's RAFT (small) with 3 refinement steps: GridSample at every
    step; the last flow field is the output."""
    import torch
    import torchvision

    class Last(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = torchvision.models.optical_flow.raft_small(weights=None)

        def forward(self, a, b):
            return self.m(a, b, num_flow_updates=3)[-1]
    return Last()


def image_pair(sizes):
    """Two images `[N, 3, H, W]` (sides multiples of 8), dynamic batch and spatial dims."""
    shapes = [[n, 3, h, w] for n, h, w in sizes]
    axes = {0: "N", 2: "H", 3: "W"}
    return {"inputs": [("a", shapes, "float32"), ("b", shapes, "float32")], "axes": {"a": axes, "b": axes}}


def loop_rnn():
    """A recurrent cell in a Python loop over the sequence: scripted for the
    TorchScript exporter (an ONNX Loop, its trip count the sequence length),
    unrolled by the dynamo exporter."""
    import torch

    class LoopRNN(torch.nn.Module):
        script = True

        def __init__(self):
            super().__init__()
            self.cell = torch.nn.Linear(32, 16)

        def forward(self, x):
            h = torch.zeros(x.shape[0], 16)
            for t in range(x.shape[1]):
                h = torch.tanh(self.cell(torch.cat([x[:, t], h], 1)))
            return h
    return LoopRNN()


def spectrogram():
    """A power spectrogram (torch.stft with a Hann window): ONNX STFT."""
    import torch

    class Spec(torch.nn.Module):
        def forward(self, x):
            s = torch.stft(x, n_fft=64, hop_length=16, window=torch.hann_window(64), center=False, return_complex=False)
            return (s ** 2).sum(-1)
    return Spec()


def stn():
    """A spatial transformer: a small localization net's affine grid resamples the
    image (AffineGrid, GridSample), then a conv."""
    import torch

    class STN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.loc = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 6))
            self.head = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            theta = self.loc(x).view(-1, 2, 3)
            grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
            return self.head(torch.nn.functional.grid_sample(x, grid, align_corners=False))
    return STN()


def deform_conv():
    """torchvision's DeformConv2d with offsets from a conv (ONNX DeformConv; the
    TorchScript exporter has no symbolic for it)."""
    import torch
    import torchvision

    class DCN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.off = torch.nn.Conv2d(4, 18, 3, padding=1)
            self.dc = torchvision.ops.DeformConv2d(4, 6, 3, padding=1)

        def forward(self, x):
            return self.dc(x, self.off(x))
    return DCN()


def masked():
    """Boolean-mask indexing and torch.nonzero (ONNX NonZero, GatherND): outputs
    whose sizes depend on the data."""
    import torch

    class Masked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 4)

        def forward(self, x):
            rows = self.fc(x[x.sum(1) > 0])  # the rows whose sum is positive
            return rows.relu().sum(0), torch.nonzero(x > 0.5), x[x < -1.0]
    return Masked()


def nms_head():
    """A tiny detector: per-cell boxes and scores from convs, then
    torchvision.ops.nms (ONNX NonMaxSuppression); the boxes kept, and their
    number, depend on the data."""
    import torch
    import torchvision

    class Det(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.head = torch.nn.Conv2d(8, 5, 1)

        def forward(self, x):
            h = self.head(torch.relu(self.body(x))).flatten(2)[0].t()  # [H*W, 5]
            cx = torch.arange(h.shape[0], dtype=torch.float32) % x.shape[3]
            cy = torch.div(torch.arange(h.shape[0]), x.shape[3], rounding_mode="floor").float()
            wh = torch.exp(h[:, 2:4].clamp(-2, 2)) * 2
            x0, y0 = cx + h[:, 0] - wh[:, 0] / 2, cy + h[:, 1] - wh[:, 1] / 2
            boxes = torch.stack([x0, y0, x0 + wh[:, 0], y0 + wh[:, 1]], 1)
            scores = torch.sigmoid(h[:, 4])
            keep = torchvision.ops.nms(boxes, scores, 0.4)
            return boxes[keep], scores[keep]
    return Det()


def planes(c):
    """Inputs `x: [N, c, H, W]` at each (N, H, W), all dims dynamic."""
    return lambda sizes: {"inputs": [("x", [[n, c, h, w] for n, h, w in sizes], "float32")],
                          "axes": {"x": {0: "N", 2: "H", 3: "W"}}}


# Ops newer than the suite's opset: the export uses at least this one.
MIN_OPSET = {"stn": 20, "deform_conv": 19}


SUITE = {
    # name: (constructor, inputs(sizes), sizes)
    "resnet18": (tv("resnet18"), image, [(1, 64, 64), (2, 96, 80)]),
    "mobilenet_v2": (tv("mobilenet_v2"), image, [(1, 64, 64), (2, 96, 80)]),
    "mobilenet_v3_small": (tv("mobilenet_v3_small"), image, [(1, 64, 64), (2, 96, 80)]),
    "efficientnet_b0": (tv("efficientnet_b0"), image, [(1, 64, 64), (2, 96, 80)]),
    "regnet_y_400mf": (tv("regnet_y_400mf"), image, [(1, 64, 64), (2, 96, 80)]),
    "convnext_tiny": (tv("convnext_tiny"), image, [(1, 64, 64), (2, 96, 96)]),
    "squeezenet1_1": (tv("squeezenet1_1"), image, [(1, 64, 64), (2, 96, 80)]),
    "shufflenet_v2_x0_5": (tv("shufflenet_v2_x0_5"), image, [(1, 64, 64), (2, 96, 96)]),
    "vit_tiny": (lambda: __import__("torchvision").models.VisionTransformer(
        image_size=64, patch_size=16, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128),
        lambda s: image(s, dynamic=False), [(1, 64, 64), (3, 64, 64)]),
    # MaxViT's block and grid partitions need sides divisible by 7·32.
    "maxvit_t": (tv("maxvit_t"), lambda s: image(s, dynamic=False), [(1, 224, 224), (2, 224, 224)]),
    "swin_t": (tv("swin_t"), lambda s: image(s, dynamic=False), [(1, 64, 64), (2, 64, 64)]),
    "deeplabv3_mobilenet_v3_large": (tv_seg("deeplabv3_mobilenet_v3_large"), image, [(1, 64, 64), (2, 96, 80)]),
    "lraspp_mobilenet_v3_large": (tv_seg("lraspp_mobilenet_v3_large"), image, [(1, 64, 64), (2, 96, 80)]),
    "fcn_resnet50": (tv_seg("fcn_resnet50"), image, [(1, 64, 64), (1, 80, 72)]),
    "dcgan_generator": (dcgan, latent([16, 1, 1]), [1, 3]),
    "sagan_generator": (sagan, latent([16]), [1, 3]),
    "bert": (hf("Bert", vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=128, max_position_embeddings=64), tokens(500), [(1, 7), (2, 12)]),
    "distilbert": (hf("DistilBert", vocab_size=500, dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                      max_position_embeddings=64), tokens(500), [(1, 7), (2, 12)]),
    "gpt2": (hf("GPT2", vocab_size=500, n_embd=64, n_layer=2, n_head=4, n_positions=64), tokens(500), [(1, 7), (2, 12)]),
    "llama": (hf("Llama", vocab_size=500, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64), tokens(500), [(1, 7), (2, 12)]),
    "gpt2_past": (gpt2_past, gpt2_past_inputs, [(1, 1, 5), (2, 3, 9)]),
    "t5_encoder": (hfm("T5EncoderModel", "T5Config", ["input_ids"], vocab_size=500, d_model=64, d_kv=16, d_ff=128,
                       num_layers=2, num_heads=4), tokens(500), [(1, 7), (2, 12)]),
    "t5": (hfm("T5Model", "T5Config", ["input_ids", "decoder_input_ids"], vocab_size=500, d_model=64, d_kv=16,
               d_ff=128, num_layers=2, num_heads=4), seq2seq(500), [(1, 7, 3), (2, 12, 5)]),
    "whisper": (hfm("WhisperModel", "WhisperConfig", ["input_features", "decoder_input_ids"], vocab_size=500,
                    num_mel_bins=16, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=32,
                    max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                    decoder_start_token_id=1),
                lambda sizes: {"inputs": [("features", [[n, 16, 64] for n, _ in sizes], "float32"),
                                          ("decoder_ids", [[n, u] for n, u in sizes], "int64", 500)],
                               "axes": {"features": {0: "N"}, "decoder_ids": {0: "N", 1: "target"}}},
                [(1, 3), (2, 6)]),
    "clip_text": (hfm("CLIPTextModel", "CLIPTextConfig", ["input_ids"], vocab_size=500, hidden_size=64,
                      intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=32),
                  tokens(500), [(1, 7), (2, 12)]),
    "clip_vision": (hfm("CLIPVisionModel", "CLIPVisionConfig", ["pixel_values"], image_size=32, patch_size=8,
                        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
                    lambda s: image(s, dynamic=False), [(1, 32, 32), (2, 32, 32)]),
    "vit_hf": (hfm("ViTModel", "ViTConfig", ["pixel_values"], image_size=32, patch_size=8, hidden_size=64,
                   intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
               lambda s: image(s, dynamic=False), [(1, 32, 32), (2, 32, 32)]),
    "wav2vec2": (hfm("Wav2Vec2Model", "Wav2Vec2Config", ["input_values"], hidden_size=64, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=128, conv_dim=(32, 32), conv_stride=(5, 2),
                     conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
                 floats("audio", {0: "N", 1: "samples"}), [[1, 800], [2, 1200]]),
    "raft_small": (raft, image_pair, [(1, 128, 128), (1, 144, 160)]),
    "loop_rnn": (loop_rnn, floats("x", {0: "N", 1: "T"}), [[1, 7, 16], [3, 7, 16]]),
    "spectrogram": (spectrogram, floats("x", {0: "N", 1: "samples"}), [[1, 400], [2, 640]]),
    "stn": (stn, planes(3), [(1, 24, 28), (2, 24, 28)]),
    "deform_conv": (deform_conv, planes(4), [(1, 10, 12), (2, 14, 16)]),
    "masked": (masked, floats("x", {0: "N"}), [[9, 6], [13, 6]]),
    "nms_head": (nms_head, lambda sizes: {"inputs": [("x", [[1, 3, h, w] for h, w in sizes], "float32")],
                                          "axes": {"x": {2: "H", 3: "W"}}}, [(6, 7), (9, 8)]),
}


# ---------------------------------------------------------------- export and run

def export(name, out, opset, dynamo):
    import torch
    make, spec, sizes = SUITE[name]
    opset = max(opset, MIN_OPSET.get(name, opset))
    torch.manual_seed(0)
    # nn.MultiheadAttention's fused inference path has no ONNX export.
    torch.backends.mha.set_fastpath_enabled(False)
    m = make().eval()
    if getattr(m, "script", False) and not dynamo:
        m = torch.jit.script(m)
    # Parameters a model initializes to zero (torchvision ViT's head, some
    # residual branches) would make its output constant and the comparison
    # vacuous: they get small random values.
    with torch.no_grad():
        for p in m.parameters():
            if p.numel() > 1 and not bool(p.any()):
                p.normal_(0.0, 0.02)
    s = spec(sizes)
    rng = np.random.default_rng(0)
    feeds = []
    for k in range(len(sizes)):
        f = {}
        for inp in s["inputs"]:
            n, shapes, dt = inp[0], inp[1], inp[2]
            if dt == "int64":
                f[n] = rng.integers(0, inp[3], size=shapes[k]).astype(np.int64)
            else:
                f[n] = rng.standard_normal(shapes[k]).astype(np.float32)
        feeds.append(f)
    names = [i[0] for i in s["inputs"]]
    # The dynamo exporter specializes dims of size 1 (torch.export's 0/1 rule):
    # its example is the larger size.
    args = tuple(torch.from_numpy(feeds[-1 if dynamo else 0][n]) for n in names)
    path = os.path.join(out, f"{name}.onnx")
    with torch.no_grad():
        if dynamo:
            # Named dims first; where torch.export finds constraints on them (a
            # spatial size divisible by 32, say) it refuses, and Dim.AUTO lets it
            # keep what it can dynamic (a dim it fixes then fails at the second
            # size, in ONNX Runtime as in smelt, and is reported so).
            try:
                dyn = by_position(m, [{a: torch.export.Dim(d) for a, d in s["axes"][n].items()} for n in names])
                torch.onnx.export(m, args, path, input_names=names, output_names=["y"], dynamic_shapes=dyn,
                                  opset_version=opset, dynamo=True, external_data=False)
            except Exception:
                dyn = by_position(m, [{a: torch.export.Dim.AUTO for a in s["axes"][n]} for n in names])
                torch.onnx.export(m, args, path, input_names=names, output_names=["y"], dynamic_shapes=dyn,
                                  opset_version=opset, dynamo=True, external_data=False)
        else:
            torch.onnx.export(m, args, path, input_names=names, output_names=["y"], dynamic_axes=s["axes"],
                              opset_version=opset, dynamo=False)
    return path, feeds


def by_position(m, specs):
    """torch.export's dynamic shapes in the structure of `m.forward`'s parameters:
    one per named positional parameter, then a tuple for `*args` (a module's
    `forward(*xs)` has no names to key a dict by)."""
    import inspect
    params = list(inspect.signature(m.forward).parameters.values())
    k = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return tuple(specs[:k]) + (tuple(specs[k:]),)
    return tuple(specs)


def run_smelt(smelt, model, feeds, backend, out, timeout):
    from safetensors.numpy import load_file, save_file
    import onnxruntime as ort
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    worst = 0.0
    for k, f in enumerate(feeds):
        try:
            want = sess.run(None, f)
        except Exception as e:
            return f"ONNX Runtime fails at size {k + 1} too (the exporter fixed a dim?): {str(e).splitlines()[0][:100]}"
        inp = os.path.join(out, f"in{k}.safetensors")
        save_file(f, inp)
        res = os.path.join(out, f"out{k}.{backend}.safetensors")
        if os.path.exists(res):
            os.remove(res)
        try:
            p = subprocess.run([smelt, "run", model, "--inputs", inp, "--backend", backend, "-o", res],
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"timeout after {timeout} s"
        if p.returncode != 0:
            lines = [l.strip() for l in p.stderr.splitlines() if l.strip()]
            if not lines:
                return f"exit {p.returncode}"
            # `error: FILE: …:` headers say more with their first item.
            first = lines[0].replace(model, "MODEL")
            if first.endswith(":") and len(lines) > 1:
                first += " " + lines[1]
            return first[:200]
        got = load_file(res)
        outs = [o.name for o in sess.get_outputs()]
        for n, w in zip(outs, want):
            if n not in got:
                return f"output `{n}` missing"
            g = got[n]
            if g.shape != w.shape:
                return f"output `{n}`: shape {g.shape}, expected {w.shape}"
            if w.size > 1 and float(np.ptp(w.astype(np.float64))) == 0.0:
                return f"output `{n}` of ONNX Runtime is constant: the comparison would be vacuous"
            scale = max(float(np.abs(w).max()), 1e-30)
            err = float(np.abs(g.astype(np.float64) - w.astype(np.float64)).max()) / scale
            if not np.isfinite(err):
                return f"output `{n}`: non-finite values"
            worst = max(worst, err)
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(SUITE))
    ap.add_argument("--backends", default="interp,cranelift,llvm,wgsl")
    ap.add_argument("--smelt", default="target/release/smelt")
    ap.add_argument("--out", default="target/models")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--dynamo", action="store_true", help="the dynamo exporter (default: TorchScript)")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args()
    if a.list:
        print("\n".join(SUITE))
        return 0
    import torch
    import onnxruntime as ort
    backends = a.backends.split(",")
    exporter = "dynamo" if a.dynamo else "torchscript"
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, exporter {exporter}, opset {a.opset}", flush=True)
    header = f"| model | exporter | opset | " + " | ".join(backends) + " |"
    print(header)
    print("|" + "---|" * (3 + len(backends)))
    results = []
    failed = 0
    for name in a.models.split(","):
        d = os.path.join(a.out, exporter, name)
        os.makedirs(d, exist_ok=True)
        opset = max(a.opset, MIN_OPSET.get(name, a.opset))
        row = {"model": name, "exporter": exporter, "opset": opset, "backends": {}}
        t0 = time.time()
        try:
            path, feeds = export(name, d, a.opset, a.dynamo)
        except Exception as e:  # an export failure is the exporter's, reported as such
            # The innermost cause says more than torch.onnx's wrapper.
            while e.__cause__ is not None:
                e = e.__cause__
            first = next((l.strip() for l in str(e).splitlines() if l.strip()), "")
            msg = f"export failed: {type(e).__name__}: {first[:120]}"
            row["export_error"] = msg
            print(f"| {name} | {exporter} | {opset} | " + " | ".join(["(" + msg + ")"] + [""] * (len(backends) - 1)) + " |", flush=True)
            results.append(row)
            continue
        cells = []
        for b in backends:
            r = run_smelt(a.smelt, path, feeds, b, d, a.timeout)
            row["backends"][b] = r
            if isinstance(r, float) and r <= TOL:
                cells.append(f"ok ({r:.0e})")
            else:
                failed += 1
                cells.append(f"{r:.1e} > {TOL:.0e}" if isinstance(r, float) else r.replace("|", "\\|"))
        row["seconds"] = round(time.time() - t0, 1)
        results.append(row)
        print(f"| {name} | {exporter} | {opset} | " + " | ".join(cells) + " |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
