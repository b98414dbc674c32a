//! Ahead-of-time output of a model: its kernels as text (kernel IR, CLIF, LLVM
//! IR, assembly, WGSL), an object file, or a C library (`smelt_runtime::aot`:
//! object file, C driver, header, weights) that [`write_library`] writes to a
//! folder and builds into `lib<model>.so` and `lib<model>.a`.
//!
//! Symbolic dims are bound first (AOT code has fixed shapes). The native code
//! is for this machine's CPU and uses the backend's schedule without the
//! micro-kernels (calls into this process; [`Target::for_object`]).

use crate::error::{self, Error, ErrorKind, Result};
use crate::options::{BackendKind, Options};
use smelt_codegen::schedule::Target;
use smelt_codegen::{Backend, cranelift, lower, wgsl};
use smelt_ir::{Bindings, Graph, weights};
use std::path::Path;
use std::process::Command;

/// What to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Emit {
    /// The kernel IR of every step, as scheduled.
    Kernel,
    /// Cranelift IR (`--backend cranelift`).
    Clif,
    /// LLVM IR after the O3 pipeline (`--backend llvm`).
    Llvm,
    /// The machine code as assembly.
    Asm,
    /// An object file with one exported function per kernel.
    Obj,
    /// A C library: object file, driver, header, weights.
    Lib,
    /// The WGSL compute shaders of the GPU lowering, one per step.
    Wgsl,
}

/// What was emitted.
#[derive(Debug)]
pub enum Emitted {
    /// Text (kernel IR, CLIF, LLVM IR, assembly, WGSL).
    Text { text: String, kernels: usize },
    /// An object file.
    Object { bytes: Vec<u8>, kernels: usize },
    /// A C library's parts (see [`write_library`]).
    Library(smelt_runtime::aot::Library),
}

/// The native code generator an emission uses: LLVM for `Llvm` or with the LLVM
/// backend, else Cranelift (the interpreter and WGSL emit native code with
/// Cranelift).
fn native_backend(what: Emit, o: &Options) -> Result<Backend> {
    match (what, o.backend) {
        (Emit::Llvm, BackendKind::Cranelift) => Err(Error::text(ErrorKind::Options, "--emit llvm needs --backend llvm")),
        (Emit::Clif, BackendKind::Llvm) => Err(Error::text(ErrorKind::Options, "--emit clif needs --backend cranelift")),
        (Emit::Llvm, _) | (_, BackendKind::Llvm) => Ok(Backend::Llvm),
        _ => Ok(Backend::Cranelift),
    }
}

/// Emits `g` (optimized; `source`, the graph as loaded) bound at `dims`.
pub fn emit(g: &Graph, source: &Graph, o: &Options, what: Emit, dims: &Bindings) -> Result<Emitted> {
    let bound = g.bind(dims).map_err(|d| Error::diags(ErrorKind::Model, d.0))?;
    let codegen_err = |e: smelt_codegen::Error| error::codegen(g, e).with_positions_from(source);
    if what == Emit::Wgsl {
        wgsl::check(g).map_err(codegen_err)?;
        let prog = lower::lower(&bound, &wgsl::target()).map_err(codegen_err)?;
        let text = wgsl::print_program(&prog, &wgsl::Options::for_device(false, &o.schedule)).map_err(codegen_err)?;
        return Ok(Emitted::Text { text, kernels: prog.steps.len() });
    }
    let backend = native_backend(what, o)?;
    if !backend.built() {
        return Err(codegen_err(smelt_codegen::not_built(backend)));
    }
    let target = match &o.target {
        Some(t) => t.clone(),
        None => Target::for_object(backend, &o.schedule).map_err(codegen_err)?,
    };
    let named = |e: smelt_codegen::Error| match e {
        smelt_codegen::Error::Unsupported { op, node, .. } => smelt_codegen::Error::Unsupported { backend: backend.name(), op, node },
        e => e,
    };
    if what == Emit::Lib {
        let lib = smelt_runtime::aot::build(&bound, &target, backend).map_err(|e| codegen_err(named(e)))?;
        return Ok(Emitted::Library(lib));
    }
    let prog = lower::lower(&bound, &target).map_err(|e| codegen_err(named(e)))?;
    let kernels: Vec<_> = prog.steps.iter().map(|s| s.kernel.clone()).collect();
    let n = kernels.len();
    let text = |r: std::result::Result<String, smelt_codegen::Error>| -> Result<Emitted> {
        Ok(Emitted::Text { text: r.map_err(codegen_err)?, kernels: n })
    };
    match what {
        Emit::Kernel => text(Ok(prog.print_kernels())),
        Emit::Clif => text(cranelift::clif(&kernels)),
        Emit::Llvm | Emit::Asm if backend == Backend::Llvm => llvm_text(what, &kernels, &target).map(|t| Emitted::Text { text: t, kernels: n }).map_err(codegen_err),
        Emit::Asm => text(cranelift::asm(&kernels)),
        _ => {
            let bytes = smelt_codegen::object(backend, &kernels, &format!("smelt_{}", prog.name), &target).map_err(codegen_err)?;
            Ok(Emitted::Object { bytes, kernels: n })
        }
    }
}

