//! `smelt run --backend cranelift|llvm` and `smelt compile` end to end: compiled
//! runs of every example agree with the interpreter (on 1 and 2 threads), every
//! `--emit` form comes out for both backends, and failures (an unsupported op, an
//! object file without `-o`, a backend that cannot emit the form asked for) give one
//! message, exit status 1, and no file.

use smelt::ir::weights::read_safetensors;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn smelt(args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(root()).output().expect("run smelt");
    Out { code: o.status.code(), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() }
}

fn ok(o: Out) -> String {
    assert_eq!(o.code, Some(0), "expected success\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    o.stdout
}

fn fails(o: Out) -> String {
    assert_eq!(o.code, Some(1), "expected exit status 1\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("panicked"), "panic:\n{}", o.stderr);
    assert!(o.stderr.starts_with("error: "), "not an error message:\n{}", o.stderr);
    o.stderr
}

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-codegen-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn compiled_runs_agree_with_the_interpreter() {
    let d = temp_dir("run");
    let models = [
        ("mlp", &["--dim", "N=3"][..]),
        ("resblock", &["--dim", "N=2"][..]),
        ("attention", &["--dim", "B=2", "--dim", "T=5"][..]),
    ];
    for (model, dims) in models {
        let path = format!("examples/{model}.smelt");
        let want = d.join(format!("{model}.interp.safetensors"));
        let mut args = vec!["run", path.as_str(), "--random", "3"];
        args.extend_from_slice(dims);
        ok(smelt(&[&args[..], &["--backend", "interp", "-o", want.to_str().unwrap()]].concat()));
        let want = read_safetensors(&want).unwrap();
        for (backend, threads) in [("cranelift", "1"), ("cranelift", "2"), ("llvm", "1"), ("llvm", "2")] {
            let got = d.join(format!("{model}.{backend}.{threads}.safetensors"));
            let out = ok(smelt(&[&args[..], &["--backend", backend, "--threads", threads, "-o", got.to_str().unwrap()]].concat()));
            assert!(out.contains(": f32["), "{out}");
            let got = read_safetensors(&got).unwrap();
            assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
            if let Err(e) = smelt::interp::compare::compare_all(&format!("{model} on {backend} ×{threads}"), &got, &want) {
                panic!("{e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn compile_emits_kernels_clif_asm_and_objects() {
    // -O0: the graph as written, one kernel (or a GEMM's two) per node.
    let kernels = ok(smelt(&["compile", "examples/mlp.smelt", "--emit", "kernel", "--dim", "N=4", "-O0"]));
    assert!(kernels.starts_with("# node h1\nkernel h1_pack_a("), "{kernels}");
    assert!(kernels.contains("kernel z1(") && kernels.contains("kernel logp("), "{kernels}");
    // -O2, the default: bias and relu fused into the first GEMM (a1), the bias
    // into the second.
    let kernels = ok(smelt(&["compile", "examples/mlp.smelt", "--emit", "kernel", "--dim", "N=4"]));
    assert!(kernels.starts_with("# node a1\nkernel a1_pack_a("), "{kernels}");
    assert!(!kernels.contains("kernel z1(") && kernels.contains("kernel logp("), "{kernels}");
    let clif = ok(smelt(&["compile", "examples/mlp.smelt", "--emit", "clif", "-O0"]));
    assert!(clif.contains("; kernel h1_gemm\nfunction "), "{clif}");
    let asm = ok(smelt(&["compile", "examples/resblock.smelt", "--emit", "asm"]));
    assert!(asm.contains("vfmadd"), "the GEMM micro-kernel uses fused multiply-adds");
    let d = temp_dir("obj");
    let obj = d.join("mlp.o");
    let o = smelt(&["compile", "examples/mlp.smelt", "--emit", "obj", "-o", obj.to_str().unwrap()]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let bytes = std::fs::read(&obj).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn compile_emits_llvm_ir_avx2_asm_and_objects() {
    let ir = ok(smelt(&["compile", "examples/mlp.smelt", "--emit", "llvm"]));
    assert!(ir.contains("define void @a1_gemm(i8** noalias"), "{ir}");
    assert!(ir.contains("\"target-cpu\"="), "functions carry the host CPU");
    let asm = ok(smelt(&["compile", "examples/resblock.smelt", "--emit", "asm", "--backend", "llvm"]));
    let fma = |reg: &str| asm.contains(&format!("vfmadd231ps\t{reg}")) || asm.contains(&format!("vfmadd213ps\t{reg}"));
    if smelt::codegen::llvm::host_has_avx512() {
        assert!(fma("%zmm"), "16-wide FMAs in the micro-kernel");
    } else if smelt::codegen::llvm::host_has_avx2_fma() {
        assert!(fma("%ymm"), "8-wide FMAs in the micro-kernel");
    }
    let d = temp_dir("llvm-obj");
    let obj = d.join("mlp.o");
    let o = smelt(&["compile", "examples/mlp.smelt", "--emit", "obj", "--backend", "llvm", "-o", obj.to_str().unwrap()]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let bytes = std::fs::read(&obj).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    let _ = std::fs::remove_dir_all(d);
    let err = fails(smelt(&["compile", "examples/mlp.smelt", "--emit", "clif", "--backend", "llvm"]));
    assert_eq!(err, "error: --emit clif needs --backend cranelift\n");
    let err = fails(smelt(&["compile", "examples/mlp.smelt", "--emit", "llvm", "--backend", "cranelift"]));
    assert_eq!(err, "error: --emit llvm needs --backend llvm\n");
}

#[test]
fn object_files_need_an_output_path() {
    let err = fails(smelt(&["compile", "examples/mlp.smelt", "--emit", "obj"]));
    assert_eq!(err, "error: --emit obj writes a binary file: give it with -o FILE.o\n");
}

#[test]
fn quantized_tensors_move_through_shape_ops() {
    // Shape ops move a quantized tensor's integers as they are; every backend
    // gives the interpreter's bytes. (Unsupported ops are reported as
    // `not supported on <backend>: <op> at node <name>`.)
    let d = temp_dir("quantized_moves");
    let model = d.join("q.smelt");
    let src = "graph q(a: i8[2, 3] quant(scale = 0.5, zero_point = 1)) -> (y, z) {\n  y = transpose(a) {perm = [1, 0]}\n  z = concat(a, a) {axis = 1}\n}\n";
    std::fs::write(&model, src).unwrap();
    let m = model.to_str().unwrap();
    let want = d.join("want.safetensors");
    ok(smelt(&["run", m, "--random", "3", "--backend", "interp", "-o", want.to_str().unwrap()]));
    for b in ["cranelift", "llvm"] {
        let got = d.join(format!("{b}.safetensors"));
        ok(smelt(&["run", m, "--random", "3", "--backend", b, "-o", got.to_str().unwrap()]));
        assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&want).unwrap(), "{b}");
    }
    let _ = std::fs::remove_dir_all(d);
}
