#!/usr/bin/env python3
"""Writes the benchmark's reference models as ONNX files (opset 17, fp32, random
weights from a fixed seed per model), written the way exporters write them:

- resnet18: ResNet-18 (conv + batch norm + relu, basic blocks 64-128-256-512,
  max pooling, global average pooling, a 1000-way Gemm), input 1x3x224x224.
- transformer: 4 post-norm encoder layers (d_model 256, 4 heads, ffn 1024, erf
  GELU, LayerNormalization), the heads split by Reshape/Transpose, input 1x128x256.
- lstm: 2 stacked LSTM nodes (input 128, hidden 256), 64 steps, batch 1.
- wavenet: 16 gated layers of dilated causal convolutions (kernel 2, dilations
  1..128 twice, 64 residual channels; a 64->128 conv split into tanh and sigmoid
  halves; 1x1 residual and skip convs), a relu/1x1/relu/1x1 head to 256 classes,
  input 1x64x4096.
- alphazero_b1, alphazero_b8: the AlphaZero policy/value tower (17 input planes,
  a 3x3 stem, 10 residual blocks of 128 channels on a 19x19 board, a policy head
  to 362 logits and a tanh value head), batch 1 and 8.
- matmul512, matmul1024: one MatMul of an input by a constant weight, n x n x n.
- resnet18_int8: resnet18 quantized by ONNX Runtime's quantize_static (QDQ,
  per-channel s8 weights, u8 activations, MinMax on 8 seeded random images).
- transformer_int8: transformer quantized by ONNX Runtime's quantize_dynamic (s8
  weights; u8 activations quantized at run time: DynamicQuantizeLinear,
  MatMulInteger).

Usage: make_models.py OUT_DIR [NAME...]   (default: every model; files OUT_DIR/NAME.onnx)
"""

