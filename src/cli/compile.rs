//! `smelt compile MODEL --emit kernel|clif|llvm|asm|obj|lib|wgsl [--backend cranelift|llvm]
//! [--dim N=4] [-o OUT]`: lowers a model with the backend's schedule (symbolic dims
//! bound by `--dim`, unset ones 1) and shows the kernel IR, Cranelift's CLIF, LLVM
//! IR (after O3), the machine code, or writes an object file with one exported
//! function per kernel (`void smelt_<model>_<kernel>(void *const *buffers, int64_t
//! lo, int64_t hi)`), or an ahead-of-time library in a directory
//! (`smelt_runtime::aot`): `lib<model>.so`, `lib<model>.a`, `<model>.h`,
//! `<model>.weights`, and the sources they were built from, with the C compiler
//! named by `$CC` (default `cc`). `--emit wgsl` prints the WGSL compute shaders of
//! the GPU lowering, one per step, in the portable form every adapter runs (f16
//! packed two to a `u32`); `SMELT_WGSL_F16=1` prints the native-f16 form that
//! `smelt run --backend wgsl` uses on adapters with `shader-f16`.

use super::run::{dims, render_codegen_error};
use super::{load_model, reported, shown};
use smelt::codegen::{self, Backend, cranelift, llvm, lower, schedule::Target};
use smelt::ir::{Bindings, weights};
use std::path::Path;
use std::process::Command;

/// What `compile` emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// The kernel IR of every step, as scheduled.
    Kernel,
    /// Cranelift IR, after vectorization.
    Clif,
    /// LLVM IR, after the O3 pipeline.
    Llvm,
    /// The machine code, as assembly.
    Asm,
    /// An object file (needs `-o`).
    Obj,
    /// A shared library, static archive, C header and weights file (needs `-o DIR`).
    Lib,
    /// The WGSL compute shaders of the GPU lowering, one per step.
    Wgsl,
}

/// The native backends `compile` generates code with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NativeBackend {
    Cranelift,
    Llvm,
}

