//! The LLVM backend (inkwell, LLVM 14): kernel IR → LLVM IR → the `default<O3>`
//! pipeline → machine code for the host CPU, in memory (MCJIT, [`jit`]) or as an
//! object file ([`object`]). The host CPU and its features are detected by LLVM
//! and set on every function as `"target-cpu"` and `"target-features"`
//! attributes: without them the JIT targets generic x86-64 (SSE only). Kernels are
//! vectorized at the width of the schedule they were lowered with
//! ([`crate::schedule::Target::llvm`]: 16 f32 lanes with AVX-512, 8 with AVX2).

mod cast;
mod emit;
mod engine;
mod math_ops;

pub use engine::{jit, jit_on};

use crate::Error;
use crate::kernel::{Kernel, verify::verify};
use inkwell::OptimizationLevel;
use inkwell::context::Context;
use inkwell::module::Module;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{CodeModel, FileType, InitializationConfig, RelocMode, Target as LlvmTarget, TargetMachine};

fn llvm_err(e: impl std::fmt::Display) -> Error {
    Error::Llvm(e.to_string())
}

/// The host CPU name and feature string as LLVM sees them (detected once).
pub fn host_cpu() -> (String, String) {
    static HOST: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    HOST.get_or_init(|| (TargetMachine::get_host_cpu_name().to_string(), TargetMachine::get_host_cpu_features().to_string())).clone()
}

/// Whether LLVM's host feature string has `feature` (e.g. `+avx512bw`).
pub fn host_has_feature(feature: &str) -> bool {
    host_cpu().1.split(',').any(|s| s == feature)
}

/// Whether the host has AVX-512 (F and VL) with FMA (16-lane f32 kernels).
pub fn host_has_avx512() -> bool {
    ["+avx512f", "+avx512vl", "+fma"].iter().all(|f| host_has_feature(f))
}

/// Whether the host has AVX2 and FMA (8-lane f32 vectors with fused multiply-add).
pub fn host_has_avx2_fma() -> bool {
    let (_, f) = host_cpu();
    let has = |x: &str| f.split(',').any(|s| s == x);
    has("+avx2") && has("+fma")
}

/// Registers the native target with LLVM, once per process (the registry is not
/// safe to fill from several threads at a time).
fn init_native() -> Result<(), Error> {
    static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| LlvmTarget::initialize_native(&InitializationConfig::default())).clone()
    .map_err(Error::Llvm)
}

/// A target machine for the host, with `reloc` (PIC for objects).
fn target_machine(reloc: RelocMode) -> Result<TargetMachine, Error> {
    init_native()?;
    let triple = TargetMachine::get_default_triple();
    let target = LlvmTarget::from_triple(&triple).map_err(llvm_err)?;
    let (cpu, features) = host_cpu();
    target
        .create_target_machine(&triple, &cpu, &features, OptimizationLevel::Aggressive, reloc, CodeModel::Default)
        .ok_or_else(|| Error::Llvm(format!("no target machine for {}", triple.as_str().to_string_lossy())))
}

/// A kernel ready to emit: verified, then vectorized.
fn prepare(k: &Kernel) -> Result<Kernel, Error> {
    verify(k).map_err(|errs| Error::Kernel { kernel: k.name.clone(), message: errs.join("; ") })?;
    // LLVM's vectors of bytes and of f64 are native (casts saturate as scalars do).
    Ok(crate::schedule::vectorize_for(k, crate::schedule::Caps { bytes: true, f64: true }))
}

