//! The `smelt` binary end to end: every example checks, formats canonically and runs;
//! bad input of every kind gives one clear message (snapshotted in
//! `tests/snapshots/`), exit status 1, no panic, and no output file.
//!
//! Commands run in the workspace root with relative paths, or in a fresh temporary
//! directory holding the files a case needs, so no absolute path reaches a snapshot.

use smelt::Tensor;
use smelt::ir::weights::{read_safetensors, write_safetensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const EXAMPLES: [&str; 3] = ["mlp", "resblock", "attention"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a run of the binary left behind.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn smelt_in(dir: &Path, args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(dir).output().expect("run smelt");
    let scrub = |b: &[u8]| String::from_utf8_lossy(b).replace(&dir.display().to_string(), "[DIR]");
    Out { code: o.status.code(), stdout: scrub(&o.stdout), stderr: scrub(&o.stderr) }
}

fn smelt(args: &[&str]) -> Out {
    smelt_in(root(), args)
}

/// Asserts success; returns stdout.
fn ok(o: Out) -> String {
    assert_eq!(o.code, Some(0), "expected success\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    o.stdout
}

/// Asserts a clean failure (status 1, no panic, nothing on stdout); returns stderr.
fn fails(o: Out) -> String {
    assert_eq!(o.code, Some(1), "expected exit status 1\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("panicked"), "panic:\n{}", o.stderr);
    assert!(o.stderr.starts_with("error: "), "not an error message:\n{}", o.stderr);
    assert!(o.stdout.is_empty(), "a failing command printed to stdout:\n{}", o.stdout);
    o.stderr
}

/// A fresh, empty directory of its own for one test.
fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A temp dir holding a copy of `examples/mlp.smelt` (and nothing else).
fn mlp_dir(test: &str) -> PathBuf {
    let d = temp_dir(test);
    std::fs::copy(root().join("examples/mlp.smelt"), d.join("mlp.smelt")).unwrap();
    d
}

fn mlp_weights() -> BTreeMap<String, Tensor> {
    read_safetensors(&root().join("examples/mlp.safetensors")).unwrap()
}

fn write(path: &Path, tensors: &BTreeMap<String, Tensor>) {
    write_safetensors(path, tensors.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
}

// ---- the examples ----

#[test]
fn examples_check() {
    for m in EXAMPLES {
        let out = ok(smelt(&["check", &format!("examples/{m}.smelt")]));
        assert!(out.lines().last().unwrap().starts_with("ok: "), "{m}:\n{out}");
    }
    insta::assert_snapshot!(ok(smelt(&["check", "examples/mlp.smelt"])));
}

#[test]
fn examples_are_canonical() {
    for m in EXAMPLES {
        let path = format!("examples/{m}.smelt");
        ok(smelt(&["fmt", "--check", &path]));
        let printed = ok(smelt(&["fmt", &path]));
        assert_eq!(printed, std::fs::read_to_string(root().join(&path)).unwrap(), "{m}");
        let json = ok(smelt(&["fmt", "--json", &path]));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["name"], m);
    }
}

#[test]
fn examples_run() {
    let out = ok(smelt(&["run", "examples/mlp.smelt", "--random", "1", "--dim", "N=3"]));
    assert!(out.starts_with("logp: f32[3, 10]  min "), "{out}");
    let out = ok(smelt(&["run", "examples/resblock.smelt", "--random", "1", "--dim", "N=2"]));
    assert!(out.starts_with("logits: f32[2, 10]  min "), "{out}");
    let out = ok(smelt(&["run", "examples/attention.smelt", "--dim", "B=2", "--dim", "T=5"]));
    assert!(out.starts_with("y: f32[2, 5, 32]  min "), "{out}");
    // The default is --random 0, and Cranelift is the default backend.
    let a = ok(smelt(&["run", "examples/mlp.smelt"]));
    let b = ok(smelt(&["run", "examples/mlp.smelt", "--random", "0", "--backend", "cranelift"]));
    assert_eq!(a, b);
}

#[test]
fn example_weights_come_from_init_weights_seed_1() {
    let d = temp_dir("init-weights");
    for m in EXAMPLES {
        let out = d.join(format!("{m}.safetensors"));
        let model = format!("examples/{m}.smelt");
        ok(smelt(&["init-weights", &model, "--seed", "1", "-o", out.to_str().unwrap()]));
        let fresh = std::fs::read(&out).unwrap();
        let committed = std::fs::read(root().join(format!("examples/{m}.safetensors"))).unwrap();
        assert!(fresh == committed, "examples/{m}.safetensors is not `smelt init-weights {model} --seed 1`");
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn init_weights_writes_beside_the_model() {
    let d = mlp_dir("init-beside");
    let out = ok(smelt_in(&d, &["init-weights", "mlp.smelt", "--seed", "7"]));
    assert_eq!(out, "wrote 4 params (14440 bytes) to mlp.safetensors\n");
    let w = read_safetensors(&d.join("mlp.safetensors")).unwrap();
    assert_eq!(w["w1"].shape(), [64, 48]);
    assert_ne!(w, mlp_weights(), "seed 7 must differ from seed 1");
    ok(smelt_in(&d, &["check", "mlp.smelt"]));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn run_writes_outputs_and_reads_inputs() {
    let d = temp_dir("run-io");
    let out = d.join("out.safetensors");
    ok(smelt(&["run", "examples/mlp.smelt", "--random", "4", "--dim", "N=3", "-o", out.to_str().unwrap()]));
    let o = read_safetensors(&out).unwrap();
    assert_eq!(o.keys().collect::<Vec<_>>(), ["logp"]);
    assert_eq!(o["logp"].shape(), [3, 10]);
    // log-probabilities: each row's probabilities sum to 1.
    for row in o["logp"].to_f32().chunks(10) {
        let s: f32 = row.iter().map(|x| x.exp()).sum();
        assert!((s - 1.0).abs() < 1e-4, "{row:?}");
    }

    // The same values given as an inputs file give the same outputs.
    let x = Tensor::f32(vec![2, 64], (0..128).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
    let inputs = d.join("in.safetensors");
    write(&inputs, &BTreeMap::from([("x".to_string(), x.clone())]));
    let out2 = d.join("out2.safetensors");
    // On the interpreter, bit for bit (tests/codegen_cli.rs compares Cranelift's).
    let printed = ok(smelt(&[
        "run",
        "examples/mlp.smelt",
        "--inputs",
        inputs.to_str().unwrap(),
        "--backend",
        "interp",
        "-o",
        out2.to_str().unwrap(),
    ]));
    assert!(printed.starts_with("logp: f32[2, 10]"), "{printed}");
    let g = smelt::load_model(&root().join("examples/mlp.smelt")).unwrap();
    let want = smelt::run(&g, &BTreeMap::from([("x".to_string(), x)])).unwrap();
    assert_eq!(read_safetensors(&out2).unwrap(), want);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn fmt_write_and_check() {
    let d = temp_dir("fmt");
    let messy = "graph  m( x : f32[N,4] )->( y ){\n  y=relu( x )   # hand-written\n}\n";
    std::fs::write(d.join("m.smelt"), messy).unwrap();
    insta::assert_snapshot!("fmt_check_not_canonical", fails(smelt_in(&d, &["fmt", "--check", "m.smelt"])));
    assert_eq!(std::fs::read_to_string(d.join("m.smelt")).unwrap(), messy, "--check must not write");
    ok(smelt_in(&d, &["fmt", "--write", "m.smelt"]));
    let canon = std::fs::read_to_string(d.join("m.smelt")).unwrap();
    assert_eq!(canon, "graph m(x: f32[N, 4]) -> (y) {\n  y = relu(x)  # f32[N, 4]\n}\n");
    ok(smelt_in(&d, &["fmt", "--check", "m.smelt"]));
    let leftovers: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["m.smelt"], "--write left a temporary file");
    let _ = std::fs::remove_dir_all(d);
}

// ---- bad input: each gives one clear message ----

#[test]
fn bad_models_are_reported() {
    insta::glob!("cases/bad/*.smelt", |path| {
        let rel = path.strip_prefix(root()).unwrap().to_str().unwrap().replace('\\', "/");
        let check = fails(smelt(&["check", &rel]));
        // `fmt` and `run` parse the same way and report the same errors.
        assert_eq!(fails(smelt(&["fmt", &rel])), check);
        assert_eq!(fails(smelt(&["run", &rel])), check);
        insta::assert_snapshot!(check);
    });
}

#[test]
fn missing_model_file() {
    insta::assert_snapshot!(fails(smelt(&["check", "examples/no_such_model.smelt"])));
}

#[test]
fn missing_weights_file() {
    let d = mlp_dir("no-weights");
    insta::assert_snapshot!(fails(smelt_in(&d, &["check", "mlp.smelt"])));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn missing_weight() {
    let d = mlp_dir("missing-weight");
    let mut w = mlp_weights();
    w.remove("b2");
    write(&d.join("mlp.safetensors"), &w);
    insta::assert_snapshot!(fails(smelt_in(&d, &["check", "mlp.smelt"])));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn mistyped_weights() {
    let d = mlp_dir("mistyped-weight");
    let mut w = mlp_weights();
    w.insert("w1".into(), Tensor::zeros(smelt::DType::F32, vec![48, 64]));
    w.insert("b1".into(), Tensor::zeros(smelt::DType::F16, vec![48]));
    w.insert("extra".into(), Tensor::zeros(smelt::DType::F32, vec![1]));
    write(&d.join("mlp.safetensors"), &w);
    insta::assert_snapshot!(fails(smelt_in(&d, &["check", "mlp.smelt"])));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn truncated_weights_file() {
    let d = mlp_dir("truncated");
    let bytes = std::fs::read(root().join("examples/mlp.safetensors")).unwrap();
    std::fs::write(d.join("mlp.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    insta::assert_snapshot!("truncated_weights_file", fails(smelt_in(&d, &["check", "mlp.smelt"])));
    std::fs::write(d.join("mlp.safetensors"), &bytes[..5]).unwrap();
    insta::assert_snapshot!("truncated_weights_header", fails(smelt_in(&d, &["run", "mlp.smelt"])));
    let _ = std::fs::remove_dir_all(d);
}

/// Runs the mlp example (weights copied) on `inputs`, asking for `-o out.safetensors`;
/// asserts that the run fails and writes nothing.
fn run_on_inputs(test: &str, inputs: BTreeMap<String, Tensor>) -> String {
    let d = mlp_dir(test);
    std::fs::copy(root().join("examples/mlp.safetensors"), d.join("mlp.safetensors")).unwrap();
    write(&d.join("in.safetensors"), &inputs);
    let err = fails(smelt_in(&d, &["run", "mlp.smelt", "--inputs", "in.safetensors", "-o", "out.safetensors"]));
    assert!(!d.join("out.safetensors").exists(), "-o was written on failure");
    let _ = std::fs::remove_dir_all(d);
    err
}

#[test]
fn inputs_with_the_wrong_name() {
    let x = Tensor::zeros(smelt::DType::F32, vec![2, 64]);
    insta::assert_snapshot!(run_on_inputs("inputs-name", BTreeMap::from([("input".to_string(), x)])));
}

#[test]
fn inputs_with_the_wrong_shape_and_dtype() {
    let x = Tensor::zeros(smelt::DType::F32, vec![2, 63]);
    insta::assert_snapshot!(
        "inputs_with_the_wrong_shape",
        run_on_inputs("inputs-shape", BTreeMap::from([("x".to_string(), x)]))
    );
    let x = Tensor::zeros(smelt::DType::I64, vec![2, 64]);
    insta::assert_snapshot!(
        "inputs_with_the_wrong_dtype",
        run_on_inputs("inputs-dtype", BTreeMap::from([("x".to_string(), x)]))
    );
}

#[test]
fn inputs_file_that_is_not_safetensors() {
    let d = mlp_dir("inputs-junk");
    std::fs::copy(root().join("examples/mlp.safetensors"), d.join("mlp.safetensors")).unwrap();
    std::fs::write(d.join("in.safetensors"), "not a tensor file").unwrap();
    let err = fails(smelt_in(&d, &["run", "mlp.smelt", "--inputs", "in.safetensors", "-o", "out.safetensors"]));
    assert!(!d.join("out.safetensors").exists());
    insta::assert_snapshot!(err);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn unknown_dim_symbol() {
    insta::assert_snapshot!(fails(smelt(&["run", "examples/mlp.smelt", "--dim", "B=2", "--dim", "N=2"])));
}

#[test]
fn init_weights_refuses_index_params() {
    let d = temp_dir("init-sparse");
    std::fs::write(
        d.join("s.smelt"),
        "graph s(x: f32[2, 4]) -> (y) {\n  vals = param f32[3]\n  idx = param i32[3]\n  off = param i32[5]\n  \
         y = sparse_matmul(x, vals, idx, off) {cols = 4}\n}\n",
    )
    .unwrap();
    let err = fails(smelt_in(&d, &["init-weights", "s.smelt"]));
    assert!(!d.join("s.safetensors").exists());
    insta::assert_snapshot!(err);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn usage_errors_exit_2() {
    let o = smelt(&["run"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    let o = smelt(&["run", "examples/mlp.smelt", "--dim", "N"]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("`N` is not SYM=SIZE"), "{}", o.stderr);
}

#[test]
fn run_time_error_names_the_node() {
    let d = temp_dir("run-time");
    std::fs::write(
        d.join("g.smelt"),
        "graph g(data: f32[4], idx: i64[2]) -> (y) {\n  y = gather(data, idx)  # f32[2]\n}\n",
    )
    .unwrap();
    let inputs = BTreeMap::from([
        ("data".to_string(), Tensor::f32(vec![4], vec![1.0, 2.0, 3.0, 4.0]).unwrap()),
        ("idx".to_string(), Tensor::i64(vec![2], vec![0, 9]).unwrap()),
    ]);
    write(&d.join("in.safetensors"), &inputs);
    let err = fails(smelt_in(&d, &["run", "g.smelt", "--inputs", "in.safetensors", "-o", "out.safetensors"]));
    assert!(!d.join("out.safetensors").exists());
    assert!(err.contains("\n  --> g.smelt:2:3 (node y)"), "{err}");
    insta::assert_snapshot!(err);
    let _ = std::fs::remove_dir_all(d);
}

/// A `--dim` whose run cannot fit in memory fails before anything of that size
/// is allocated, naming what it needs (not an allocation abort), on every
/// backend and in `bench`.
#[test]
fn runs_too_large_for_memory_fail_clearly() {
    if !Path::new("/proc/meminfo").exists() {
        return;
    }
    for backend in ["interp", "cranelift", "llvm"] {
        let err = fails(smelt(&["run", "examples/mlp.smelt", "--dim", "N=1000000000", "--backend", backend]));
        assert!(err.starts_with("error: graph mlp at N=1000000000 needs at least 488.0 GB"), "{backend}: {err}");
        assert!(err.contains("of memory available"), "{err}");
    }
    let err = fails(smelt(&["bench", "examples/mlp.smelt", "--dim", "N=1000000000"]));
    assert!(err.contains("needs at least"), "{err}");
}

/// `--dim` with `--inputs`: it must agree with the sizes the inputs give.
#[test]
fn dims_and_inputs_combine() {
    let d = temp_dir("dims-inputs");
    let x = smelt::Tensor::f32(vec![2, 64], vec![0.5; 128]).unwrap();
    smelt::ir::weights::write_safetensors(&d.join("x.safetensors"), [("x", &x)]).unwrap();
    let model = root().join("examples/mlp.smelt").display().to_string();
    let out = ok(smelt_in(&d, &["run", &model, "--inputs", "x.safetensors", "--dim", "N=2"]));
    assert!(out.starts_with("logp: f32[2, 10]"), "{out}");
    let err = fails(smelt_in(&d, &["run", &model, "--inputs", "x.safetensors", "--dim", "N=3"]));
    assert!(err.contains("--dim N=3, but the inputs give N = 2"), "{err}");
    let err = fails(smelt_in(&d, &["run", &model, "--inputs", "x.safetensors", "--dim", "M=3"]));
    assert!(err.contains("no symbol `M`"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
