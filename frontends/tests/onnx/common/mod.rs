//! Shared by the ONNX test targets: where the cached test data lives, reading a
//! test case (`model.onnx` + `test_data_set_0/{input,output}_N.pb`), importing and
//! running it on the reference interpreter, and comparing with ONNX's tolerances.

#![allow(dead_code)]

use smelt_frontends::onnx::{self, Options};
use smelt_ir::{DType, Data, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cache folder of `scripts/onnx/fetch-test-data.sh`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("SMELT_ONNX_DATA") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/onnx-test-data"),
    }
}

/// A missing data folder fails the test (a test that skips itself proves
/// nothing): the message says how to get the data.
pub fn missing_data(what: &str, dir: &Path) {
    panic!(
        "{what}: no ONNX test data in {} — run scripts/onnx/fetch-test-data.sh (test.sh does) or set SMELT_ONNX_DATA",
        dir.display()
    );
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed { frozen: bool },
    Failed(String),
    Unsupported(String),
    Skipped(String),
}

/// Reads the `N`-ordered `prefix_N.pb` tensors of a data set folder.
fn read_pbs(dir: &Path, prefix: &str) -> Result<Vec<(String, Tensor)>, Outcome> {
    let mut out = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{prefix}_{i}.pb"));
        if !p.exists() {
            break;
        }
        let bytes = std::fs::read(&p).map_err(|e| Outcome::Failed(format!("{}: {e}", p.display())))?;
        match onnx::decode_tensor(&bytes) {
            Ok(t) => out.push(t),
            Err(e) if e.to_string().contains("smelt has no") => {
                return Err(Outcome::Unsupported(format!("dtype: {e}")));
            }
            // Test data smelt cannot decode is a failure of the decoder.
            Err(e) => return Err(Outcome::Failed(format!("test data {}: {e}", p.display()))),
        }
    }
    Ok(out)
}

/// Elements of all tensors of a case, to keep the suite fast.
pub const MAX_ELEMENTS: usize = 4 << 20;

/// Imports and runs one case; compares its outputs.
pub fn run_case(dir: &Path) -> Outcome {
    // A case whose inputs or outputs are sequences, maps or optionals (their test
    // data is not a TensorProto) needs values smelt does not have.
    if let Ok(bytes) = std::fs::read(dir.join("model.onnx"))
        && let Ok(m) = onnx::decode_model(&bytes)
    {
        let g = m.graph.unwrap_or_default();
        let non_tensor = g.input.iter().chain(&g.output).find(|v| {
            !matches!(v.r#type.as_ref().and_then(|t| t.value.as_ref()), None | Some(onnx::proto::type_proto::Value::TensorType(_)))
        });
        if let Some(v) = non_tensor {
            return Outcome::Unsupported(format!("`{}` is a sequence, map or optional value", v.name()));
        }
    }
    let set = dir.join("test_data_set_0");
    let inputs = match read_pbs(&set, "input") {
        Ok(v) => v,
        Err(o) => return o,
    };
    let expected = match read_pbs(&set, "output") {
        Ok(v) => v,
        Err(o) => return o,
    };
    if expected.is_empty() {
        // Nothing to compare: passing would prove nothing.
        return Outcome::Failed("the case has no expected outputs (test_data_set_0/output_N.pb)".into());
    }
    let total: usize = inputs.iter().chain(&expected).map(|(_, t)| t.numel()).sum();
    if total > MAX_ELEMENTS {
        return Outcome::Skipped(format!("too large: {total} elements"));
    }
    let bytes = match std::fs::read(dir.join("model.onnx")) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("model.onnx: {e}")),
    };
    let model = match onnx::decode_model(&bytes) {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    // The graph inputs that are not initializers, matched to the data by name or order.
    let g = model.graph.clone().unwrap_or_default();
    let inits: Vec<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let names: Vec<String> =
        g.input.iter().map(|v| v.name().to_string()).filter(|n| !inits.contains(&n.as_str())).collect();
    let mut by_name: BTreeMap<String, Tensor> = BTreeMap::new();
    for (i, (name, t)) in inputs.into_iter().enumerate() {
        let key = if !name.is_empty() && names.contains(&name) { name } else { names.get(i).cloned().unwrap_or(name) };
        by_name.insert(key, t);
    }
    let mut opts = Options { base_dir: Some(dir.to_path_buf()), ..Options::default() };
    for (k, t) in &by_name {
        opts.input_shapes.insert(k.clone(), t.shape().to_vec());
    }
    let mut frozen = false;
    let imported = loop {
        match onnx::import_model(&model, &opts) {
            Ok(m) => break m,
            Err(e) => {
                let need: Vec<String> = e.needs_constant().iter().map(|n| n.input.clone()).collect();
                let new: Vec<String> =
                    need.into_iter().filter(|n| !opts.frozen.contains_key(n) && by_name.contains_key(n)).collect();
                if new.is_empty() {
                    let msg = one_line(&e.to_string());
                    return if e.is_unsupported() || !e.needs_constant().is_empty() {
                        Outcome::Unsupported(msg)
                    } else {
                        Outcome::Failed(format!("import: {msg}"))
                    };
                }
                for n in new {
                    opts.frozen.insert(n.clone(), by_name[&n].clone());
                }
                frozen = true;
            }
        }
    };
    let mut feed = BTreeMap::new();
    for (onnx_name, smelt_name) in &imported.inputs {
        match by_name.get(onnx_name) {
            Some(t) => {
                feed.insert(smelt_name.clone(), t.clone());
            }
            None => return Outcome::Failed(format!("no test data for input `{onnx_name}`")),
        }
    }
    let graph = imported.graph;
    let run = std::panic::catch_unwind(move || smelt_interp::run(&graph, &feed));
    let outs = match run {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Outcome::Failed(format!("run: {}", one_line(&e.to_string()))),
        Err(p) => {
            let m = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            return Outcome::Failed(format!("panic: {}", m.unwrap_or_default()));
        }
    };
    if expected.len() > imported.outputs.len() {
        return Outcome::Failed(format!(
            "{} outputs expected, the graph has {}",
            expected.len(),
            imported.outputs.len()
        ));
    }
    for (i, (_, want)) in expected.iter().enumerate() {
        let (onnx_name, smelt_name) = &imported.outputs[i];
        let Some(got) = outs.get(smelt_name) else { return Outcome::Failed(format!("output `{onnx_name}` missing")) };
        if let Err(m) = compare(got, want) {
            return Outcome::Failed(format!("output `{onnx_name}`: {m}"));
        }
    }
    Outcome::Passed { frozen }
}