#[cfg(feature = "llvm")]
fn llvm_text(what: Emit, kernels: &[smelt_codegen::kernel::Kernel], t: &Target) -> std::result::Result<String, smelt_codegen::Error> {
    let o = smelt_codegen::llvm::Options::of(t);
    if what == Emit::Llvm { smelt_codegen::llvm::ir(kernels, &o) } else { smelt_codegen::llvm::asm(kernels, &o) }
}

#[cfg(not(feature = "llvm"))]
fn llvm_text(_: Emit, _: &[smelt_codegen::kernel::Kernel], _: &Target) -> std::result::Result<String, smelt_codegen::Error> {
    Err(smelt_codegen::not_built(Backend::Llvm))
}

/// Writes a library's files into `dir` (each atomically) and builds
/// `lib<name>.so` and `lib<name>.a` with the C compiler `cc` and `ar`; returns
/// the names of the files built.
pub fn write_library(lib: &smelt_runtime::aot::Library, dir: &Path, cc: &str) -> Result<Vec<String>> {
    let io = |m: String| Error::text(ErrorKind::Io, m);
    std::fs::create_dir_all(dir).map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
    let n = &lib.name;
    let files: [(String, &[u8]); 4] = [
        (format!("{n}.h"), lib.header.as_bytes()),
        (format!("{n}.c"), lib.driver.as_bytes()),
        (format!("{n}_kernels.o"), &lib.object),
        (format!("{n}.weights"), &lib.weights),
    ];
    for (f, bytes) in &files {
        weights::write_atomic(&dir.join(f), bytes).map_err(|e| io(e.render(None)))?;
    }
    let run = |cmd: &mut Command| -> Result<()> {
        let shown = format!("{cmd:?}");
        match cmd.current_dir(dir).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(io(format!("`{shown}` failed:\n{}", String::from_utf8_lossy(&o.stderr)))),
            Err(e) => Err(io(format!("cannot run `{shown}`: {e} (set CC to a C compiler)"))),
        }
    };
    let driver_o = format!("{n}_driver.o");
    run(Command::new(cc).args(["-O2", "-fPIC", "-std=c11", "-c", &format!("{n}.c"), "-o", &driver_o]))?;
    run(Command::new(cc).args(["-shared", "-o", &format!("lib{n}.so"), &driver_o, &format!("{n}_kernels.o")]))?;
    let archive = dir.join(format!("lib{n}.a"));
    let _ = std::fs::remove_file(&archive);
    run(Command::new("ar").args(["rcs", &format!("lib{n}.a"), &driver_o, &format!("{n}_kernels.o")]))?;
    Ok(vec![format!("lib{n}.so"), format!("lib{n}.a"), format!("{n}.h"), format!("{n}.weights")])
}
