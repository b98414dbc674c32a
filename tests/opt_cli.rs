//! `smelt opt` end to end: it prints the optimized model, writes OUT.smelt and
//! OUT.safetensors that load and compute what the original computes, reports passes
//! with `--print-after` and `--time-passes`, and fails cleanly (status 1, nothing
//! written) on a bad level, an unknown pass or a bad model.

use smelt::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn smelt(dir: &Path, args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(dir).output().expect("run smelt");
    Out { code: o.status.code(), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() }
}

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-opt-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_example(dir: &Path, name: &str) {
    for ext in ["smelt", "safetensors"] {
        std::fs::copy(root().join(format!("examples/{name}.{ext}")), dir.join(format!("{name}.{ext}"))).unwrap();
    }
}

#[test]
fn prints_the_optimized_model() {
    let o = smelt(root(), &["opt", "examples/mlp.smelt"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("fused_matmul(x, w1, b1) {epilogue = relu(add($0, $1))}"), "{}", o.stdout);
    // Deterministic across processes, not only within one.
    for m in ["examples/attention.smelt", "examples/resblock.smelt"] {
        let (a, b) = (smelt(root(), &["opt", m]), smelt(root(), &["opt", m]));
        assert_eq!(a.code, Some(0), "{}", a.stderr);
        assert_eq!(a.stdout, b.stdout, "{m}");
    }
    let o0 = smelt(root(), &["opt", "examples/mlp.smelt", "-O0"]);
    assert_eq!(o0.code, Some(0));
    assert!(!o0.stdout.contains("fused_matmul"), "{}", o0.stdout);
}

#[test]
fn writes_a_model_that_computes_the_same() {
    let d = temp_dir("write");
    copy_example(&d, "resblock");
    let o = smelt(&d, &["opt", "resblock.smelt", "-O3", "-o", "fast"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(d.join("fast.smelt").exists() && d.join("fast.safetensors").exists());
    let g0 = smelt::load_model(&d.join("resblock.smelt")).unwrap();
    let g1 = smelt::load_model(&d.join("fast.smelt")).unwrap();
    assert!(smelt::print(&g1).contains("fused_conv2d"), "{}", smelt::print(&g1));
    let x = Tensor::f32(vec![2, 8, 16, 16], (0..4096).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect()).unwrap();
    let inputs = BTreeMap::from([("x".to_string(), x)]);
    let (a, b) = (smelt::run(&g0, &inputs).unwrap(), smelt::run(&g1, &inputs).unwrap());
    for (p, q) in a["logits"].to_f32().iter().zip(b["logits"].to_f32()) {
        assert!((p - q).abs() <= 1e-4 + 1e-4 * p.abs(), "{p} vs {q}");
    }
    // The folded weights replaced the batch-norm statistics.
    let w = smelt::ir::weights::read_safetensors(&d.join("fast.safetensors")).unwrap();
    assert!(w.keys().all(|k| !k.starts_with("bn")), "{:?}", w.keys().collect::<Vec<_>>());
}

#[test]
fn reports_passes() {
    let o = smelt(root(), &["opt", "examples/resblock.smelt", "--print-after", "fold-batch-norm", "--time-passes"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("# ---- after fold-batch-norm ----"), "{}", o.stderr);
    assert!(o.stderr.contains("e-graph:") && o.stderr.contains("stopped:"), "{}", o.stderr);
    assert!(o.stderr.contains("total"), "{}", o.stderr);
    let all = smelt(root(), &["opt", "examples/mlp.smelt", "--print-after", "all", "--target", "gpu"]);
    assert_eq!(all.code, Some(0), "{}", all.stderr);
    assert!(all.stderr.matches("# ---- after ").count() >= 7, "{}", all.stderr);
}

#[test]
fn bad_requests_fail_cleanly() {
    let d = temp_dir("bad");
    copy_example(&d, "mlp");
    for (args, msg) in [
        (vec!["opt", "mlp.smelt", "-O7", "-o", "out"], "unknown optimization level"),
        (vec!["opt", "mlp.smelt", "--print-after", "nope", "-o", "out"], "unknown pass `nope`"),
        (vec!["opt", "mlp.smelt", "--target", "tpu", "-o", "out"], "unknown target"),
        (vec!["opt", "missing.smelt", "-o", "out"], "cannot read"),
    ] {
        let o = smelt(&d, &args);
        assert_eq!(o.code, Some(1), "{args:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("error: ") && o.stderr.contains(msg), "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"));
        assert!(!d.join("out.smelt").exists() && !d.join("out.safetensors").exists());
    }
}
