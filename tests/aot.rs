//! Ahead-of-time libraries end to end: `smelt compile --emit lib` for every example
//! on Cranelift and LLVM, a C program (`tests/aot/main.c`) compiled with the system
//! `cc` against the header and linked with the shared library (and, for one model,
//! the static archive), run on random inputs; its outputs must match the reference
//! interpreter (at the suites' shared tolerance, `smelt_interp::compare`). Also: a
//! weights file of another model is refused at init.

use smelt::interp::compare::{Tolerance, compare};
use smelt::ir::{Bindings, Data, Tensor, load_model};
use smelt::runtime::init::random_inputs;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-aot-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (the AOT tests need a C compiler `cc`)"));
    assert!(o.status.success(), "{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// Builds the library of `model` with `backend` into `dir`, and the C program
/// against it (shared, or static with `static_link`).
fn build(model: &str, dims: &[(&str, u64)], backend: &str, dir: &Path, static_link: bool) -> PathBuf {
    build_from(&root().join(format!("examples/{model}.smelt")), model, dims, backend, dir, static_link)
}

/// [`build`] for the model file `path`, whose library is `model`.
fn build_from(path: &Path, model: &str, dims: &[(&str, u64)], backend: &str, dir: &Path, static_link: bool) -> PathBuf {
    let mut args: Vec<String> = vec!["compile".into(), path.display().to_string(), "--emit".into(), "lib".into()];
    args.extend(["--backend".into(), backend.into(), "-o".into(), dir.display().to_string()]);
    for (k, v) in dims {
        args.extend(["--dim".into(), format!("{k}={v}")]);
    }
    run(Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(&args).current_dir(root()));
    for f in [format!("lib{model}.so"), format!("lib{model}.a"), format!("{model}.h"), format!("{model}.weights")] {
        assert!(dir.join(&f).exists(), "{f} was not written");
    }
    let exe = dir.join(if static_link { "main_static" } else { "main" });
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-O1", "-Wall", "-Werror", "-include"]).arg(dir.join(format!("{model}.h")));
    cc.arg(format!("-DMODEL={model}")).arg(root().join("tests/aot/main.c")).arg("-o").arg(&exe);
    if static_link {
        cc.arg(dir.join(format!("lib{model}.a")));
    } else {
        cc.arg(format!("-L{}", dir.display())).arg(format!("-l{model}")).arg(format!("-Wl,-rpath,{}", dir.display()));
    }
    run(&mut cc);
    exe
}

/// Runs `exe` on random inputs of `model` and checks its outputs against the
/// interpreter.
fn check(model: &str, dims: &[(&str, u64)], exe: &Path, weights: &Path, what: &str) {
    check_from(&root().join(format!("examples/{model}.smelt")), dims, exe, weights, what)
}

/// [`check`] for the model file `path`.
fn check_from(path: &Path, dims: &[(&str, u64)], exe: &Path, weights: &Path, what: &str) {
    let g = load_model(path).unwrap();
    let b: Bindings = dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let inputs = random_inputs(&g, 7, &b).unwrap();
    let want = smelt::runtime::run(&g, &inputs).unwrap();
    let names = String::from_utf8(run(Command::new(exe).arg("--names"))).unwrap();
    let ins: Vec<&str> = names.lines().filter_map(|l| l.strip_prefix("in ")).collect();
    let outs: Vec<&str> = names.lines().filter_map(|l| l.strip_prefix("out ")).collect();
    assert_eq!(ins.iter().copied().collect::<std::collections::BTreeSet<_>>(), inputs.keys().map(String::as_str).collect());
    assert_eq!(outs.iter().copied().collect::<std::collections::BTreeSet<_>>(), want.keys().map(String::as_str).collect());
    let mut stdin = vec![];
    for n in &ins {
        stdin.extend(inputs[*n].data().to_le_bytes());
    }
    let mut child = Command::new(exe).arg(weights).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&stdin).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
    let mut at = 0;
    let mut got = BTreeMap::new();
    for n in &outs {
        let w = &want[*n];
        let len = w.numel() * w.dtype().size();
        let data = Data::from_le_bytes(w.dtype(), &o.stdout[at..at + len]).unwrap();
        got.insert(n.to_string(), data);
        at += len;
    }
    assert_eq!(at, o.stdout.len(), "{what}: extra output bytes");
    for (n, w) in &want {
        let g = Tensor::new(w.shape().to_vec(), got[n].clone()).unwrap();
        if let Err(e) = compare(&format!("{what}: {n}"), &g, w, Tolerance::for_dtype(w.dtype())) {
            panic!("the library against the interpreter: {e}");
        }
    }
}

const MODELS: [(&str, &[(&str, u64)]); 3] =
    [("mlp", &[("N", 3)]), ("resblock", &[("N", 2)]), ("attention", &[("B", 2), ("T", 5)])];

#[test]
fn libraries_agree_with_the_interpreter() {
    for backend in ["cranelift", "llvm"] {
        for (model, dims) in MODELS {
            let dir = temp_dir(&format!("{backend}-{model}"));
            let exe = build(model, dims, backend, &dir, false);
            check(model, dims, &exe, &dir.join(format!("{model}.weights")), &format!("{model} on {backend} (shared)"));
            if model == "resblock" {
                let exe = build(model, dims, backend, &dir, true);
                check(model, dims, &exe, &dir.join(format!("{model}.weights")), &format!("{model} on {backend} (static)"));
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn init_refuses_a_wrong_weights_file() {
    let dir = temp_dir("wrong-weights");
    let exe = build("mlp", &[("N", 1)], "llvm", &dir, false);
    let other = temp_dir("wrong-weights-other");
    build("resblock", &[("N", 1)], "llvm", &other, false);
    for (file, why) in [(other.join("resblock.weights"), "payload size differs"), (root().join("examples/mlp.smelt"), "not a smelt weights file")] {
        let o = Command::new(&exe).arg(&file).stdin(Stdio::null()).output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("init: ") && err.contains(why), "{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(other);
}

/// A model's own names (as ONNX has them: `/`, `::`, even `*/`) are kept by the
/// library's name functions; its C symbols and header stay valid C.
#[test]
fn libraries_keep_the_models_own_names() {
    let dir = temp_dir("names");
    let src = "graph odd(\"gpu_0/data_0\": f32[2, 4]) -> (\"a*/b\", \"onnx::Flatten_0\") {\n  w = param f32[4, 3]\n  \"a*/b\" = matmul(\"gpu_0/data_0\", w)\n  \"onnx::Flatten_0\" = relu(\"a*/b\")\n}\n";
    let model = dir.join("odd-model.smelt");
    std::fs::write(&model, src).unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(["init-weights", "odd-model.smelt"]).current_dir(&dir));
    let lib = dir.join("lib");
    let exe = build_from(&model, "odd", &[], "cranelift", &lib, false);
    let names = String::from_utf8(run(Command::new(&exe).arg("--names"))).unwrap();
    assert_eq!(names, "in gpu_0/data_0\nout a*/b\nout onnx::Flatten_0\n");
    check_from(&model, &[], &exe, &lib.join("odd.weights"), "odd on cranelift");
    let _ = std::fs::remove_dir_all(dir);
}
