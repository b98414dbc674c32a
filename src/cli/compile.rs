//! `smelt compile MODEL --emit kernel|clif|llvm|asm|obj|lib|wgsl [--backend cranelift|llvm]
//! [-O LEVEL] [--schedule S] [--dim N=4] [-o OUT]`: optimizes a model (`-O2` by
//! default), lowers it with the backend's schedule (symbolic dims bound by `--dim`,
//! unset ones 1) and shows the kernel IR, Cranelift's CLIF, LLVM IR (after O3),
//! the machine code, or writes an object file with one exported function per
//! kernel (`void smelt_<model>_<kernel>(void *const *buffers, int64_t lo, int64_t
//! hi)`), or an ahead-of-time library in a directory (`smelt_runtime::aot`):
//! `lib<model>.so`, `lib<model>.a`, `<model>.h`, `<model>.weights`, and the
//! sources they were built from, with the C compiler named by `$CC` (default
//! `cc`). `--emit wgsl` prints the WGSL compute shaders of the GPU lowering, one
//! per step, in the portable form every adapter runs (f16 packed two to a `u32`);
//! `--schedule wgsl-f16=on` prints the native-f16 form that `smelt run --backend
//! wgsl` uses on adapters with `shader-f16`.

use super::{EngineArgs, engine_err, reported, shown};
use smelt::engine::{self, BackendKind, Emit, Emitted};
use smelt::ir::weights;
use std::path::Path;

/// What `compile` emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmitArg {
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

/// What `compile` was asked to do.
#[derive(Debug)]
pub struct CompileArgs<'a> {
    pub model: &'a Path,
    pub emit: EmitArg,
    pub backend: Option<NativeBackend>,
    pub dims: &'a [(String, u64)],
    pub out: Option<&'a Path>,
    pub engine: &'a EngineArgs,
}

pub fn main(a: &CompileArgs) -> anyhow::Result<()> {
    if a.engine.schedule_help() {
        return Ok(());
    }
    let emit = match a.emit {
        EmitArg::Kernel => Emit::Kernel,
        EmitArg::Clif => Emit::Clif,
        EmitArg::Llvm => Emit::Llvm,
        EmitArg::Asm => Emit::Asm,
        EmitArg::Obj => Emit::Obj,
        EmitArg::Lib => Emit::Lib,
        EmitArg::Wgsl => Emit::Wgsl,
    };
    let backend = match (emit, a.backend) {
        (Emit::Llvm, Some(NativeBackend::Cranelift)) => return reported("error: --emit llvm needs --backend llvm"),
        (Emit::Clif, Some(NativeBackend::Llvm)) => return reported("error: --emit clif needs --backend cranelift"),
        (Emit::Wgsl, _) => BackendKind::Wgsl,
        (Emit::Llvm, _) | (_, Some(NativeBackend::Llvm)) => BackendKind::Llvm,
        _ => BackendKind::Cranelift,
    };
    if matches!(emit, Emit::Obj) && a.out.is_none() {
        return reported("error: --emit obj writes a binary file: give it with -o FILE.o");
    }
    if matches!(emit, Emit::Lib) && a.out.is_none() {
        return reported("error: --emit lib writes a directory: give it with -o DIR");
    }
    let opts = a.engine.options(backend, 1, None)?;
    let (source, dims) = super::source_with_dims(a.model, a.dims);
    let mut model = engine::prepare(source, &opts).map_err(engine_err)?;
    super::tune::if_asked(a.engine, &mut model, dims)?;
    let dims = model.bindings(dims).map_err(engine_err)?;
    write(model.emit(emit, &dims).map_err(engine_err)?, a.out)
}

fn write(e: Emitted, out: Option<&Path>) -> anyhow::Result<()> {
    match e {
        Emitted::Library(lib) => {
            let dir = out.expect("checked: --emit lib has -o");
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            engine::write_library(&lib, dir, &cc).map_err(engine_err)?;
            let n = &lib.name;
            eprintln!("wrote lib{n}.so, lib{n}.a, {n}.h, {n}.weights ({} bytes of weights) to {}", lib.weights.len(), shown(dir));
            Ok(())
        }
        Emitted::Text { text, kernels } => write_bytes(text.as_bytes(), kernels, out, true),
        Emitted::Object { bytes, kernels } => write_bytes(&bytes, kernels, out, false),
    }
}

fn write_bytes(bytes: &[u8], kernels: usize, out: Option<&Path>, text: bool) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            if let Err(e) = weights::write_atomic(path, bytes) {
                return reported(e.render(None));
            }
            let what = if text { "bytes of text" } else { "bytes" };
            eprintln!("wrote {} {what} ({kernels} kernels) to {}", bytes.len(), shown(path));
        }
        None => print!("{}", String::from_utf8_lossy(bytes)),
    }
    Ok(())
}
