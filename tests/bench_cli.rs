//! `smelt bench` end to end on tiny models: its JSON (every field, the statistics
//! consistent with the runs' times), the text form, ONNX input, the interpreter,
//! backends that cannot run a model yet, and bad arguments.

use serde_json::Value;
use smelt::frontends::onnx::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
    tensor_shape_proto, type_proto,
};
use smelt::frontends::onnx::{encode_model, tensor::to_proto};
use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn smelt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(root()).output().expect("run smelt")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `smelt bench ... --json`, asserts success and returns the document.
fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let o = smelt(&all);
    assert!(o.status.success(), "smelt {all:?} failed:\n{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&o.stdout)))
}

/// The statistics agree with the listed times.
fn check_times(doc: &Value, runs: usize) {
    let times: Vec<f64> = doc["times_ms"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
    assert_eq!(times.len(), runs, "{doc}");
    assert_eq!(doc["runs"], runs);
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let min = doc["min_ms"].as_f64().unwrap();
    let median = doc["median_ms"].as_f64().unwrap();
    let mean = doc["mean_ms"].as_f64().unwrap();
    assert_eq!(min, sorted[0], "{doc}");
    let n = sorted.len();
    let want = if n % 2 == 1 { sorted[n / 2] } else { 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) };
    assert!((median - want).abs() < 1e-12, "{doc}");
    assert!((mean - times.iter().sum::<f64>() / n as f64).abs() < 1e-9, "{doc}");
    assert!(times.iter().all(|&t| t > 0.0 && t.is_finite()), "{doc}");
}

#[test]
fn cranelift_json_has_every_field() {
    let doc = bench_json(&["examples/mlp.smelt", "--runs", "5", "--warmup", "1", "--dim", "N=3", "--threads", "2"]);
    assert_eq!(doc["model"], "examples/mlp.smelt");
    assert_eq!(doc["graph"], "mlp");
    assert_eq!(doc["backend"], "cranelift");
    assert_eq!(doc["threads"], 2);
    assert_eq!(doc["opt_level"], "O2");
    assert_eq!(doc["warmup"], 1);
    assert!(doc["compile_ms"].as_f64().unwrap() > 0.0, "{doc}");
    assert!(doc["optimize_ms"].as_f64().unwrap() >= 0.0, "{doc}");
    assert!(doc["nodes_after"].as_u64().unwrap() <= doc["nodes_before"].as_u64().unwrap(), "{doc}");
    // Memory: the plan's arena and constants (mlp's weights: 64·48 + 48 + 48·10 + 10 floats).
    assert!(doc["arena_bytes"].as_u64().unwrap() > 0, "{doc}");
    assert!(doc["constant_bytes"].as_u64().unwrap() >= 4 * (64 * 48 + 48 + 48 * 10 + 10), "{doc}");
    if cfg!(target_os = "linux") {
        assert!(doc["peak_rss_bytes"].as_u64().unwrap() > doc["constant_bytes"].as_u64().unwrap(), "{doc}");
    }
    check_times(&doc, 5);
}

#[test]
fn interpreter_has_no_compile_time_and_level_is_honoured() {
    let doc = bench_json(&["examples/resblock.smelt", "--backend", "interp", "--runs", "2", "--warmup", "0", "-O0"]);
    assert_eq!(doc["backend"], "interp");
    assert_eq!(doc["opt_level"], "O0");
    assert!(doc["compile_ms"].is_null(), "{doc}");
    check_times(&doc, 2);
}

#[test]
fn text_output_names_the_phases() {
    let o = smelt(&["bench", "examples/mlp.smelt", "--runs", "3"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "examples/mlp.smelt: graph mlp, cranelift, 1 thread");
    assert!(lines[1].starts_with("optimize ") && lines[1].contains("(-O2: "), "{out}");
    assert!(lines[2].starts_with("compile ") && lines[2].ends_with(" ms"), "{out}");
    assert!(
        lines[3].starts_with("run ")
            && lines[3].contains("median; min")
            && lines[3].contains("(3 runs after 3 warm-up)"),
        "{out}"
    );
    assert!(lines[4].starts_with("cpu ") && lines[4].contains("median; min") && lines[4].ends_with("(all threads)"), "{out}");
    assert!(lines[5].starts_with("memory ") && lines[5].contains("arena") && lines[5].contains("constants"), "{out}");
}

fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    let tt = type_proto::Tensor { elem_type: Some(1), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tt)), ..Default::default() }),
        ..Default::default()
    }
}

#[test]
fn onnx_models_are_benchmarked_too() {
    let w = smelt::Tensor::f32(vec![5, 3], (0..15).map(|i| i as f32 * 0.1 - 0.7).collect()).unwrap();
    let node = |op: &str, ins: &[&str], out: &str| NodeProto {
        op_type: Some(op.into()),
        name: Some(out.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            name: Some("tiny".into()),
            node: vec![node("MatMul", &["x", "w"], "h"), node("Relu", &["h"], "y")],
            initializer: vec![to_proto(&w, "w")],
            input: vec![vi("x", &[7, 5])],
            output: vec![vi("y", &[7, 3])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let dir = std::env::temp_dir().join(format!("smelt-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.onnx");
    std::fs::write(&path, encode_model(&model)).unwrap();
    let doc = bench_json(&[path.to_str().unwrap(), "--runs", "3"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(doc["graph"], "tiny");
    check_times(&doc, 3);
}

/// LLVM and WGSL benchmark the model too (WGSL on lavapipe in CI; skipped with
/// `SMELT_SKIP_GPU=1`, like the WGSL suite).
#[test]
fn llvm_and_wgsl_benchmark_too() {
    // Skipped only without an adapter, when SMELT_SKIP_GPU=1 says so.
    let skip_gpu = smelt::engine::Wgsl::default().device().is_err() && std::env::var("SMELT_SKIP_GPU").is_ok_and(|v| v == "1");
    for backend in ["llvm", "wgsl"] {
        if backend == "wgsl" && skip_gpu {
            continue;
        }
        let o = smelt(&["bench", "examples/mlp.smelt", "--backend", backend, "--runs", "2", "--json"]);
        assert!(o.status.success(), "{backend}: {}", text(&o.stderr));
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["backend"], backend);
        check_times(&doc, 2);
    }
}

#[test]
fn bad_arguments_are_refused_clearly() {
    // clap: --runs 0, a bad backend, a bad level, a bad schedule (usage errors,
    // status 2).
    for args in [
        &["bench", "examples/mlp.smelt", "--runs", "0"][..],
        &["bench", "examples/mlp.smelt", "--backend", "gpu"],
        &["bench", "examples/mlp.smelt", "-O", "7"],
        &["bench", "examples/mlp.smelt", "--schedule", "winograd=maybe"],
    ] {
        let o = smelt(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
    let cases: [(&[&str], &str); 2] = [
        (&["bench", "examples/mlp.smelt", "--dim", "T=3"], "have no symbol `T`"),
        (&["bench", "examples/nope.smelt"], "cannot read examples/nope.smelt"),
    ];
    for (args, want) in cases {
        let o = smelt(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("error: ") && err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}