fn one_line(s: &str) -> String {
    let s = s.replace('\n', " | ");
    if s.len() > 300 { format!("{}…", &s[..s.char_indices().nth(300).map(|(i, _)| i).unwrap_or(s.len())]) } else { s }
}

/// Compares as ONNX's runner does: same dtype and shape; floats within
/// `atol + rtol·|expected|` (rtol 1e-3, atol 1e-7), NaN where NaN is expected;
/// integers and bools exactly.
pub fn compare(got: &Tensor, want: &Tensor) -> Result<(), String> {
    compare_tol(got, want, 1e-3, 1e-7)
}

pub fn compare_tol(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} instead of {}", got.dtype(), want.dtype()));
    }
    if got.shape() != want.shape() {
        return Err(format!("shape {:?} instead of {:?}", got.shape(), want.shape()));
    }
    if want.dtype().is_float() {
        let (g, w) = (got.to_f32(), want.to_f32());
        let mut bad = 0;
        let mut first = None;
        for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
            let ok = if b.is_nan() {
                a.is_nan()
            } else if b.is_infinite() {
                a == b
            } else {
                ((a as f64) - (b as f64)).abs() <= atol + rtol * (b as f64).abs()
            };
            if !ok {
                bad += 1;
                first.get_or_insert((i, a, b));
            }
        }
        if let Some((i, a, b)) = first {
            return Err(format!("{bad} of {} values differ; first at {i}: {a} instead of {b}", w.len()));
        }
        return Ok(());
    }
    let same = match (got.data(), want.data()) {
        (Data::Bool(a), Data::Bool(b)) => a == b,
        _ => got.to_i64() == want.to_i64(),
    };
    if same {
        Ok(())
    } else {
        let (g, w) = (got.to_i64(), want.to_i64());
        let i = g.iter().zip(&w).position(|(a, b)| a != b).unwrap_or(0);
        Err(format!(
            "values differ; first at {i}: {} instead of {}",
            g.get(i).copied().unwrap_or(0),
            w.get(i).copied().unwrap_or(0)
        ))
    }
}

/// Whether a dtype is float (for callers that pick tolerances).
pub fn is_float(d: DType) -> bool {
    d.is_float()
}
