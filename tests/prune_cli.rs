//! `smelt prune` end to end: on the trained digits MLP (tests/fixtures/digits)
//! it writes OUT.smelt and OUT.safetensors with the zeros, prints the per-layer
//! report and writes it as JSON; the pruned model runs from its file and its
//! optimized form holds sparse products; bad requests fail with status 1, one
//! clear message and nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn digits(name: &str) -> String {
    root().join("tests/fixtures/digits").join(name).display().to_string()
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
    let d = std::env::temp_dir().join(format!("smelt-prune-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn prunes_runs_and_reports() {
    let dir = temp_dir("ok");
    let model = digits("digits_mlp.onnx");
    let o = smelt(&dir, &["prune", &model, "--sparsity", "0.9", "--pattern", "block:16x1", "--exclude", "logits", "-o", "out/mlp90", "--report", "out/r.json"]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("2/3 layers pruned (block:16x1, per layer)"), "{}", o.stdout);
    assert!(o.stdout.contains("2 of 3 layers compile to sparse kernels"), "{}", o.stdout);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("out/r.json")).unwrap()).unwrap();
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert!((layers[0]["after"].as_f64().unwrap() - 0.9).abs() < 0.005, "{report}");
    assert_eq!(layers[2]["reason"], "excluded");
    // The pruned model runs from its file, and -O2 makes its hidden layers sparse.
    let x = smelt(&dir, &["run", "out/mlp90.smelt", "--random", "1", "--dim", "N=5"]);
    assert_eq!(x.code, Some(0), "{}", x.stderr);
    assert!(x.stdout.contains("f32[5, 10]"), "{}", x.stdout);
    let opt = smelt(&dir, &["opt", "out/mlp90.smelt"]);
    assert_eq!(opt.code, Some(0), "{}", opt.stderr);
    assert_eq!(opt.stdout.matches("sparse_matmul(").count(), 2, "{}", opt.stdout);
}

#[test]
fn bad_requests_write_nothing() {
    let dir = temp_dir("bad");
    let model = digits("digits_mlp.onnx");
    for (args, want) in [
        (vec!["--sparsity", "1.0"], "--sparsity must be in [0, 1)"),
        (vec!["--sparsity", "0.5", "--pattern", "nm:4:2"], "N:M needs 0 ≤ N < M"),
        (vec!["--sparsity", "0.5", "--pattern", "block:3"], "expected unstructured, block:RxC"),
        (vec!["--sparsity", "0.5", "--pattern", "block:16x1"], "does not divide the weight `fc3.weight` of node `logits`"),
        (vec!["--sparsity", "0.5", "--exclude", "nope"], "--exclude `nope` names no prunable layer"),
        (vec!["--sparsity", "0.5", "--inputs", &digits("test.safetensors")], "`labels` is not an input"),
    ] {
        let mut a = vec!["prune", model.as_str(), "-o", "out/x"];
        a.extend(args.iter().copied());
        let o = smelt(&dir, &a);
        assert_eq!(o.code, Some(1), "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
        assert!(!dir.join("out").exists(), "{args:?} wrote output");
    }
}
