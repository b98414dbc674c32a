//! `smelt run --backend wgsl` on every example equals the interpreter (outputs
//! written with `-o` and compared within the suite's f32 tolerance), `smelt compile
//! --emit wgsl` prints one shader per step, i64 tensors give the interpreter's bytes,
//! `--profile` times each step, and a bad `--adapter` is a clear error.
//! Needs a Vulkan adapter (lavapipe in CI); `SMELT_SKIP_GPU=1` skips.

use smelt::ir::weights::read_safetensors;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn smelt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(root()).output().expect("run smelt")
}

/// Whether to skip: only when there is no adapter and `SMELT_SKIP_GPU=1` says
/// so (said on stderr); with an adapter the tests run whatever the variable says,
/// and without one (and without the variable) they fail.
fn skip() -> bool {
    match smelt::engine::Wgsl::default().device() {
        Ok(_) => false,
        Err(e) if std::env::var("SMELT_SKIP_GPU").is_ok_and(|v| v == "1") => {
            eprintln!("skipped (SMELT_SKIP_GPU=1, no adapter): {e}");
            true
        }
        Err(e) => panic!("{e}\n(set SMELT_SKIP_GPU=1 to skip the WGSL tests on a machine without Vulkan)"),
    }
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-cli-wgsl-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn examples_run_on_wgsl_as_on_the_interpreter() {
    if skip() {
        return;
    }
    let dir = temp("examples");
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples")).expect("examples/").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
    files.sort();
    assert!(files.len() >= 3);
    for f in &files {
        let stem = f.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let model = f.to_string_lossy().to_string();
        let (gpu, cpu) = (dir.join(format!("{stem}.wgsl.safetensors")), dir.join(format!("{stem}.interp.safetensors")));
        let o = smelt(&["run", &model, "--backend", "wgsl", "--random", "3", "-o", &gpu.to_string_lossy()]);
        assert!(o.status.success(), "{stem} on wgsl: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("wgsl on "), "the adapter is named");
        let o = smelt(&["run", &model, "--random", "3", "-o", &cpu.to_string_lossy()]);
        assert!(o.status.success(), "{stem}: {}", String::from_utf8_lossy(&o.stderr));
        let (g, w) = (read_safetensors(&gpu).expect("wgsl outputs"), read_safetensors(&cpu).expect("outputs"));
        assert_eq!(g.keys().collect::<Vec<_>>(), w.keys().collect::<Vec<_>>());
        if let Err(e) = smelt::interp::compare::compare_all(&format!("{stem} on wgsl"), &g, &w) {
            panic!("{e}");
        }
    }
}

#[test]
fn compile_emits_wgsl() {
    let o = smelt(&["compile", "examples/mlp.smelt", "--emit", "wgsl", "--dim", "N=2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("@compute @workgroup_size"), "{text}");
    assert!(text.contains("tiled GEMM"), "matmul becomes the tiled shader:\n{text}");
}

#[test]
fn unknown_adapter_is_an_error() {
    if skip() {
        return;
    }
    let o = smelt(&["run", "examples/mlp.smelt", "--backend", "wgsl", "--adapter", "no-such-gpu-xyz"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no adapter matches `no-such-gpu-xyz`; adapters: 0: "), "{err}");
}

#[test]
fn i64_tensors_run_on_wgsl_as_on_the_interpreter() {
    // i64 data (formerly refused on WGSL): two-word integers in the shaders, the
    // interpreter's bytes exactly.
    if skip() {
        return;
    }
    let d = temp("i64");
    let model = d.join("iarith.smelt");
    let src = "graph iarith(a: i64[37], b: i64[37]) -> (y, s) {\n  p = mul(a, b)\n  y = sub(p, a)\n  s = reduce_sum(y) {keepdims = false}\n}\n";
    std::fs::write(&model, src).expect("write model");
    let m = model.to_string_lossy().to_string();
    let (gpu, cpu) = (d.join("wgsl.safetensors"), d.join("interp.safetensors"));
    let o = smelt(&["run", &m, "--backend", "wgsl", "--random", "5", "-o", &gpu.to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = smelt(&["run", &m, "--backend", "interp", "--random", "5", "-o", &cpu.to_string_lossy()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&gpu).expect("wgsl outputs"), std::fs::read(&cpu).expect("outputs"));
}

/// `--profile` on the GPU: each step's time from timestamp queries, one line per
/// kernel call and a total (lavapipe has timestamps; an adapter without them is
/// a clear error).
#[test]
fn profile_times_every_step_on_wgsl() {
    if skip() {
        return;
    }
    let o = smelt(&["run", "examples/resblock.smelt", "--random", "1", "--backend", "wgsl", "--profile"]);
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        assert!(err.contains("has no timestamp queries: cannot profile"), "{err}");
        return;
    }
    let total = err.lines().find(|l| l.contains("total of")).unwrap_or_else(|| panic!("no total: {err}"));
    let calls: usize = total.split_whitespace().rev().nth(2).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{total}"));
    let rows = err.lines().filter(|l| l.contains('%') && !l.contains("total of") && !l.contains("kernel (node)")).count();
    assert!(calls > 0 && rows == calls, "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("logits: f32[1, 10]"));
}