/// Builds one module holding every kernel (function `names[i]` for `kernels[i]`),
/// verified and optimized with `default<O3>`.
fn build<'ctx>(
    cx: &'ctx Context,
    tm: &TargetMachine,
    kernels: &[Kernel],
    names: &[String],
    export: bool,
    opts: &Options,
) -> Result<Module<'ctx>, Error> {
    let m = cx.create_module("smelt");
    m.set_triple(&tm.get_triple());
    m.set_data_layout(&tm.get_target_data().get_data_layout());
    let (cpu, features) = host_cpu();
    for (k, name) in kernels.iter().zip(names) {
        let p = prepare(k)?;
        emit::emit(cx, &m, &p, name, (&cpu, &features), export).map_err(|message| Error::Kernel { kernel: k.name.clone(), message })?;
    }
    m.verify().map_err(|e| Error::Llvm(format!("invalid module: {}", e.to_string())))?;
    m.run_passes("default<O3>", tm, pass_options(opts.loop_opts)).map_err(llvm_err)?;
    Ok(m)
}

/// How LLVM compiles kernels: what of a schedule ([`crate::schedule::Target`])
/// is LLVM's business rather than the lowering's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// LLVM's own loop vectorizer, interleaver and unroller in the O3 pipeline.
    pub loop_opts: bool,
    /// Threads to compile on (`None`: the machine's, fewer for small models).
    pub compile_threads: Option<usize>,
}

impl Options {
    /// The options a schedule sets.
    pub fn of(t: &crate::schedule::Target) -> Options {
        Options { loop_opts: t.loop_opts, compile_threads: t.compile_threads }
    }
}

/// Options of the O3 pipeline. Kernels arrive vectorized and register-tiled by the
/// schedule, so by default LLVM's own loop vectorizer, interleaver and unroller are
/// off: they multiplied the code of packing and edge loops (and the compile time,
/// 3–5×) for no measured gain. `loop_opts` turns them back on.
fn pass_options(loop_opts: bool) -> PassBuilderOptions {
    let o = PassBuilderOptions::create();
    o.set_loop_vectorization(loop_opts);
    o.set_loop_interleaving(loop_opts);
    o.set_loop_unrolling(loop_opts);
    o
}

/// Internal names of the JIT's functions.
fn jit_names(kernels: &[Kernel]) -> Vec<String> {
    (0..kernels.len()).map(|i| format!("k{i}")).collect()
}

/// The LLVM IR of the kernels after the O3 pipeline, for `--emit llvm`.
pub fn ir(kernels: &[Kernel], opts: &Options) -> Result<String, Error> {
    let cx = Context::create();
    let tm = target_machine(RelocMode::Default)?;
    let names: Vec<String> = kernels.iter().map(|k| k.name.clone()).collect();
    let m = build(&cx, &tm, kernels, &names, true, opts)?;
    Ok(m.print_to_string().to_string())
}

/// The machine code of the kernels as assembly text.
pub fn asm(kernels: &[Kernel], opts: &Options) -> Result<String, Error> {
    let cx = Context::create();
    let tm = target_machine(RelocMode::Default)?;
    let names: Vec<String> = kernels.iter().map(|k| k.name.clone()).collect();
    let m = build(&cx, &tm, kernels, &names, true, opts)?;
    let buf = tm.write_to_memory_buffer(&m, FileType::Assembly).map_err(llvm_err)?;
    Ok(String::from_utf8_lossy(buf.as_slice()).into_owned())
}

/// A relocatable (PIC) object file with one exported function per kernel, named
/// `{prefix}_{kernel}`, each `void f(void *const *buffers, int64_t lo, int64_t hi)`.
pub fn object(kernels: &[Kernel], prefix: &str, opts: &Options) -> Result<Vec<u8>, Error> {
    crate::kernel::refuse_tile_calls(kernels, "object files")?;
    let cx = Context::create();
    let tm = target_machine(RelocMode::PIC)?;
    let names: Vec<String> = kernels.iter().map(|k| format!("{prefix}_{}", k.name)).collect();
    let m = build(&cx, &tm, kernels, &names, true, opts)?;
    let buf = tm.write_to_memory_buffer(&m, FileType::Object).map_err(llvm_err)?;
    Ok(buf.as_slice().to_vec())
}
