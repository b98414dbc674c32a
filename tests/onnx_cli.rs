//! `.onnx` files through the `smelt` binary: `import` writes `NAME.smelt` and
//! `NAME.safetensors`; `run` and `check` take the ONNX file directly; unsupported
//! ops (all of them, with their nodes) and truncated files give one clear error,
//! exit status 1 and no output files. The model is built here with the ONNX
//! protobuf types, so no downloaded data is needed.

use smelt::Tensor;
use smelt::frontends::onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, type_proto};
use smelt::frontends::onnx::{encode_model, tensor::to_proto};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/onnx.rs"]
mod onnx_support;
use onnx_support::{int_attr, node, node_with, on_every_backend, vi, vi_i64};

/// `relu(x·w + b)` over a symbolic batch, with the given extra nodes appended.
fn tiny(extra: Vec<NodeProto>) -> Vec<u8> {
    let mut nodes = vec![
        node("MatMul", "mm", &["x", "w"], &["h"]),
        node("Add", "bias", &["h", "b"], &["hb"]),
        node("Relu", "act", &["hb"], &["y"]),
    ];
    nodes.extend(extra);
    let w = Tensor::f32(vec![4, 3], (0..12).map(|i| i as f32 / 10.0 - 0.5).collect()).expect("sized");
    let b = Tensor::f32(vec![3], vec![0.1, -0.2, 0.3]).expect("sized");
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            name: Some("tiny".into()),
            node: nodes,
            input: vec![vi("x", &["N", "4"])],
            output: vec![vi("y", &["N", "3"])],
            initializer: vec![to_proto(&w, "w"), to_proto(&b, "b")],
            ..Default::default()
        }),
        ..Default::default()
    };
    encode_model(&m)
}

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-onnx-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// (exit code, stdout, stderr)
fn smelt(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(dir).output().expect("run smelt");
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn import_run_and_check_an_onnx_model() {
    let d = temp_dir("ok");
    std::fs::write(d.join("tiny.onnx"), tiny(vec![])).expect("write");
    let (code, out, err) = smelt(&d, &["import", "tiny.onnx", "-o", "out"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("wrote out/tiny.smelt"), "{out}");
    let text = std::fs::read_to_string(d.join("out/tiny.smelt")).expect("model written");
    assert!(text.contains("graph tiny(x: f32[N, 4]) -> (y)"), "{text}");
    assert!(d.join("out/tiny.safetensors").exists());

    let (code, _, err) = smelt(&d, &["check", "out/tiny.smelt"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = smelt(&d, &["check", "tiny.onnx"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("y: f32[N, 3]"), "{out}");

    let (code, a, err) = smelt(&d, &["run", "tiny.onnx", "--dim", "N=2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(a.starts_with("y: f32[2, 3]"), "{a}");
    let (code, b, err) = smelt(&d, &["run", "out/tiny.smelt", "--dim", "N=2"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(a, b, "the imported files run as the ONNX file does");
}

#[test]
fn unsupported_ops_are_all_reported_and_nothing_is_written() {
    let d = temp_dir("unsupported");
    let extra =
        vec![node("Foo", "f1", &["y"], &["z"]), node("Bar", "b1", &["z"], &["u"]), node("Foo", "f2", &["u"], &["v"])];
    std::fs::write(d.join("bad.onnx"), tiny(extra)).expect("write");
    let (code, out, err) = smelt(&d, &["import", "bad.onnx", "-o", "out"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert_eq!(
        err.trim_end(),
        "error: bad.onnx: 3 unsupported ONNX nodes:\n  Foo (node `f1`)\n  Bar (node `b1`)\n  Foo (node `f2`)"
    );
    assert!(!d.join("out/bad.smelt").exists() && !d.join("out/bad.safetensors").exists());
    let (code, _, err2) = smelt(&d, &["run", "bad.onnx"]);
    assert_eq!(code, Some(1));
    assert_eq!(err, err2);
}

#[test]
fn a_truncated_onnx_file_is_a_clear_error() {
    let d = temp_dir("truncated");
    let bytes = tiny(vec![]);
    std::fs::write(d.join("cut.onnx"), &bytes[..bytes.len() / 2]).expect("write");
    let (code, _, err) = smelt(&d, &["import", "cut.onnx", "-o", "out"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("error: cut.onnx: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!d.join("out").join("cut.smelt").exists());
    let (code, _, err) = smelt(&d, &["check", "missing.onnx"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("error: cannot read missing.onnx"), "{err}");
}

/// An ONNX model whose names are not identifiers (`gpu_0/data_0`,
/// `onnx::Flatten_0`, a dim `batch size`) keeps them: the imported text quotes
/// them, `--inputs` files and `-o` outputs use them, on every CPU backend.
#[test]
fn onnx_names_are_kept_everywhere() {
    let d = temp_dir("names");
    let w = Tensor::f32(vec![4, 3], (0..12).map(|i| i as f32 / 10.0 - 0.5).collect()).expect("sized");
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            name: Some("names".into()),
            node: vec![
                node("MatMul", "gpu_0/fc", &["gpu_0/data_0", "gpu_0/fc_w_0"], &["onnx::Relu_3"]),
                node("Relu", "gpu_0/relu", &["onnx::Relu_3"], &["onnx::Flatten_0"]),
            ],
            input: vec![vi("gpu_0/data_0", &["batch size", "4"])],
            output: vec![vi("onnx::Flatten_0", &["batch size", "3"])],
            initializer: vec![to_proto(&w, "gpu_0/fc_w_0")],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(d.join("names.onnx"), encode_model(&m)).expect("write");
    let (code, _, err) = smelt(&d, &["import", "names.onnx", "-o", "out"]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(d.join("out/names.smelt")).expect("model written");
    assert!(text.contains(r#"graph names("gpu_0/data_0": f32["batch size", 4]) -> ("onnx::Flatten_0")"#), "{text}");
    // Inputs keyed by the model's own names, as an ONNX Runtime user has them.
    let x = Tensor::f32(vec![2, 4], vec![1.0, -2.0, 0.5, 3.0, 0.0, 1.0, -1.0, 2.0]).expect("sized");
    smelt::ir::weights::write_safetensors(&d.join("x.safetensors"), [("gpu_0/data_0", &x)]).expect("inputs");
    let mut outs = vec![];
    for (model, backend) in [("names.onnx", "interp"), ("names.onnx", "cranelift"), ("names.onnx", "llvm"), ("out/names.smelt", "cranelift")] {
        let o = format!("y.{backend}.{}.safetensors", outs.len());
        let (code, out, err) = smelt(&d, &["run", model, "--inputs", "x.safetensors", "--backend", backend, "-o", &o]);
        assert_eq!(code, Some(0), "{model} on {backend}: {err}");
        assert!(out.starts_with("onnx::Flatten_0: f32[2, 3]"), "{out}");
        let y = smelt::ir::weights::read_safetensors(&d.join(&o)).expect("outputs");
        assert_eq!(y.keys().collect::<Vec<_>>(), ["onnx::Flatten_0"]);
        outs.push(y["onnx::Flatten_0"].to_f32());
    }
    for o in &outs[1..] {
        for (a, b) in o.iter().zip(&outs[0]) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
    // A wrong name is a clear error naming the expected one.
    smelt::ir::weights::write_safetensors(&d.join("bad.safetensors"), [("gpu_0_data_0", &x)]).expect("inputs");
    let (code, _, err) = smelt(&d, &["run", "names.onnx", "--inputs", "bad.safetensors"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("gpu_0/data_0"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A CNN over `[N, 2, H, ?]` (a named and an anonymous spatial dim): `run`
/// imports it with the sizes of the inputs it is given (or of `--dim`), at
/// any size, on every backend; contradictions are clear errors.
#[test]
fn symbolic_spatial_dims_take_the_inputs_sizes() {
    use smelt::frontends::onnx::proto::AttributeProto;
    let d = temp_dir("spatial");
    let ints = |name: &str, v: &[i64]| AttributeProto {
        name: Some(name.into()),
        r#type: Some(7),
        ints: v.to_vec(),
        ..Default::default()
    };
    let mut conv = node("Conv", "stem/conv", &["image", "stem.w"], &["c"]);
    conv.attribute = vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1]), ints("strides", &[2, 2])];
    let mut x = vi("image", &["N", "2", "H", "?"]);
    // `?`: an anonymous dim (no dim_param, no dim_value).
    if let Some(type_proto::Value::TensorType(t)) = x.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.shape.as_mut().expect("shape").dim[3].value = None;
    }
    let w = Tensor::f32(vec![4, 2, 3, 3], (0..72).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect()).expect("sized");
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            name: Some("spatial".into()),
            node: vec![
                conv,
                node("Relu", "stem/relu", &["c"], &["r"]),
                node("GlobalAveragePool", "gap", &["r"], &["pooled"]),
            ],
            input: vec![x],
            output: vec![vi("pooled", &["N", "4", "1", "1"])],
            initializer: vec![to_proto(&w, "stem.w")],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(d.join("spatial.onnx"), encode_model(&m)).expect("write");
    for (k, shape) in [vec![2usize, 2, 9, 11], vec![1, 2, 16, 7]].into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let x = Tensor::f32(shape.clone(), (0..n).map(|i| ((i * 31 % 17) as f32 - 8.0) / 4.0).collect()).expect("sized");
        let file = format!("x{k}.safetensors");
        smelt::ir::weights::write_safetensors(&d.join(&file), [("image", &x)]).expect("inputs");
        let mut outs = vec![];
        for backend in ["interp", "cranelift", "llvm"] {
            let o = format!("y{k}.{backend}.safetensors");
            let (code, out, err) = smelt(&d, &["run", "spatial.onnx", "--inputs", &file, "--backend", backend, "-o", &o]);
            assert_eq!(code, Some(0), "{shape:?} on {backend}: {err}");
            assert!(out.starts_with(&format!("pooled: f32[{}, 4, 1, 1]", shape[0])), "{out}");
            outs.push(smelt::ir::weights::read_safetensors(&d.join(&o)).expect("outputs")["pooled"].to_f32());
        }
        for o in &outs[1..] {
            for (a, b) in o.iter().zip(&outs[0]) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{shape:?}: {a} vs {b}");
            }
        }
    }
    // Random inputs at sizes given by --dim (the anonymous dim is `image_d3`).
    let (code, out, err) = smelt(&d, &["run", "spatial.onnx", "--dim", "N=3", "--dim", "H=5", "--dim", "image_d3=6"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("pooled: f32[3, 4, 1, 1]"), "{out}");
    // A dim the model does not have, and inputs that contradict it.
    let (code, _, err) = smelt(&d, &["run", "spatial.onnx", "--dim", "Q=3"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no input of the model has a dim `Q`") && err.contains("H, N, image_d3"), "{err}");
    let bad = Tensor::f32(vec![1, 5, 4, 4], vec![0.0; 80]).expect("sized");
    smelt::ir::weights::write_safetensors(&d.join("bad.safetensors"), [("image", &bad)]).expect("inputs");
    let (code, _, err) = smelt(&d, &["run", "spatial.onnx", "--inputs", "bad.safetensors"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("input `image`") && err.contains("[N, 2, H, image_d3] (dim 1 is 2)"), "{err}");
    let (code, _, err) = smelt(&d, &["run", "spatial.onnx", "--inputs", "x0.safetensors", "--dim", "H=4"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("H = 9") && err.contains("H = 4"), "{err}");
    // `import`, `compile` and `bench` take the same `--dim`s: the imported
    // graph has the sizes in its input's type, and compiles for them.
    let (code, _, err) = smelt(&d, &["import", "spatial.onnx", "-o", "pinned", "--dim", "N=1", "--dim", "H=8", "--dim", "image_d3=6"]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(d.join("pinned/spatial.smelt")).expect("imported text");
    assert!(text.contains("f32[1, 2, 8, 6]"), "{text}");
    let (code, _, err) = smelt(&d, &["run", "pinned/spatial.smelt", "--backend", "cranelift"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = smelt(&d, &["compile", "spatial.onnx", "--emit", "kernel", "--dim", "N=1", "--dim", "H=8", "--dim", "image_d3=6"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, pinned, err) = smelt(&d, &["compile", "pinned/spatial.smelt", "--emit", "kernel"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, pinned, "compiling with --dim and compiling the pinned import differ");
    let (code, _, err) = smelt(&d, &["compile", "spatial.onnx", "--emit", "kernel", "--dim", "N=1"]);
    assert_eq!(code, Some(1), "a spatial dim left unbound must be an error");
    assert!(err.contains("H") || err.contains("symbolic"), "{err}");
    let (code, out, err) = smelt(&d, &["bench", "spatial.onnx", "--runs", "2", "--dim", "N=2", "--dim", "H=7", "--dim", "image_d3=5"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.is_empty());
    let _ = std::fs::remove_dir_all(&d);
}

/// Sinh, Cosh, Asinh, Acosh and Atanh (written with smelt's ops at import) on
/// every backend against f64, from tiny arguments (where the naive formulas
/// cancel) to those whose squares or exponentials would overflow: relative
/// error within 2e-5 (1e-5 on the CPUs) wherever the f32 result is finite and
/// normal, and the same infinities.
#[test]
fn hyperbolic_functions_are_accurate_on_every_backend() {
    use smelt::engine::BackendKind;
    let ops = [("Sinh", "x"), ("Cosh", "x"), ("Asinh", "x"), ("Acosh", "xa"), ("Atanh", "xt")];
    let x: Vec<f32> = [0.0, 1e-30, -1e-20, 1e-8, -1e-6, 1e-4, -1e-3, 0.009, 0.011, 0.3, -0.49, 0.5, 0.51, -1.0, 2.0, 10.0, -20.0, 80.0, 88.0, 89.0, -89.4, 1e10, -1e19, 3e38]
        .into_iter()
        .chain((0..333).map(|i| (i as f32 - 166.0) * 0.03))
        .collect();
    let xa: Vec<f32> = [1.0, 1.0 + 1e-7, 1.0001, 1.001, 1.5, 2.0, 10.0, 1e5, 1e18, 1e19, 3e38].into_iter().chain((0..346).map(|i| 1.0 + i as f32 * 0.07)).collect();
    let xt: Vec<f32> = [0.0, 1e-30, -1e-8, 1e-4, -0.001, 0.0099, 0.0101, 0.1, -0.5, 0.9, 0.99, -0.999, 0.999_999_9]
        .into_iter()
        .chain((0..344).map(|i| (i as f32 - 172.0) / 173.0))
        .collect();
    let n = x.len();
    assert!(xa.len() == n && xt.len() == n);
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("hyperbolic".into()),
            node: ops.iter().map(|(op, i)| node(op, op, &[i], &[&op.to_lowercase()])).collect(),
            input: ["x", "xa", "xt"].iter().map(|i| vi(i, &["N"])).collect(),
            output: ops.iter().map(|(op, _)| vi(&op.to_lowercase(), &["N"])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = encode_model(&m);
    let inputs: smelt::engine::Tensors = [("x", &x), ("xa", &xa), ("xt", &xt)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Tensor::f32(vec![n], v.clone()).expect("sized")))
        .collect();
    let want = |op: &str, i: usize| -> f64 {
        match op {
            "Sinh" => (x[i] as f64).sinh(),
            "Cosh" => (x[i] as f64).cosh(),
            "Asinh" => (x[i] as f64).asinh(),
            "Acosh" => (xa[i] as f64).acosh(),
            _ => (xt[i] as f64).atanh(),
        }
    };
    for (b, out) in on_every_backend(&bytes, &inputs) {
        let tol = if b == BackendKind::Wgsl { 2e-5 } else { 1e-5 };
        for (op, _) in ops {
            let got = out[&op.to_lowercase()].to_f32();
            for (i, &g) in got.iter().enumerate() {
                let w = want(op, i);
                let wf = w as f32;
                if !wf.is_finite() || wf.abs() < f32::MIN_POSITIVE {
                    assert!(wf.is_finite() || g == wf, "{b:?} {op} at input {i}: {g}, want {w}");
                    continue;
                }
                let rel = ((g as f64 - w) / w).abs();
                assert!(rel <= tol, "{b:?} {op} at input {i}: {g} against {w} (relative error {rel:.2e})");
            }
        }
    }
}

/// Hardmax (ties: the first maximum) and LpNormalization (p = 1 and 2, a zero
/// slice giving 0), written with smelt's ops at import, on every backend
/// against the interpreter: Hardmax exactly, the norms within 1e-6.
#[test]
fn hardmax_and_lp_normalization_match_the_interpreter_on_every_backend() {
    let (a, b, c) = (3usize, 5usize, 7usize);
    // Integers in [-3, 3] so that maxima tie; slice 1 of axis 0 all zeros.
    let x: Vec<f32> = (0..a * b * c).map(|i| if i / (b * c) == 1 { 0.0 } else { ((i * 5 + i / 7 * 3 + 3) % 7) as f32 - 3.0 }).collect();
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("hl".into()),
            node: vec![
                node_with("Hardmax", "h", &["x"], &["h"], vec![int_attr("axis", 1)]),
                node_with("LpNormalization", "l2", &["x"], &["l2"], vec![int_attr("axis", 0)]),
                node_with("LpNormalization", "l1", &["x"], &["l1"], vec![int_attr("axis", -1), int_attr("p", 1)]),
            ],
            input: vec![vi("x", &["3", "5", "7"])],
            output: ["h", "l2", "l1"].iter().map(|o| vi(o, &["3", "5", "7"])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = encode_model(&m);
    let inputs: smelt::engine::Tensors = [("x".to_string(), Tensor::f32(vec![a, b, c], x).expect("sized"))].into_iter().collect();
    let mut runs = on_every_backend(&bytes, &inputs).into_iter();
    let (_, want) = runs.next().expect("the interpreter");
    let h = want["h"].to_f32();
    // One 1 per (i, k) column of axis 1, at the first maximum.
    assert_eq!(h.iter().sum::<f32>() as usize, a * c);
    assert!(want["l2"].to_f32().iter().all(|v| v.is_finite()), "a zero slice divides to 0");
    for (bk, got) in runs {
        assert_eq!(got["h"].to_f32(), h, "{bk:?}: hardmax");
        for o in ["l2", "l1"] {
            for (g, w) in got[o].to_f32().iter().zip(want[o].to_f32()) {
                assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{bk:?} {o}: {g} against {w}");
            }
        }
    }
}

/// CumSum (a constant triangle at import) along each axis, with `exclusive` and
/// `reverse`, on every backend against sums computed here (integers in f32, so
/// exact).
#[test]
fn cumsum_matches_running_sums_on_every_backend() {
    let (a, b) = (4usize, 6usize);
    let x: Vec<f32> = (0..a * b).map(|i| ((i * 7 + 2) % 11) as f32 - 5.0).collect();
    let axis0 = to_proto(&Tensor::i64(vec![1], vec![0]).expect("sized"), "axis0");
    let axis1 = to_proto(&Tensor::i64(vec![1], vec![-1]).expect("sized"), "axis1");
    let cases = [(0, false, false), (0, true, false), (1, false, true), (1, true, true)];
    let nodes = cases
        .iter()
        .enumerate()
        .map(|(k, &(ax, ex, rev))| {
            let attrs = vec![int_attr("exclusive", i64::from(ex)), int_attr("reverse", i64::from(rev))];
            node_with("CumSum", &format!("c{k}"), &["x", if ax == 0 { "axis0" } else { "axis1" }], &[&format!("y{k}")], attrs)
        })
        .collect();
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(14) }],
        graph: Some(GraphProto {
            name: Some("cs".into()),
            node: nodes,
            input: vec![vi("x", &["4", "6"])],
            output: (0..cases.len()).map(|k| vi(&format!("y{k}"), &["4", "6"])).collect(),
            initializer: vec![axis0, axis1],
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = encode_model(&m);
    let inputs: smelt::engine::Tensors = [("x".to_string(), Tensor::f32(vec![a, b], x.clone()).expect("sized"))].into_iter().collect();
    let want = |ax: usize, ex: bool, rev: bool| -> Vec<f32> {
        let mut y = vec![0f32; a * b];
        for i in 0..a {
            for j in 0..b {
                let (pos, len) = if ax == 0 { (i, a) } else { (j, b) };
                y[i * b + j] = (0..len)
                    .filter(|&t| match (rev, ex) {
                        (false, false) => t <= pos,
                        (false, true) => t < pos,
                        (true, false) => t >= pos,
                        (true, true) => t > pos,
                    })
                    .map(|t| if ax == 0 { x[t * b + j] } else { x[i * b + t] })
                    .sum();
            }
        }
        y
    };
    for (bk, out) in on_every_backend(&bytes, &inputs) {
        for (k, &(ax, ex, rev)) in cases.iter().enumerate() {
            assert_eq!(out[&format!("y{k}")].to_f32(), want(ax, ex, rev), "{bk:?}: axis {ax}, exclusive {ex}, reverse {rev}");
        }
    }
}

/// OneHot (constant depth and values; negative indices from the end, one out of
/// range giving all `off`) along a middle and the last axis, on every backend.
#[test]
fn one_hot_on_every_backend() {
    let ind = Tensor::i64(vec![2, 3], vec![0, 4, -1, -5, 2, 7]).expect("sized");
    let depth = to_proto(&Tensor::i64(vec![1], vec![5]).expect("sized"), "depth");
    let values = to_proto(&Tensor::f32(vec![2], vec![-1.0, 3.0]).expect("sized"), "values");
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(11) }],
        graph: Some(GraphProto {
            name: Some("oh".into()),
            node: vec![
                node_with("OneHot", "last", &["i", "depth", "values"], &["y"], vec![]),
                node_with("OneHot", "mid", &["i", "depth", "values"], &["z"], vec![int_attr("axis", 1)]),
            ],
            input: vec![vi_i64("i", &["2", "3"])],
            output: vec![vi("y", &["2", "3", "5"]), vi("z", &["2", "5", "3"])],
            initializer: vec![depth, values],
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = encode_model(&m);
    let inputs: smelt::engine::Tensors = [("i".to_string(), ind)].into_iter().collect();
    // y[r][c][d]: 3 where index (wrapped) == d.
    let idx = [0i64, 4, 4, 0, 2, 7];
    let y: Vec<f32> = (0..30).map(|e| if idx[e / 5] == (e % 5) as i64 { 3.0 } else { -1.0 }).collect();
    let z: Vec<f32> = (0..30).map(|e| if idx[(e / 15) * 3 + e % 3] == ((e / 3) % 5) as i64 { 3.0 } else { -1.0 }).collect();
    for (bk, out) in on_every_backend(&bytes, &inputs) {
        assert_eq!(out["y"].to_f32(), y, "{bk:?}: axis -1");
        assert_eq!(out["z"].to_f32(), z, "{bk:?}: axis 1");
    }
}

/// `smelt run MODEL.onnx --inputs X` fixes at import the inputs the model needs
/// known (here the pads of a Pad, computed from an input), says so, and runs;
/// without them in the file the error names the input to give.
#[test]
fn inputs_the_model_needs_known_are_fixed_from_the_given_values() {
    let d = temp_dir("frozen");
    let one = to_proto(&Tensor::i64(vec![4], vec![0, 1, 0, 1]).expect("sized"), "one");
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            name: Some("padded".into()),
            node: vec![node("Add", "more", &["pads", "one"], &["p"]), node("Pad", "pad", &["x", "p"], &["y"])],
            input: vec![vi("x", &["2", "3"]), vi_i64("pads", &["4"])],
            output: vec![vi("y", &["3", "6"])],
            initializer: vec![one],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(d.join("pad.onnx"), encode_model(&m)).expect("write");
    let x = Tensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).expect("sized");
    let pads = Tensor::i64(vec![4], vec![1, 0, 0, 1]).expect("sized");
    smelt::ir::weights::write_safetensors(&d.join("in.safetensors"), [("x", &x), ("pads", &pads)]).expect("inputs");
    let (code, _, err) = smelt(&d, &["run", "pad.onnx", "--inputs", "in.safetensors", "-o", "y.safetensors"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("input `pads` is fixed at import"), "{err}");
    let y = smelt::ir::weights::read_safetensors(&d.join("y.safetensors")).expect("outputs");
    // pads [1, 1, 0, 2]: a row before, a column before, two columns after.
    let want = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0, 0.0];
    assert_eq!(y["y"].shape(), [3, 6]);
    assert_eq!(y["y"].to_f32(), want);
    smelt::ir::weights::write_safetensors(&d.join("x_only.safetensors"), [("x", &x)]).expect("inputs");
    let (code, _, err) = smelt(&d, &["run", "pad.onnx", "--inputs", "x_only.safetensors"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("`pads`") && err.contains("known at import"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
