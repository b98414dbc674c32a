#!/usr/bin/env python3
"""Makes three small ONNX models (opset 17, fixed seed) with inputs and expected
outputs, for frontends/tests/onnx_models.rs:

- resnet: a small ResNet-style CNN (conv + batch norm + relu stem, two residual
  blocks, one strided with a 1x1 projection, max pooling, global average pooling, a
  classifier); the batch dim is symbolic (`N`) and the flatten before the
  classifier is a Shape -> Gather -> Unsqueeze -> Concat -> Reshape subgraph, as
  exporters write it.
- transformer: a pre-norm transformer encoder layer (layer norm, multi-head
  attention with the head split written as shape subgraphs, a causal mask, an
  erf-GELU MLP, residual adds) over a symbolic batch (`B`).
- unet: a small U-Net-style decoder over a symbolic batch (`N`) with Resize as
  torch.onnx writes it: nearest upsampling by scales (`asymmetric`, `floor`),
  bilinear to sizes given as Concat(Shape(x)[:2], [H, W]) (`pytorch_half_pixel`),
  and a cubic `align_corners` downsampling by scales (to whole sizes: where
  scale x size is fractional, the ONNX reference departs from the ONNX spec and
  ONNX Runtime, see docs/ops.md); skip concatenation.

Expected outputs come from onnx's reference evaluator. Each model goes to
OUT/NAME/model.onnx with OUT/NAME/input_0.pb and OUT/NAME/output_0.pb
(TensorProtos). Usage: make_models.py OUT
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OPSET = 17
rng = np.random.default_rng(20261127)


def init(name, shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    s = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
    return numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def resnet():
    nodes, inits = [], []

    def conv_bn(x, cin, cout, k, stride, name, relu=True):
        inits.append(init(f"{name}.w", [cout, cin, k, k]))
        inits.append(const(f"{name}.bn.scale", (1 + 0.1 * rng.standard_normal(cout)).astype(np.float32)))
        inits.append(const(f"{name}.bn.bias", (0.1 * rng.standard_normal(cout)).astype(np.float32)))
        inits.append(const(f"{name}.bn.mean", (0.1 * rng.standard_normal(cout)).astype(np.float32)))
        inits.append(const(f"{name}.bn.var", (0.5 + rng.random(cout)).astype(np.float32)))
        nodes.append(helper.make_node("Conv", [x, f"{name}.w"], [f"{name}.c"], kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4, name=f"{name}/conv"))
        nodes.append(helper.make_node("BatchNormalization", [f"{name}.c"] + [f"{name}.bn.{p}" for p in
                                      ("scale", "bias", "mean", "var")], [f"{name}.bn"], epsilon=1e-5,
                                      name=f"{name}/bn"))
        if not relu:
            return f"{name}.bn"
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.r"], name=f"{name}/relu"))
        return f"{name}.r"

    def block(x, cin, cout, stride, name):
        h = conv_bn(x, cin, cout, 3, stride, f"{name}.a")
        h = conv_bn(h, cout, cout, 3, 1, f"{name}.b", relu=False)
        skip = x if stride == 1 and cin == cout else conv_bn(x, cin, cout, 1, stride, f"{name}.proj", relu=False)
        nodes.append(helper.make_node("Add", [h, skip], [f"{name}.sum"], name=f"{name}/add"))
        nodes.append(helper.make_node("Relu", [f"{name}.sum"], [f"{name}.out"], name=f"{name}/out"))
        return f"{name}.out"

    h = conv_bn("x", 3, 8, 3, 1, "stem")
    nodes.append(helper.make_node("MaxPool", [h], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"))
    h = block("pool", 8, 8, 1, "layer1")
    h = block(h, 8, 16, 2, "layer2")
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["gap"], name="gap"))
    # Flatten written as a shape subgraph over the symbolic batch.
    inits += [const("zero", np.array(0, np.int64)), const("axes0", np.array([0], np.int64)),
              const("minus1", np.array([-1], np.int64))]
    nodes += [
        helper.make_node("Shape", ["gap"], ["gap.shape"], name="flatten/shape"),
        helper.make_node("Gather", ["gap.shape", "zero"], ["batch"], axis=0, name="flatten/batch"),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="flatten/unsqueeze"),
        helper.make_node("Concat", ["batch1", "minus1"], ["flat.shape"], axis=0, name="flatten/concat"),
        helper.make_node("Reshape", ["gap", "flat.shape"], ["flat"], name="flatten/reshape"),
    ]
    inits += [init("fc.w", [10, 16]), const("fc.b", (0.1 * rng.standard_normal(10)).astype(np.float32))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1, name="fc"))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"))
    graph = helper.make_graph(
        nodes, "resnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])],
        inits)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    return graph, x


def transformer():
    d, heads, t, ff = 32, 4, 8, 64
    hd = d // heads
    nodes, inits = [], []

    def layer_norm(x, name):
        inits.append(const(f"{name}.g", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)))
        inits.append(const(f"{name}.b", (0.1 * rng.standard_normal(d)).astype(np.float32)))
        nodes.append(helper.make_node("LayerNormalization", [x, f"{name}.g", f"{name}.b"], [f"{name}.y"],
                                      axis=-1, epsilon=1e-5, name=name))
        return f"{name}.y"

    def linear(x, n_in, n_out, name):
        inits.append(init(f"{name}.w", [n_in, n_out], 1.0 / np.sqrt(n_in)))
        inits.append(const(f"{name}.b", (0.02 * rng.standard_normal(n_out)).astype(np.float32)))
        nodes.append(helper.make_node("MatMul", [x, f"{name}.w"], [f"{name}.mm"], name=f"{name}/matmul"))
        nodes.append(helper.make_node("Add", [f"{name}.mm", f"{name}.b"], [f"{name}.y"], name=f"{name}/add"))
        return f"{name}.y"

    inits += [const("i0", np.array(0, np.int64)), const("ax0", np.array([0], np.int64)),
              const("rest", np.array([t, heads, hd], np.int64)), const("merge", np.array([t, d], np.int64))]
    nodes += [
        helper.make_node("Shape", ["x"], ["x.shape"], name="shape"),
        helper.make_node("Gather", ["x.shape", "i0"], ["b"], axis=0, name="batch"),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"], name="batch1"),
        helper.make_node("Concat", ["b1", "rest"], ["split.shape"], axis=0, name="split_shape"),
        helper.make_node("Concat", ["b1", "merge"], ["merge.shape"], axis=0, name="merge_shape"),
    ]
    h = layer_norm("x", "ln1")
    qkv = {}
    for p in ("q", "k", "v"):
        y = linear(h, d, d, f"attn.{p}")
        nodes.append(helper.make_node("Reshape", [y, "split.shape"], [f"{p}.heads"], name=f"{p}/split"))
        perm = [0, 2, 3, 1] if p == "k" else [0, 2, 1, 3]
        nodes.append(helper.make_node("Transpose", [f"{p}.heads"], [f"{p}.t"], perm=perm, name=f"{p}/transpose"))
        qkv[p] = f"{p}.t"
    mask = np.triu(np.full((t, t), -1e9, np.float32), k=1)
    inits += [const("scale", np.array(1.0 / np.sqrt(hd), np.float32)), const("mask", mask)]
    nodes += [
        helper.make_node("MatMul", [qkv["q"], qkv["k"]], ["scores"], name="scores"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scaled"),
        helper.make_node("Add", ["scaled", "mask"], ["masked"], name="masked"),
        helper.make_node("Softmax", ["masked"], ["attn"], axis=-1, name="attn"),
        helper.make_node("MatMul", ["attn", qkv["v"]], ["ctx"], name="ctx"),
        helper.make_node("Transpose", ["ctx"], ["ctx.t"], perm=[0, 2, 1, 3], name="ctx/transpose"),
        helper.make_node("Reshape", ["ctx.t", "merge.shape"], ["ctx.m"], name="ctx/merge"),
    ]
    o = linear("ctx.m", d, d, "attn.o")
    nodes.append(helper.make_node("Add", ["x", o], ["res1"], name="res1"))
    h = layer_norm("res1", "ln2")
    u = linear(h, d, ff, "mlp.up")
    # GELU with erf, as opset 17 exporters write it.
    inits += [const("sqrt2", np.array(np.sqrt(2.0), np.float32)), const("one", np.array(1.0, np.float32)),
              const("half", np.array(0.5, np.float32))]
    nodes += [
        helper.make_node("Div", [u, "sqrt2"], ["g.div"], name="gelu/div"),
        helper.make_node("Erf", ["g.div"], ["g.erf"], name="gelu/erf"),
        helper.make_node("Add", ["g.erf", "one"], ["g.add"], name="gelu/add"),
        helper.make_node("Mul", [u, "g.add"], ["g.mul"], name="gelu/mul"),
        helper.make_node("Mul", ["g.mul", "half"], ["g.y"], name="gelu/half"),
    ]
    dn = linear("g.y", ff, d, "mlp.down")
    nodes.append(helper.make_node("Add", ["res1", dn], ["y"], name="res2"))
    graph = helper.make_graph(
        nodes, "transformer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", t, d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", t, d])],
        inits)
    x = rng.standard_normal((2, t, d)).astype(np.float32)
    return graph, x


def unet():
    nodes, inits = [], []

    def conv(x, cin, cout, name, relu=True):
        inits.append(init(f"{name}.w", [cout, cin, 3, 3]))
        inits.append(const(f"{name}.b", (0.1 * rng.standard_normal(cout)).astype(np.float32)))
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.c"], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1], name=f"{name}/conv"))
        if not relu:
            return f"{name}.c"
        nodes.append(helper.make_node("Relu", [f"{name}.c"], [f"{name}.r"], name=f"{name}/relu"))
        return f"{name}.r"

    e1 = conv("x", 4, 8, "enc1")
    nodes.append(helper.make_node("MaxPool", [e1], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"))
    e2 = conv("pool", 8, 8, "enc2")
    inits.append(const("up1.scales", np.array([1, 1, 2, 2], np.float32)))
    nodes.append(helper.make_node("Resize", [e2, "", "up1.scales"], ["up1"], mode="nearest",
                                  coordinate_transformation_mode="asymmetric", nearest_mode="floor", name="up1"))
    nodes.append(helper.make_node("Concat", ["up1", e1], ["cat"], axis=1, name="cat"))
    d1 = conv("cat", 16, 8, "dec1")
    inits += [const("start0", np.array([0], np.int64)), const("end2", np.array([2], np.int64)),
              const("hw", np.array([18, 22], np.int64))]
    nodes += [
        helper.make_node("Shape", [d1], ["d1.shape"], name="up2/shape"),
        helper.make_node("Slice", ["d1.shape", "start0", "end2"], ["d1.nc"], name="up2/slice"),
        helper.make_node("Concat", ["d1.nc", "hw"], ["up2.sizes"], axis=0, name="up2/sizes"),
        helper.make_node("Resize", [d1, "", "", "up2.sizes"], ["up2"], mode="linear",
                         coordinate_transformation_mode="pytorch_half_pixel", name="up2"),
    ]
    inits.append(const("down.scales", np.array([1, 1, 0.5, 0.5], np.float32)))
    nodes.append(helper.make_node("Resize", ["up2", "", "down.scales"], ["down"], mode="cubic",
                                  coordinate_transformation_mode="align_corners", name="down"))
    y = conv("down", 8, 3, "head", relu=False)
    nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "unet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 12, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 9, 11])],
        inits)
    x = rng.standard_normal((2, 4, 12, 10)).astype(np.float32)
    return graph, x


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "target/onnx-test-data/models"
    for name, make in (("resnet", resnet), ("transformer", transformer), ("unet", unet)):
        graph, x = make()
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="smelt")
        onnx.checker.check_model(model, full_check=True)
        (y,) = ReferenceEvaluator(model).run(None, {"x": x})
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        for fname, arr, tname in (("input_0.pb", x, "x"), ("output_0.pb", y, graph.output[0].name)):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(numpy_helper.from_array(arr, tname).SerializeToString())
        print(f"wrote {d}: output {tuple(y.shape)}")


if __name__ == "__main__":
    main()