import os
import sys
import tempfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Net:
    """A graph under construction: nodes, initializers and a seeded generator."""

    def __init__(self, name):
        self.name = name
        self.nodes = []
        self.inits = []
        # A fixed seed per model, independent of the order models are made in.
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.count = 0

    def fresh(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def weight(self, name, shape, fan_in):
        w = self.rng.standard_normal(shape) / np.sqrt(fan_in)
        self.inits.append(numpy_helper.from_array(w.astype(np.float32), name))
        return name

    def small(self, name, shape, mean=0.0, scale=0.1):
        v = mean + scale * self.rng.standard_normal(shape)
        self.inits.append(numpy_helper.from_array(np.asarray(v, np.float32), name))
        return name

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, name, n_out=1, **attrs):
        outs = [name] if n_out == 1 else [f"{name}.{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, inputs, outputs):
        g = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="smelt scripts/bench/make_models.py")
        m.ir_version = 8
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        return m

    # Layers -----------------------------------------------------------------

    def conv(self, x, cin, cout, k, name, stride=1, pad=None, dilation=1, bias=False, dims=2):
        ks = [k] * dims
        w = self.weight(f"{name}.weight", [cout, cin] + ks, cin * k ** dims)
        ins = [x, w] + ([self.small(f"{name}.bias", [cout])] if bias else [])
        pads = pad if pad is not None else [k // 2] * (2 * dims)
        return self.node("Conv", ins, name, kernel_shape=ks, strides=[stride] * dims, pads=pads,
                         dilations=[dilation] * dims)

    def bn(self, x, c, name):
        p = [self.small(f"{name}.scale", [c], mean=1.0), self.small(f"{name}.bias", [c]),
             self.small(f"{name}.mean", [c])]
        var = (0.5 + self.rng.random(c)).astype(np.float32)
        p.append(self.const(f"{name}.var", var))
        return self.node("BatchNormalization", [x] + p, name, epsilon=1e-5)

    def conv_bn(self, x, cin, cout, k, name, stride=1, relu=True):
        h = self.bn(self.conv(x, cin, cout, k, f"{name}.conv", stride=stride), cout, f"{name}.bn")
        return self.node("Relu", [h], f"{name}.relu") if relu else h

    def linear(self, x, fin, fout, name):
        """x[..., fin] @ W + b, as MatMul + Add (how exporters write nn.Linear on 3-d input)."""
        w = self.weight(f"{name}.weight", [fin, fout], fin)
        b = self.small(f"{name}.bias", [fout])
        return self.node("Add", [self.node("MatMul", [x, w], f"{name}.matmul"), b], f"{name}.add")

    def gemm(self, x, fin, fout, name):
        """nn.Linear on 2-d input: Gemm with a transposed weight."""
        w = self.weight(f"{name}.weight", [fout, fin], fin)
        b = self.small(f"{name}.bias", [fout])
        return self.node("Gemm", [x, w, b], name, transB=1)


def resnet18():
    n = Net("resnet18")
    h = n.conv_bn("input", 3, 64, 7, "conv1", stride=2)
    h = n.node("MaxPool", [h], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate([64, 128, 256, 512], start=1):
        for b in range(2):
            stride = 2 if stage > 1 and b == 0 else 1
            name = f"layer{stage}.{b}"
            y = n.conv_bn(h, cin, cout, 3, f"{name}.1", stride=stride)
            y = n.conv_bn(y, cout, cout, 3, f"{name}.2", relu=False)
            skip = h if stride == 1 and cin == cout else n.conv_bn(h, cin, cout, 1, f"{name}.down", stride=stride,
                                                                    relu=False)
            h = n.node("Relu", [n.node("Add", [y, skip], f"{name}.add")], f"{name}.relu")
            cin = cout
    h = n.node("GlobalAveragePool", [h], "avgpool")
    h = n.node("Flatten", [h], "flatten", axis=1)
    n.gemm(h, 512, 1000, "fc")
    return n.model([("input", [1, 3, 224, 224])], ["fc"])


def transformer(layers=4, d=256, heads=4, ffn=1024, seq=128):
    n = Net("transformer")
    dh = d // heads
    split = n.const("shape.split", np.array([1, seq, heads, dh], np.int64))
    merge = n.const("shape.merge", np.array([1, seq, d], np.int64))
    scale = n.const("attn.scale", np.array(np.sqrt(dh), np.float32))
    sqrt2 = n.const("gelu.sqrt2", np.array(np.sqrt(2.0), np.float32))
    one = n.const("gelu.one", np.array(1.0, np.float32))
    half = n.const("gelu.half", np.array(0.5, np.float32))
    h = "input"
    for i in range(layers):
        p = f"layers.{i}"

        def heads_of(x, what, perm):
            r = n.node("Reshape", [x, split], f"{p}.attn.{what}.reshape")
            return n.node("Transpose", [r], f"{p}.attn.{what}.transpose", perm=perm)

        q = heads_of(n.linear(h, d, d, f"{p}.attn.q"), "q", [0, 2, 1, 3])
        k = heads_of(n.linear(h, d, d, f"{p}.attn.k"), "k", [0, 2, 3, 1])
        v = heads_of(n.linear(h, d, d, f"{p}.attn.v"), "v", [0, 2, 1, 3])
        s = n.node("Div", [n.node("MatMul", [q, k], f"{p}.attn.scores"), scale], f"{p}.attn.scaled")
        a = n.node("Softmax", [s], f"{p}.attn.softmax", axis=-1)
        o = n.node("MatMul", [a, v], f"{p}.attn.context")
        o = n.node("Transpose", [o], f"{p}.attn.merge.transpose", perm=[0, 2, 1, 3])
        o = n.node("Reshape", [o, merge], f"{p}.attn.merge.reshape")
        o = n.linear(o, d, d, f"{p}.attn.out")
        h = n.node("Add", [h, o], f"{p}.attn.residual")
        h = n.node("LayerNormalization", [h, n.small(f"{p}.norm1.weight", [d], mean=1.0),
                                          n.small(f"{p}.norm1.bias", [d])], f"{p}.norm1", axis=-1, epsilon=1e-5)
        f = n.linear(h, d, ffn, f"{p}.ffn.1")
        g = n.node("Erf", [n.node("Div", [f, sqrt2], f"{p}.ffn.gelu.div")], f"{p}.ffn.gelu.erf")
        g = n.node("Mul", [f, n.node("Add", [g, one], f"{p}.ffn.gelu.add")], f"{p}.ffn.gelu.mul")
        g = n.node("Mul", [g, half], f"{p}.ffn.gelu.half")
        f = n.linear(g, ffn, d, f"{p}.ffn.2")
        h = n.node("Add", [h, f], f"{p}.ffn.residual")
        h = n.node("LayerNormalization", [h, n.small(f"{p}.norm2.weight", [d], mean=1.0),
                                          n.small(f"{p}.norm2.bias", [d])], f"{p}.norm2", axis=-1, epsilon=1e-5)
    return n.model([("input", [1, seq, d])], [h])


def lstm(layers=2, inp=128, hidden=256, seq=64):
    n = Net("lstm")
    x = "input"
    size = inp
    for i in range(layers):
        w = n.weight(f"lstm.{i}.W", [1, 4 * hidden, size], size)
        r = n.weight(f"lstm.{i}.R", [1, 4 * hidden, hidden], hidden)
        b = n.small(f"lstm.{i}.B", [1, 8 * hidden])
        y = n.node("LSTM", [x, w, r, b], f"lstm.{i}", hidden_size=hidden)
        # Y is [seq, num_directions, batch, hidden]; the next layer takes [seq, batch, hidden].
        x = n.node("Squeeze", [y, n.const(f"lstm.{i}.axes", np.array([1], np.int64))], f"lstm.{i}.squeeze")
        size = hidden
    return n.model([("input", [seq, 1, inp])], [x])


def wavenet(channels=64, classes=256, samples=4096, dilations=tuple([2 ** i for i in range(8)] * 2)):
    n = Net("wavenet")
    h = "input"
    skips = None
    halves = n.const("gate.split", np.array([channels, channels], np.int64))
    for i, d in enumerate(dilations):
        p = f"layers.{i}"
        # Causal: pad d zeros on the left only.
        c = n.conv(h, channels, 2 * channels, 2, f"{p}.dilated", pad=[d, 0], dilation=d, bias=True, dims=1)
        filt, gate = n.node("Split", [c, halves], f"{p}.split", n_out=2, axis=1)
        z = n.node("Mul", [n.node("Tanh", [filt], f"{p}.tanh"), n.node("Sigmoid", [gate], f"{p}.sigmoid")],
                   f"{p}.gated")
        skip = n.conv(z, channels, channels, 1, f"{p}.skip", pad=[0, 0], bias=True, dims=1)
        skips = skip if skips is None else n.node("Add", [skips, skip], f"{p}.skip_sum")
        res = n.conv(z, channels, channels, 1, f"{p}.residual", pad=[0, 0], bias=True, dims=1)
        h = n.node("Add", [h, res], f"{p}.out")
    o = n.node("Relu", [skips], "head.relu1")
    o = n.conv(o, channels, channels, 1, "head.conv1", pad=[0, 0], bias=True, dims=1)
    o = n.node("Relu", [o], "head.relu2")
    o = n.conv(o, channels, classes, 1, "head.conv2", pad=[0, 0], bias=True, dims=1)
    return n.model([("input", [1, channels, samples])], [o])


def alphazero(batch, blocks=10, channels=128, board=19, planes=17):
    n = Net(f"alphazero_b{batch}")
    h = n.conv_bn("input", planes, channels, 3, "stem")
    for b in range(blocks):
        y = n.conv_bn(h, channels, channels, 3, f"blocks.{b}.1")
        y = n.conv_bn(y, channels, channels, 3, f"blocks.{b}.2", relu=False)
        h = n.node("Relu", [n.node("Add", [y, h], f"blocks.{b}.add")], f"blocks.{b}.relu")
    cells = board * board
    p = n.conv_bn(h, channels, 2, 1, "policy")
    p = n.node("Flatten", [p], "policy.flatten", axis=1)
    p = n.gemm(p, 2 * cells, cells + 1, "policy.fc")
    v = n.conv_bn(h, channels, 1, 1, "value")
    v = n.node("Flatten", [v], "value.flatten", axis=1)
    v = n.node("Relu", [n.gemm(v, cells, 256, "value.fc1")], "value.fc1.relu")
    v = n.node("Tanh", [n.gemm(v, 256, 1, "value.fc2")], "value.tanh")
    return n.model([("input", [batch, planes, board, board])], [p, v])


def matmul(size):
    n = Net(f"matmul{size}")
    n.node("MatMul", ["input", n.weight("weight", [size, size], size)], "output")
    return n.model([("input", [size, size])], ["output"])


def quantized(base, static):
    """`base` quantized by ONNX Runtime's own tool, as its users quantize."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    m = MODELS[base]()
    with tempfile.TemporaryDirectory() as d:
        fp32, q = f"{d}/fp32.onnx", f"{d}/q.onnx"
        onnx.save(m, fp32)
        if static:
            rng = np.random.default_rng(1)
            inputs = [(i.name, [x.dim_value for x in i.type.tensor_type.shape.dim]) for i in m.graph.input]

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.it = iter([{n: rng.standard_normal(s).astype(np.float32) for n, s in inputs} for _ in range(8)])

                def get_next(self):
                    return next(self.it, None)

            quantize_static(fp32, q, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        else:
            quantize_dynamic(fp32, q, weight_type=QuantType.QInt8)
        return onnx.load(q)


MODELS = {
    "resnet18": resnet18,
    "transformer": transformer,
    "lstm": lstm,
    "wavenet": wavenet,
    "alphazero_b1": lambda: alphazero(1),
    "alphazero_b8": lambda: alphazero(8),
    "matmul512": lambda: matmul(512),
    "matmul1024": lambda: matmul(1024),
    "resnet18_int8": lambda: quantized("resnet18", True),
    "transformer_int8": lambda: quantized("transformer", False),
}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    unknown = [x for x in names if x not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    os.makedirs(out, exist_ok=True)
    for name in names:
        path = os.path.join(out, f"{name}.onnx")
        tmp = path + ".tmp"
        onnx.save(MODELS[name](), tmp)
        os.replace(tmp, path)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