pub fn main(model: &Path, emit: Emit, backend: Option<NativeBackend>, given: &[(String, u64)], out: Option<&Path>) -> anyhow::Result<()> {
    let backend = match (emit, backend) {
        (Emit::Llvm, Some(NativeBackend::Cranelift)) => return reported("error: --emit llvm needs --backend llvm"),
        (Emit::Clif, Some(NativeBackend::Llvm)) => return reported("error: --emit clif needs --backend cranelift"),
        (Emit::Llvm, _) | (_, Some(NativeBackend::Llvm)) => Backend::Llvm,
        _ => Backend::Cranelift,
    };
    let shown_model = shown(model);
    let g = load_model(model)?;
    let mut b: Bindings = dims(&g, given)?;
    for &i in g.inputs() {
        for s in g.node(i).types[0].shape.symbols() {
            b.entry(s.to_string()).or_insert(1);
        }
    }
    let bound = match g.bind(&b) {
        Ok(bg) => bg,
        Err(d) => return reported(d.render(Some(&shown_model))),
    };
    if emit == Emit::Wgsl {
        let text = match smelt::codegen::wgsl::check(&g)
            .and_then(|()| lower::lower(&bound, &smelt::codegen::wgsl::target()))
            .and_then(|p| smelt::codegen::wgsl::print_program(&p, &smelt::codegen::wgsl::Options::from_env(false)))
        {
            Ok(t) => t,
            Err(e) => return reported(render_codegen_error(&g, &shown_model, e)),
        };
        return match out {
            Some(path) => match weights::write_atomic(path, text.as_bytes()) {
                Ok(()) => {
                    eprintln!("wrote {} bytes of WGSL to {}", text.len(), shown(path));
                    Ok(())
                }
                Err(e) => reported(e.render(None)),
            },
            None => {
                print!("{text}");
                Ok(())
            }
        };
    }
    let target = Target::for_object(backend);
    let unsupported_as = |e: codegen::Error| match e {
        codegen::Error::Unsupported { op, node, .. } => codegen::Error::Unsupported { backend: backend.name(), op, node },
        e => e,
    };
    if emit == Emit::Lib {
        let Some(dir) = out else {
            return reported("error: --emit lib writes a directory: give it with -o DIR");
        };
        return match smelt::runtime::aot::build(&bound, &target, backend) {
            Ok(lib) => write_lib(&lib, dir),
            Err(e) => reported(render_codegen_error(&g, &shown_model, unsupported_as(e))),
        };
    }
    let prog = match lower::lower(&bound, &target) {
        Ok(p) => p,
        Err(e) => return reported(render_codegen_error(&g, &shown_model, unsupported_as(e))),
    };
    let kernels: Vec<_> = prog.steps.iter().map(|s| s.kernel.clone()).collect();
    let r = match (emit, backend) {
        (Emit::Kernel | Emit::Wgsl, _) => Ok(prog.print_kernels().into_bytes()),
        (Emit::Clif, _) => cranelift::clif(&kernels).map(String::into_bytes),
        (Emit::Llvm, _) => llvm::ir(&kernels).map(String::into_bytes),
        (Emit::Asm, Backend::Llvm) => llvm::asm(&kernels).map(String::into_bytes),
        (Emit::Asm, _) => cranelift::asm(&kernels).map(String::into_bytes),
        _ => codegen::object(backend, &kernels, &format!("smelt_{}", prog.name)),
    };
    let bytes = match r {
        Ok(b) => b,
        Err(e) => return reported(render_codegen_error(&g, &shown_model, e)),
    };
    match out {
        Some(path) => {
            if let Err(e) = weights::write_atomic(path, &bytes) {
                return reported(e.render(None));
            }
            eprintln!("wrote {} bytes ({} kernels) to {}", bytes.len(), kernels.len(), shown(path));
        }
        None if emit == Emit::Obj => return reported("error: --emit obj writes a binary file: give it with -o FILE.o"),
        None => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(())
}

/// Writes the library's files into `dir` and builds `lib<name>.so` and `lib<name>.a`.
fn write_lib(lib: &smelt::runtime::aot::Library, dir: &Path) -> anyhow::Result<()> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return reported(format!("error: cannot create {}: {e}", shown(dir)));
    }
    let n = &lib.name;
    let files: [(String, &[u8]); 4] = [
        (format!("{n}.h"), lib.header.as_bytes()),
        (format!("{n}.c"), lib.driver.as_bytes()),
        (format!("{n}_kernels.o"), &lib.object),
        (format!("{n}.weights"), &lib.weights),
    ];
    for (f, bytes) in &files {
        if let Err(e) = weights::write_atomic(&dir.join(f), bytes) {
            return reported(e.render(None));
        }
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let run = |cmd: &mut Command| -> Result<(), String> {
        let shown_cmd = format!("{cmd:?}");
        match cmd.current_dir(dir).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!("error: `{shown_cmd}` failed:\n{}", String::from_utf8_lossy(&o.stderr))),
            Err(e) => Err(format!("error: cannot run `{shown_cmd}`: {e} (set CC to a C compiler)")),
        }
    };
    let driver_o = format!("{n}_driver.o");
    let steps = [
        Command::new(&cc).args(["-O2", "-fPIC", "-std=c11", "-c", &format!("{n}.c"), "-o", &driver_o]),
        Command::new(&cc).args(["-shared", "-o", &format!("lib{n}.so"), &driver_o, &format!("{n}_kernels.o")]),
    ]
    .into_iter()
    .map(&run)
    .collect::<Result<Vec<()>, String>>();
    if let Err(m) = steps {
        return reported(m);
    }
    let archive = dir.join(format!("lib{n}.a"));
    let _ = std::fs::remove_file(&archive);
    if let Err(m) = run(Command::new("ar").args(["rcs", &format!("lib{n}.a"), &driver_o, &format!("{n}_kernels.o")])) {
        return reported(m);
    }
    eprintln!(
        "wrote lib{n}.so, lib{n}.a, {n}.h, {n}.weights ({} bytes of weights) to {}",
        lib.weights.len(),
        shown(dir)
    );
    Ok(())
}
