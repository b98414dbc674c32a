//! The ONNX importer on small models built here (no downloaded data needed):
//! errors (every unsupported node listed, truncated or corrupt files, malformed
//! nodes), shape-subgraph folding with symbolic dims, parameter inputs that must
//! be frozen, names that are not smelt identifiers, and ConvTranspose against a
//! direct computation.

use prost::Message;
use smelt_frontends::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto, type_proto,
};
use smelt_frontends::onnx::{self, Error, Options, tensor::to_proto};
use smelt_ir::{Op, Tensor, text};
use std::collections::BTreeMap;

const FLOAT: i32 = 1;
const INT64: i32 = 7;

/// A tensor value info; a dim is a size or a symbol.
fn vi(name: &str, elem: i32, dims: &[&str]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d.parse::<i64>() {
                Ok(n) => tensor_shape_proto::dimension::Value::DimValue(n),
                Err(_) => tensor_shape_proto::dimension::Value::DimParam(d.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, ins: &[&str], outs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            name: Some("test".into()),
            node: nodes,
            input: inputs,
            output: outputs,
            initializer: inits,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn f32s(name: &str, shape: &[usize], v: Vec<f32>) -> TensorProto {
    to_proto(&Tensor::f32(shape.to_vec(), v).expect("sized"), name)
}

fn i64s(name: &str, v: Vec<i64>) -> TensorProto {
    to_proto(&Tensor::i64(vec![v.len()], v).expect("sized"), name)
}

fn run(g: &smelt_ir::Graph, inputs: &[(&str, Tensor)]) -> BTreeMap<String, Tensor> {
    let feed = inputs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    smelt_interp::run(g, &feed).expect("runs")
}

#[test]
fn every_unsupported_node_is_listed() {
    let m = model(
        vec![
            node("Foo", "n1", &["x"], &["a"], vec![]),
            node("Relu", "n2", &["a"], &["b"], vec![]),
            node("Bar", "n3", &["b"], &["c"], vec![]),
            node("Foo", "n4", &["c"], &["y"], vec![]),
        ],
        vec![vi("x", FLOAT, &["2"])],
        vec![vi("y", FLOAT, &["2"])],
        vec![],
    );
    let e = onnx::import_model(&m, &Options::default()).unwrap_err();
    assert!(e.is_unsupported());
    let Error::Unsupported(list) = &e else { panic!("{e}") };
    let found: Vec<(&str, &str)> = list.iter().map(|u| (u.op_type.as_str(), u.node.as_str())).collect();
    assert_eq!(found, [("Foo", "n1"), ("Bar", "n3"), ("Foo", "n4")]);
    assert_eq!(e.to_string(), "3 unsupported ONNX nodes: Foo (node `n1`), Bar (node `n3`), Foo (node `n4`)");
}

#[test]
fn truncated_and_corrupt_files_are_errors() {
    let m = model(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![vi("x", FLOAT, &["4"])],
        vec![vi("y", FLOAT, &["4"])],
        vec![f32s("w", &[64], vec![1.0; 64])],
    );
    let bytes = m.encode_to_vec();
    for cut in [1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        // Decoding may fail, or succeed on a prefix that is not a valid model: never a panic.
        if let Ok(i) = onnx::import(&bytes[..cut], &Options::default()) {
            panic!("a truncated model imported: {:?}", i.graph.name);
        }
    }
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    assert!(onnx::import(&garbage, &Options::default()).is_err());
    assert!(onnx::decode_tensor(&garbage).is_err());

    // Raw data of the wrong length.
    let mut bad = f32s("w", &[4], vec![1.0; 4]);
    bad.raw_data.as_mut().expect("raw").truncate(10);
    let m = model(
        vec![node("Add", "a", &["x", "w"], &["y"], vec![])],
        vec![vi("x", FLOAT, &["4"])],
        vec![vi("y", FLOAT, &["4"])],
        vec![bad],
    );
    let e = onnx::import_model(&m, &Options::default()).unwrap_err();
    assert!(e.to_string().contains("raw data has 10 bytes, expected 16"), "{e}");
}

#[test]
fn shape_subgraphs_fold_with_symbolic_dims() {
    // Flatten as exporters write it: Shape → Gather → Unsqueeze → Concat → Reshape.
    let m = model(
        vec![
            node("Shape", "shape", &["x"], &["s"], vec![]),
            node("Gather", "batch", &["s", "zero"], &["n"], vec![int("axis", 0)]),
            node("Unsqueeze", "n1", &["n", "axes"], &["n1"], vec![]),
            node("Concat", "target", &["n1", "minus1"], &["t"], vec![int("axis", 0)]),
            node("Reshape", "flat", &["x", "t"], &["y"], vec![]),
        ],
        vec![vi("x", FLOAT, &["N", "2", "3"])],
        vec![vi("y", FLOAT, &["N", "6"])],
        vec![
            to_proto(&Tensor::i64(vec![], vec![0]).expect("scalar"), "zero"),
            i64s("axes", vec![0]),
            i64s("minus1", vec![-1]),
        ],
    );
    let g = onnx::import_model(&m, &Options::default()).expect("imports").graph;
    let ops: Vec<&str> = g.node_ids().map(|i| g.node(i).op.name()).collect();
    assert_eq!(ops, ["input", "reshape"], "only the reshape remains");
    assert_eq!(g.value_type(g.outputs()[0]).expect("typed").to_string(), "f32[N, 6]");
    let x = Tensor::f32(vec![4, 2, 3], (0..24).map(|i| i as f32).collect()).expect("sized");
    let out = run(&g, &[("x", x.clone())]);
    assert_eq!(out["y"].shape(), [4, 6]);
    assert_eq!(out["y"].to_f32(), x.to_f32());
}

#[test]
fn parameter_inputs_must_be_frozen() {
    let m = model(
        vec![node("Reshape", "r", &["x", "shape"], &["y"], vec![])],
        vec![vi("x", FLOAT, &["2", "3"]), vi("shape", INT64, &["2"])],
        vec![vi("y", FLOAT, &["3", "2"])],
        vec![],
    );
    let e = onnx::import_model(&m, &Options::default()).unwrap_err();
    let need: Vec<&str> = e.needs_constant().iter().map(|n| n.input.as_str()).collect();
    assert_eq!(need, ["shape"], "{e}");
    let mut o = Options::default();
    o.frozen.insert("shape".into(), Tensor::i64(vec![2], vec![3, -1]).expect("sized"));
    let imported = onnx::import_model(&m, &o).expect("imports frozen");
    assert_eq!(imported.inputs.len(), 1);
    assert_eq!(imported.graph.value_type(imported.graph.outputs()[0]).expect("typed").to_string(), "f32[3, 2]");
    // A shape computed from graph inputs names them: here `rows` and `cols`
    // through a Concat and an Add.
    let m = model(
        vec![
            node("Add", "more", &["rows", "one"], &["r1"], vec![]),
            node("Concat", "dims", &["r1", "cols"], &["shape"], vec![int("axis", 0)]),
            node("Reshape", "r", &["x", "shape"], &["y"], vec![]),
        ],
        vec![vi("x", FLOAT, &["2", "3"]), vi("rows", INT64, &["1"]), vi("cols", INT64, &["1"])],
        vec![vi("y", FLOAT, &["3", "2"])],
        vec![to_proto(&Tensor::i64(vec![1], vec![1]).expect("sized"), "one")],
    );
    let e = onnx::import_model(&m, &Options::default()).unwrap_err();
    let need: Vec<&str> = e.needs_constant().iter().map(|n| n.input.as_str()).collect();
    assert_eq!(need, ["cols", "rows"], "{e}");
    let mut o = Options::default();
    o.frozen.insert("rows".into(), Tensor::i64(vec![1], vec![2]).expect("sized"));
    o.frozen.insert("cols".into(), Tensor::i64(vec![1], vec![2]).expect("sized"));
    let imported = onnx::import_model(&m, &o).expect("imports frozen");
    assert_eq!(imported.graph.value_type(imported.graph.outputs()[0]).expect("typed").to_string(), "f32[3, 2]");
}

#[test]
fn initializers_become_params_and_names_are_kept() {
    let m = model(
        vec![
            node("Add", "add:0", &["input:0", "1"], &["graph"], vec![]),
            node("Mul", "", &["graph", "half"], &["out/0"], vec![]),
        ],
        vec![vi("input:0", FLOAT, &["B", "3"])],
        vec![vi("out/0", FLOAT, &["B", "3"])],
        vec![f32s("1", &[3], vec![1.0, 2.0, 3.0]), f32s("half", &[], vec![0.5])],
    );
    let imp = onnx::import_model(&m, &Options::default()).expect("imports");
    let g = &imp.graph;
    let params: Vec<&str> = g.params().iter().map(|&p| g.node(p).name()).collect();
    assert_eq!(params, ["1"]);
    assert!(g.node_ids().any(|i| matches!(g.node(i).op, Op::Const(_))), "the scalar is an inline const");
    // Names are the model's own (the text format quotes those that are not
    // identifiers, and a value named `graph`).
    assert_eq!(imp.inputs, [("input:0".to_string(), "input:0".to_string())]);
    assert_eq!(imp.outputs, [("out/0".to_string(), "out/0".to_string())]);
    let printed = text::print(g);
    let back = text::parse(&printed).unwrap_or_else(|d| panic!("{d}\n{printed}"));
    assert_eq!(text::print(&back), printed);
    let x = Tensor::f32(vec![1, 3], vec![1.0, 1.0, 1.0]).expect("sized");
    assert!(printed.contains(r#""graph" = add("input:0", "1")"#), "{printed}");
    assert_eq!(run(g, &[("input:0", x)])["out/0"].to_f32(), [1.0, 1.5, 2.0]);
}

/// ConvTranspose computed directly from its definition (scatter form).
#[allow(clippy::too_many_arguments)]
fn conv_transpose_direct(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    b: &[f32],
    s: [usize; 2],
    d: [usize; 2],
    pads: [usize; 4],
    out_pad: [usize; 2],
    g: usize,
) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let [_, mg, kh, kw] = ws;
    let m = mg * g;
    let oh = s[0] * (h - 1) + out_pad[0] + (kh - 1) * d[0] + 1 - pads[0] - pads[2];
    let ow = s[1] * (wd - 1) + out_pad[1] + (kw - 1) * d[1] + 1 - pads[1] - pads[3];
    let mut y = vec![0f32; n * m * oh * ow];
    for bi in 0..n {
        for ci in 0..c {
            let grp = ci / (c / g);
            for i in 0..h {
                for j in 0..wd {
                    let xv = x[((bi * c + ci) * h + i) * wd + j];
                    for mo in 0..mg {
                        let mi = grp * mg + mo;
                        for p in 0..kh {
                            for q in 0..kw {
                                let oi = (i * s[0] + p * d[0]) as i64 - pads[0] as i64;
                                let oj = (j * s[1] + q * d[1]) as i64 - pads[1] as i64;
                                if oi >= 0 && oj >= 0 && (oi as usize) < oh && (oj as usize) < ow {
                                    y[((bi * m + mi) * oh + oi as usize) * ow + oj as usize] +=
                                        xv * w[((ci * mg + mo) * kh + p) * kw + q];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for bi in 0..n {
        for mi in 0..m {
            for k in 0..oh * ow {
                y[(bi * m + mi) * oh * ow + k] += b[mi];
            }
        }
    }
    (y, [n, m, oh, ow])
}

#[test]
fn conv_transpose_matches_its_definition() {
    let (xs, ws) = ([2usize, 4, 3, 4], [4usize, 3, 3, 2]);
    let val = |k: usize, seed: usize| -> Vec<f32> {
        (0..k).map(|i| (((i * 7 + seed * 13) % 17) as f32 - 8.0) / 8.0).collect()
    };
    let (x, w, b) = (val(xs.iter().product(), 1), val(ws.iter().product(), 2), val(6, 3));
    for (s, d, pads, op, g) in [
        ([2, 2], [1, 1], [0, 0, 0, 0], [0, 0], 1),
        ([2, 3], [2, 1], [1, 2, 0, 1], [1, 2], 2),
        ([1, 1], [1, 2], [2, 1, 2, 1], [0, 0], 2),
        ([3, 2], [1, 1], [0, 0, 3, 0], [2, 1], 1),
    ] {
        let m = model(
            vec![node(
                "ConvTranspose",
                "ct",
                &["x", "w", "b"],
                &["y"],
                vec![
                    ints("strides", &s.map(|v| v as i64)),
                    ints("dilations", &d.map(|v| v as i64)),
                    ints("pads", &pads.map(|v| v as i64)),
                    ints("output_padding", &op.map(|v| v as i64)),
                    int("group", g as i64),
                ],
            )],
            vec![vi("x", FLOAT, &xs.map(|v| v.to_string()).iter().map(String::as_str).collect::<Vec<_>>())],
            vec![vi("y", FLOAT, &[])],
            vec![f32s("w", &ws, w.clone()), f32s("b", &[3 * g], b[..3 * g].to_vec())],
        );
        let g2 = onnx::import_model(&m, &Options::default()).unwrap_or_else(|e| panic!("{e}")).graph;
        let out = run(&g2, &[("x", Tensor::f32(xs.to_vec(), x.clone()).expect("sized"))]);
        let (want, shape) = conv_transpose_direct(&x, xs, &w, ws, &b[..3 * g], s, d, pads, op, g);
        let got = &out["y"];
        assert_eq!(got.shape(), shape, "s {s:?} d {d:?} pads {pads:?} op {op:?} g {g}");
        for (a, e) in got.to_f32().iter().zip(&want) {
            assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "s {s:?} d {d:?} pads {pads:?}: {a} vs {e}");
        }
    }
}

#[test]
fn corrupted_models_never_panic() {
    let m = model(
        vec![
            node("Conv", "c", &["x", "w"], &["h"], vec![ints("pads", &[1, 1, 1, 1])]),
            node("Shape", "s", &["h"], &["hs"], vec![]),
            node("Gather", "g", &["hs", "zero"], &["n"], vec![int("axis", 0)]),
            node("Unsqueeze", "u", &["n", "axes"], &["n1"], vec![]),
            node("Concat", "t", &["n1", "minus1"], &["shape"], vec![int("axis", 0)]),
            node("Reshape", "r", &["h", "shape"], &["y"], vec![]),
        ],
        vec![vi("x", FLOAT, &["N", "2", "4", "4"])],
        vec![vi("y", FLOAT, &["N", "48"])],
        vec![
            f32s("w", &[3, 2, 3, 3], vec![0.5; 54]),
            to_proto(&Tensor::i64(vec![], vec![0]).expect("scalar"), "zero"),
            i64s("axes", vec![0]),
            i64s("minus1", vec![-1]),
        ],
    );
    let bytes = m.encode_to_vec();
    onnx::import(&bytes, &Options::default()).expect("the intact model imports");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 3 {
            let i = (next() % b.len() as u64) as usize;
            b[i] = next() as u8;
        }
        // Any result is fine; a panic fails the test.
        let _ = onnx::import(&b, &Options::default());
    }
}

/// A tensor with no data of any dims (an empty one may have large dims).
fn empty(name: &str, dims: &[i64]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(FLOAT),
        name: Some(name.into()),
        raw_data: Some(Vec::new().into()),
        ..Default::default()
    }
}

fn scalar_i64(name: &str, v: i64) -> TensorProto {
    to_proto(&Tensor::i64(vec![], vec![v]).expect("scalar"), name)
}

#[test]
fn malformed_nodes_are_errors_not_panics() {
    const BIG: i64 = 1 << 40;
    let x = |dims: &[&str]| vec![vi("x", FLOAT, dims)];
    let xw = |xd: &[&str], wd: &[&str]| vec![vi("x", FLOAT, xd), vi("w", FLOAT, wd)];
    let qkv = |d: &[&str]| ["q", "k", "v"].map(|s| vi(s, FLOAT, d)).to_vec();
    let u8s =
        |name: &str, v: Vec<u8>| to_proto(&Tensor::new(vec![v.len()], smelt_ir::Data::U8(v)).expect("sized"), name);
    // (opset, node, graph inputs, initializers, a piece of the error), each node
    // an index, overflow or allocation the importer once panicked on.
    type Case = (i64, NodeProto, Vec<ValueInfoProto>, Vec<TensorProto>, &'static str);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // Folding.
        (17, node("Range", "n", &["a", "a", "a"], &["y"], vec![]), vec![], vec![i64s("a", vec![])], "the start must be one value"),
        (17, node("Slice", "n", &["c"], &["y"], vec![ints("starts", &[0]), ints("ends", &[1]), ints("axes", &[0, 1])]), vec![], vec![f32s("c", &[2, 2], vec![1.0; 4])], "differ in length"),
        (17, node("Slice", "n", &["c", "s", "e", "a", "p"], &["y"], vec![]), vec![], vec![f32s("c", &[2, 2], vec![1.0; 4]), i64s("s", vec![0, 0]), i64s("e", vec![1, 1]), i64s("a", vec![0, 1]), i64s("p", vec![1])], "differ in length"),
        (17, node("Size", "n", &["x"], &["y"], vec![]), x(&["1099511627776", "1099511627776"]), vec![], "Size of [1099511627776, 1099511627776] overflows"),
        (17, node("Expand", "n", &["c", "s"], &["y"], vec![]), vec![], vec![f32s("c", &[1], vec![1.0]), i64s("s", vec![1 << 62, 1 << 62])], "at most 2^48"),
        (17, node("ConstantOfShape", "n", &["s"], &["y"], vec![]), vec![], vec![i64s("s", vec![BIG, BIG])], "too many elements"),
        (17, node("ConstantOfShape", "n", &["s"], &["y"], vec![]), vec![], vec![i64s("s", vec![-3])], "negative size -3"),
        // Tensor ops.
        (17, node("Split", "n", &["x"], &["y", "z", "w"], vec![ints("split", &[i64::MAX, i64::MAX, 4])]), x(&["2"]), vec![], "do not give 3 outputs covering 2"),
        (18, node("Split", "n", &["x"], &["y"], vec![int("num_outputs", i64::MAX)]), x(&["2"]), vec![], "num_outputs 9223372036854775807 for 1 outputs"),
        (17, node("Tile", "n", &["x", "r"], &["y"], vec![]), x(&["4"]), vec![i64s("r", vec![i64::MAX])], "is too large"),
        (17, node("Pad", "n", &["x", "p"], &["y"], vec![]), x(&["4"]), vec![i64s("p", vec![i64::MIN, 0])], "make axis 0 of f32[4] size"),
        (17, node("Reshape", "n", &["x", "s"], &["y"], vec![int("allowzero", 1)]), x(&["6"]), vec![i64s("s", vec![0, 3])], "cannot reshape 6 elements to [0, 3]"),
        (17, node("Reshape", "n", &["x", "s"], &["y"], vec![int("allowzero", 1)]), x(&["0"]), vec![i64s("s", vec![BIG, BIG, 0])], "too many elements"),
        (17, node("Range", "n", &["a", "a", "a"], &["y"], vec![]), vec![], vec![f32s("a", &[0], vec![])], "must be one value each"),
        // Math, convolutions, recurrences, attention, quantization, resize.
        (6, node("Add", "n", &["x", "b"], &["y"], vec![int("broadcast", 1), int("axis", i64::MIN)]), vec![vi("x", FLOAT, &["2", "3"]), vi("b", FLOAT, &["3"])], vec![], "does not fit ranks 2 and 1"),
        (17, node("Conv", "n", &["x", "w"], &["y"], vec![int("group", 0)]), xw(&["1", "2", "4"], &["2", "2", "3"]), vec![], "group 0 must be positive"),
        (17, node("ConvTranspose", "n", &["x", "w"], &["y"], vec![int("group", i64::MAX)]), xw(&["1", "0", "4"], &["0", "4", "3"]), vec![], "groups overflow"),
        (17, node("ConvTranspose", "n", &["x", "w"], &["y"], vec![ints("strides", &[1 << 20])]), xw(&["1", "1", "140737488355328"], &["1", "1", "3"]), vec![], "overflows"),
        (17, node("CausalConvWithState", "n", &["x", "w"], &["y"], vec![]), xw(&["1", "0", "4"], &["0", "1", "3"]), vec![], "has no channels"),
        (17, node("LSTM", "n", &["x", "w", "r"], &["y"], vec![int("hidden_size", 2)]), vec![vi("x", FLOAT, &[]), vi("w", FLOAT, &["1", "8", "3"]), vi("r", FLOAT, &["1", "8", "2"])], vec![], "is not 3-d"),
        (17, node("LSTM", "n", &["x", "w", "r"], &["y"], vec![]), vec![vi("x", FLOAT, &["2", "1", "3"]), vi("w", FLOAT, &["1", "0", "3"]), vi("r", FLOAT, &["1", "0", "0"])], vec![], "give no hidden size"),
        (17, node("RNN", "n", &["x", "w", "r"], &["y"], vec![]), vec![vi("x", FLOAT, &["1099511627776", "1", "3"]), vi("w", FLOAT, &["1", "2", "3"]), vi("r", FLOAT, &["1", "2", "2"])], vec![], "unrolled"),
        (23, node("Attention", "n", &["q", "k", "v"], &["y"], vec![int("q_num_heads", 2), int("kv_num_heads", 1), int("is_causal", 1)]), vec![vi("q", FLOAT, &["1", "1073741824", "8"]), vi("k", FLOAT, &["1", "1073741824", "4"]), vi("v", FLOAT, &["1", "1073741824", "4"])], vec![], "more than 2^56 elements"),
        (23, node("Attention", "n", &["q", "k", "v"], &["y"], vec![int("q_num_heads", -1), int("kv_num_heads", -1)]), qkv(&["1", "4", "8"]), vec![], "q_num_heads -1 is negative"),
        (17, node("MatMulInteger", "n", &["a", "b", "", "zb"], &["y"], vec![]), vec![vi("a", 2, &["2", "2"]), vi("b", 2, &[])], vec![u8s("zb", vec![1, 2])], "2 zero points for B u8[]"),
        (17, node("ConvInteger", "n", &["a", "b"], &["y"], vec![]), vec![vi("a", 2, &["1", "1", "4"]), vi("b", 2, &["3"])], vec![], "weights u8[3] do not fit"),
        (17, node("Resize", "n", &["x", "", "", "s"], &["y"], vec![]), x(&["1", "1", "2"]), vec![i64s("s", vec![1, 1, 1 << 62])], "is too large"),
        // A graph input larger than smelt's dims.
        (17, node("Relu", "n", &["x"], &["y"], vec![]), x(&["1152921504606846976"]), vec![], "larger than smelt's limit"),
    ];
    for (opset, n, inputs, inits, want) in cases {
        let what = format!("{} {:?}", n.op_type(), n.attribute.iter().map(|a| a.name()).collect::<Vec<_>>());
        let mut m = model(vec![n], inputs, vec![vi("y", FLOAT, &[])], inits);
        m.opset_import[0].version = Some(opset);
        match onnx::import_model(&m, &Options::default()) {
            Ok(_) => panic!("{what}: a malformed node imported"),
            Err(e) => assert!(e.to_string().contains(want), "{what}: expected an error with `{want}`, found: {e}"),
        }
    }

    // Empty constants with large dims fold without overflowing, and integer
    // reductions wrap as the graph's arithmetic does.
    for (n, inits) in [
        (node("Transpose", "n", &["c"], &["y"], vec![]), vec![empty("c", &[0, BIG, BIG])]),
        (
            node("Gather", "n", &["c", "i"], &["y"], vec![int("axis", 1)]),
            vec![empty("c", &[0, BIG, BIG]), i64s("i", vec![0])],
        ),
        (
            node("Gather", "n", &["c", "i"], &["y"], vec![int("axis", 1)]),
            vec![empty("c", &[1 << 47, 3, 0]), i64s("i", vec![0])],
        ),
        (
            node("Slice", "n", &["c", "s", "e"], &["y"], vec![]),
            vec![empty("c", &[0, BIG, BIG]), i64s("s", vec![0]), i64s("e", vec![1])],
        ),
        (node("Concat", "n", &["c", "c"], &["y"], vec![int("axis", 2)]), vec![empty("c", &[1 << 47, 3, 0])]),
        (node("ReduceProd", "n", &["c"], &["y"], vec![]), vec![i64s("c", vec![BIG, BIG])]),
        (
            node("Range", "n", &["a", "b", "d"], &["y"], vec![]),
            vec![scalar_i64("a", i64::MAX - 2), scalar_i64("b", i64::MIN), scalar_i64("d", i64::MIN)],
        ),
    ] {
        let what = n.op_type().to_string();
        let m = model(vec![n], vec![], vec![vi("y", FLOAT, &[])], inits);
        onnx::import_model(&m, &Options::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

/// An `If` whose condition the importer knows — here `x.shape[0] == 2`, folded
/// from the input's shape — becomes the branch it takes (nodes, initializers,
/// values of the enclosing graph read inside it); one decided at run time
/// computes both branches and selects one.
#[test]
fn if_is_its_branch_when_known_and_selects_one_at_run_time() {
    let branch = |name: &str, nodes: Vec<NodeProto>, out: &str, inits: Vec<TensorProto>| AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(GraphProto {
            name: Some(name.into()),
            node: nodes,
            output: vec![vi(out, FLOAT, &[])],
            initializer: inits,
            ..Default::default()
        }),
        ..Default::default()
    };
    // then: relu(x) * 2 (a branch initializer); else: x as it is (a value of the
    // enclosing graph, no node).
    let then_b = branch(
        "then_branch",
        vec![node("Relu", "then/relu", &["x"], &["r"], vec![]), node("Mul", "then/mul", &["r", "two"], &["t"], vec![])],
        "t",
        vec![f32s("two", &[], vec![2.0])],
    );
    let else_b = branch("else_branch", vec![], "x", vec![]);
    let m = |dims: &[&str], cond_from_input: bool| {
        let mut nodes = vec![
            node("Shape", "shape", &["x"], &["s"], vec![]),
            node("Gather", "n0", &["s", "zero"], &["n"], vec![int("axis", 0)]),
            node("Equal", "is2", &["n", "two_i"], &["c"], vec![]),
        ];
        let cond = if cond_from_input { "flag" } else { "c" };
        let mut iff = node("If", "branch", &[cond], &["y"], vec![then_b.clone(), else_b.clone()]);
        iff.attribute = vec![then_b.clone(), else_b.clone()];
        nodes.push(iff);
        let mut inputs = vec![vi("x", FLOAT, dims)];
        if cond_from_input {
            inputs.push(vi("flag", 9, &[]));
        }
        let scalar = |n: &str, v: i64| to_proto(&Tensor::i64(vec![], vec![v]).expect("sized"), n);
        model(nodes, inputs, vec![vi("y", FLOAT, dims)], vec![scalar("zero", 0), scalar("two_i", 2)])
    };
    let x = |n: usize| Tensor::f32(vec![n, 3], (0..n * 3).map(|i| i as f32 - 4.0).collect()).expect("sized");
    // Taken: y = 2·relu(x).
    let g = onnx::import_model(&m(&["2", "3"], false), &Options::default()).expect("imports").graph;
    let y = run(&g, &[("x", x(2))])["y"].to_f32();
    let want: Vec<f32> = x(2).to_f32().iter().map(|v| 2.0 * v.max(0.0)).collect();
    assert_eq!(y, want, "{}", text::print(&g));
    // Not taken: y = x (a copy: an output of its own).
    let g = onnx::import_model(&m(&["4", "3"], false), &Options::default()).expect("imports").graph;
    assert_eq!(run(&g, &[("x", x(4))])["y"].to_f32(), x(4).to_f32());
    // A symbolic batch pinned at import decides it too.
    let opts = Options { dims: [("N".to_string(), 2)].into(), ..Default::default() };
    let g = onnx::import_model(&m(&["N", "3"], false), &opts).expect("imports").graph;
    assert_eq!(run(&g, &[("x", x(2))])["y"].to_f32(), want);
    // The batch left symbolic: the shape arithmetic asks for it.
    let e = onnx::import_model(&m(&["N", "3"], false), &Options::default()).expect_err("symbolic shape as data").to_string();
    assert!(e.contains("fix the dims when importing"), "{e}");
    // The condition an input: both branches computed, one selected at run time.
    let g = onnx::import_model(&m(&["2", "3"], true), &Options::default()).expect("imports").graph;
    for flag in [true, false] {
        let c = Tensor::new(vec![], smelt_ir::Data::Bool(vec![flag])).expect("sized");
        let y = run(&g, &[("x", x(2)), ("flag", c)])["y"].to_f32();
        assert_eq!(y, if flag { want.clone() } else { x(2).to_f32() }, "flag {flag}: {}", text::print(&g));
    }
}

/// GatherND with run-time indices: a coordinate out of its dim's range is an
/// error at run time (even where its flat position would land inside the data),
/// negative coordinates wrap; constant out-of-range indices fail at import.
#[test]
fn gather_nd_checks_each_coordinate() {
    let m = model(
        vec![node("GatherND", "g", &["x", "i"], &["y"], vec![])],
        vec![vi("x", FLOAT, &["2", "3"]), vi("i", INT64, &["2", "2"])],
        vec![vi("y", FLOAT, &["2"])],
        vec![],
    );
    let g = onnx::import_model(&m, &Options::default()).expect("imports").graph;
    let x = Tensor::f32(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).expect("sized");
    let idx = |v: Vec<i64>| Tensor::i64(vec![2, 2], v).expect("sized");
    let feed = |i: Tensor| [("x".to_string(), x.clone()), ("i".to_string(), i)].into_iter().collect();
    let y = smelt_interp::run(&g, &feed(idx(vec![1, 2, -2, -1]))).expect("runs");
    assert_eq!(y["y"].to_f32(), vec![5.0, 2.0]);
    // [0, 4]: flat position 4 is inside the data, but 4 is past dim 1's 3.
    let e = smelt_interp::run(&g, &feed(idx(vec![0, 4, 0, 0]))).expect_err("out of range").to_string();
    assert!(e.contains("out of range"), "{e}");
    let m = model(
        vec![node("GatherND", "g", &["x", "i"], &["y"], vec![])],
        vec![vi("x", FLOAT, &["2", "3"])],
        vec![vi("y", FLOAT, &["1"])],
        vec![to_proto(&Tensor::i64(vec![1, 2], vec![0, 3]).expect("sized"), "i")],
    );
    let e = onnx::import_model(&m, &Options::default()).expect_err("constant out of range").to_string();
    assert!(e.contains("index 3 is out of range for dim 1 of size 3"), "{e}");
}

/// GatherElements with run-time indices: an index past its axis is an error at
/// run time even where its flat position lands inside the data.
#[test]
fn gather_elements_checks_its_axis() {
    let m = model(
        vec![node("GatherElements", "g", &["x", "i"], &["y"], vec![int("axis", 1)])],
        vec![vi("x", FLOAT, &["2", "3"]), vi("i", INT64, &["1", "2"])],
        vec![vi("y", FLOAT, &["1", "2"])],
        vec![],
    );
    let g = onnx::import_model(&m, &Options::default()).expect("imports").graph;
    let x = Tensor::f32(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).expect("sized");
    let feed = |v: Vec<i64>| {
        [("x".to_string(), x.clone()), ("i".to_string(), Tensor::i64(vec![1, 2], v).expect("sized"))].into_iter().collect()
    };
    assert_eq!(smelt_interp::run(&g, &feed(vec![2, -3])).expect("runs")["y"].to_f32(), vec![2.0, 0.0]);
    // Index 4 on axis 1 (size 3): flat position 4 exists, but the index is out of range.
    let e = smelt_interp::run(&g, &feed(vec![4, 0])).expect_err("out of range").to_string();
    assert!(e.contains("out of range"), "{e}");
}

/// Naive einsum: every assignment of the letters, summed into the output.
fn einsum_ref(eq: &str, xs: &[(&[usize], Vec<f32>)]) -> (Vec<usize>, Vec<f32>) {
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, out) = eq.split_once("->").expect("explicit output");
    let ins: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    let mut size = BTreeMap::new();
    for (letters, (shape, _)) in ins.iter().zip(xs) {
        for (c, &d) in letters.iter().zip(shape.iter()) {
            size.insert(*c, d);
        }
    }
    let letters: Vec<char> = size.keys().copied().collect();
    let oshape: Vec<usize> = out.iter().map(|c| size[c]).collect();
    let mut y = vec![0f32; oshape.iter().product()];
    let total: usize = letters.iter().map(|c| size[c]).product();
    for f in 0..total {
        let mut at = BTreeMap::new();
        let mut r = f;
        for c in letters.iter().rev() {
            at.insert(*c, r % size[c]);
            r /= size[c];
        }
        let flat = |ls: &[char], shape: &[usize]| ls.iter().zip(shape).fold(0, |a, (c, &d)| a * d + at[c]);
        let p: f32 = ins.iter().zip(xs).map(|(ls, (shape, v))| v[flat(ls, shape)]).product();
        y[flat(&out, &oshape)] += p;
    }
    (oshape, y)
}

/// Einsum as transposes, sums and a batched matmul, against the definition:
/// MaxViT's attention equations (with spaces), a contraction over two letters,
/// letters summed away in one operand, an outer product, a one-operand sum and
/// transpose; diagonals are unsupported with the reason.
#[test]
fn einsum_matches_its_definition() {
    let cases: &[(&str, &[usize], &[usize])] = &[
        ("B G H I J, B G H J D -> B G H I D", &[2, 1, 3, 4, 5], &[2, 1, 3, 5, 2]),
        ("B G H I D, B G H J D -> B G H I J", &[2, 1, 3, 4, 2], &[2, 1, 3, 5, 2]),
        ("bij,bjk->bik", &[3, 2, 4], &[3, 4, 5]),
        ("abcd,cdf->fab", &[2, 3, 4, 5], &[4, 5, 3]),
        ("ij,kl->lj", &[3, 4], &[2, 5]),
        ("i,j->ij", &[3], &[4]),
        ("ijk->ki", &[3, 4, 2], &[]),
    ];
    for (k, (eq, sa, sb)) in cases.iter().enumerate() {
        let two = !sb.is_empty();
        let letters = |s: &str| s.chars().filter(|c| c.is_ascii_alphabetic()).count();
        let (_, rhs) = eq.split_once("->").expect("explicit");
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let a: Vec<f32> = (0..na).map(|i| ((i * 7 + k) % 11) as f32 / 4.0 - 1.0).collect();
        let b: Vec<f32> = (0..nb).map(|i| ((i * 5 + k) % 13) as f32 / 5.0 - 1.2).collect();
        let mut xs = vec![(*sa, a.clone())];
        if two {
            xs.push((*sb, b.clone()));
        }
        let (oshape, want) = einsum_ref(eq, &xs);
        assert_eq!(oshape.len(), letters(rhs));
        let dims = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        let da = dims(sa);
        let db = dims(sb);
        let do_ = dims(&oshape);
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let mut inputs = vec![vi("a", FLOAT, &refs(&da))];
        let mut names = vec!["a"];
        if two {
            inputs.push(vi("b", FLOAT, &refs(&db)));
            names.push("b");
        }
        let mut e = node("Einsum", "e", &names, &["y"], vec![]);
        e.attribute = vec![AttributeProto {
            name: Some("equation".into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(eq.as_bytes().to_vec()),
            ..Default::default()
        }];
        let m = model(vec![e], inputs, vec![vi("y", FLOAT, &refs(&do_))], vec![]);
        let g = onnx::import_model(&m, &Options::default()).unwrap_or_else(|e| panic!("{eq}: {e}")).graph;
        let mut feed = vec![("a", Tensor::f32(sa.to_vec(), a).expect("sized"))];
        if two {
            feed.push(("b", Tensor::f32(sb.to_vec(), b).expect("sized")));
        }
        let y = run(&g, &feed)["y"].clone();
        assert_eq!(y.shape(), &oshape[..], "{eq}");
        for (g, w) in y.to_f32().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{eq}: {g} vs {w}");
        }
    }
    let mut e = node("Einsum", "diag", &["a"], &["y"], vec![]);
    e.attribute = vec![AttributeProto {
        name: Some("equation".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(b"ii->i".to_vec()),
        ..Default::default()
    }];
    let m = model(vec![e], vec![vi("a", FLOAT, &["3", "3"])], vec![vi("y", FLOAT, &["3"])], vec![]);
    let err = onnx::import_model(&m, &Options::default()).expect_err("diagonal").to_string();
    assert!(err.contains("diagonal"), "{err}");
}

/// Shape arithmetic in floats (as exporters compute a Resize's sizes: the
/// shape cast to float, scaled, floored, cast back) folds at import, so an op
/// that needs the result known gets it.
#[test]
fn float_shape_arithmetic_folds_at_import() {
    let m = model(
        vec![
            node("Shape", "shape", &["x"], &["s"], vec![]),
            node("Cast", "to_float", &["s"], &["sf"], vec![int("to", 1)]),
            node("Mul", "scale", &["sf", "k"], &["scaled"], vec![]),
            node("Floor", "floor", &["scaled"], &["fl"], vec![]),
            node("Cast", "to_int", &["fl"], &["dims"], vec![int("to", 7)]),
            node("ConstantOfShape", "zeros", &["dims"], &["z"], vec![]),
            node("Add", "add", &["z", "b"], &["y"], vec![]),
        ],
        vec![vi("x", FLOAT, &["2", "4"]), vi("b", FLOAT, &["3", "2"])],
        vec![vi("y", FLOAT, &["3", "2"])],
        vec![f32s("k", &[2], vec![1.5, 0.6])],
    );
    let g = onnx::import_model(&m, &Options::default()).expect("the sizes fold").graph;
    assert_eq!(g.value_type(g.outputs()[0]).expect("typed").to_string(), "f32[3, 2]");
}

/// ReduceMax and ReduceMin of known tensors fold at import (the largest image
/// size of a batch, as torchvision's detection transform computes its padding):
/// over an axis without keepdims, and over every axis with them.
#[test]
fn reduce_max_and_min_of_known_sizes_fold_at_import() {
    let sizes = to_proto(&Tensor::i64(vec![2, 3], vec![3, 300, 320, 3, 320, 330]).expect("sized"), "sizes");
    let m = model(
        vec![
            node("ReduceMax", "largest", &["sizes"], &["big"], vec![ints("axes", &[0]), int("keepdims", 0)]),
            node("Shape", "shape", &["x"], &["have"], vec![]),
            node("Sub", "room", &["big", "have"], &["ends"], vec![]),
            node("Concat", "pads", &["zeros3", "ends"], &["pads"], vec![int("axis", 0)]),
            node("Pad", "pad", &["x", "pads"], &["y"], vec![]),
            node("ReduceMin", "smallest", &["sizes"], &["least"], vec![]),
            node("Reshape", "flat", &["least", "one"], &["n"], vec![]),
            node("ConstantOfShape", "zeros", &["n"], &["z"], vec![]),
        ],
        vec![vi("x", FLOAT, &["3", "300", "320"])],
        vec![vi("y", FLOAT, &["3", "320", "330"]), vi("z", FLOAT, &["3"])],
        vec![sizes, i64s("zeros3", vec![0, 0, 0]), i64s("one", vec![1])],
    );
    let g = onnx::import_model(&m, &Options::default()).expect("the sizes fold").graph;
    let types: Vec<String> = g.outputs().iter().map(|&v| g.value_type(v).expect("typed").to_string()).collect();
    assert_eq!(types, ["f32[3, 320, 330]", "f32[3]"]);
}
