//! The LLVM JIT: one module of kernels compiled by MCJIT and handed to
//! [`crate::native::JitCode`] with an owner that frees the module, the execution
//! engine and their context, in that order, when the code is dropped.
//!
//! inkwell ties an execution engine to its `Context` by a lifetime; the owner must
//! hold both, so the context is boxed and referenced as `'static` while the engine
//! lives (the only `unsafe` here, besides handing the entry points over).
#![allow(unsafe_code)]

use super::{Options, build, jit_names, llvm_err, target_machine};
use crate::Error;
use crate::kernel::Kernel;
use crate::native::JitCode;
use inkwell::OptimizationLevel;
use inkwell::context::Context;
use inkwell::execution_engine::ExecutionEngine;
use inkwell::module::Module;
use inkwell::targets::RelocMode;

/// Keeps JIT code alive: a module, the engine that owns it, and their context.
struct Engine {
    module: Option<Module<'static>>,
    ee: Option<ExecutionEngine<'static>>,
    ctx: *mut Context,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The module and the engine refer to the context: drop them first.
        self.module.take();
        self.ee.take();
        // SAFETY: `ctx` came from `Box::into_raw` in `jit` and nothing that borrows
        // it is left (the builder and the target machine are gone, the module and
        // the engine were dropped above).
        drop(unsafe { Box::from_raw(self.ctx) });
    }
}

/// Compiles kernels into executable memory with LLVM (`default<O3>`, host CPU).
/// Large sets are split over threads, one module, engine and context each
/// (contexts are independent in LLVM): ResNet-18's 30 kernels compiled in 4.4 s on
/// one thread.
pub fn jit(kernels: &[Kernel], opts: &Options) -> Result<JitCode, Error> {
    let sizes: Vec<usize> = kernels.iter().map(size).collect();
    let threads = opts.compile_threads.map_or_else(|| compile_threads(&sizes), |n| n.max(1));
    compile_parts(kernels, partition(&sizes, threads), opts)
}

/// [`jit`] on `threads` threads (at most one per kernel).
pub fn jit_on(kernels: &[Kernel], threads: usize, opts: &Options) -> Result<JitCode, Error> {
    let sizes: Vec<usize> = kernels.iter().map(size).collect();
    compile_parts(kernels, partition(&sizes, threads), opts)
}

/// The kernels compiled in `parts` (indices), a thread each when there are several.
fn compile_parts(kernels: &[Kernel], parts: Vec<Vec<usize>>, opts: &Options) -> Result<JitCode, Error> {
    let mut code = vec![std::ptr::null(); kernels.len()];
    let mut engines = Vec::with_capacity(parts.len());
    if parts.len() <= 1 {
        let (engine, addrs) = compile(kernels, opts)?;
        code = addrs;
        engines.push(engine);
    } else {
        // Make sure the native target is initialized before the threads start.
        super::init_native()?;
        let done: Vec<Result<(Part, Vec<usize>), Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .iter()
                .map(|idx| {
                    let ks: Vec<Kernel> = idx.iter().map(|&i| kernels[i].clone()).collect();
                    s.spawn(move || compile(&ks, opts).map(|(e, a)| (Part(e), a.into_iter().map(|p| p as usize).collect())))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::Llvm("an LLVM compile thread panicked".into()))))
                .collect()
        });
        for (idx, r) in parts.iter().zip(done) {
            let (Part(engine), addrs) = r?;
            for (&i, a) in idx.iter().zip(addrs) {
                code[i] = a as *const u8;
            }
            engines.push(engine);
        }
    }
    // SAFETY: each address is the finalized code of the function `emit` built for
    // the kernel at the same index, with the kernel signature; the engines keep it
    // alive until the owner is dropped. Each engine's `Rc`s are all inside it, so
    // moving it to another thread (as `JitCode` and the compile threads do) shares
    // nothing.
    Ok(unsafe { JitCode::new(Box::new(engines), &code, kernels) })
}

/// An engine moved from the thread that compiled it.
struct Part(Engine);

// SAFETY: an `Engine` owns its context, module and execution engine, and nothing
// outside it refers to them (see `jit`), so it may change threads.
unsafe impl Send for Part {}

/// One module of `kernels` in a context of its own: the engine and each kernel's
/// entry point.
fn compile(kernels: &[Kernel], opts: &Options) -> Result<(Engine, Vec<*const u8>), Error> {
    let ctx = Box::into_raw(Box::new(Context::create()));
    let mut engine = Engine { module: None, ee: None, ctx };
    // SAFETY: the context lives until `engine` is dropped, after everything that
    // borrows it (see `Engine::drop`); the `'static` never escapes `engine`.
    let cx: &'static Context = unsafe { &*ctx };
    let tm = target_machine(RelocMode::Default)?;
    let names = jit_names(kernels);
    let module = build(cx, &tm, kernels, &names, true, opts)?;
    let ee = module.create_jit_execution_engine(OptimizationLevel::Aggressive).map_err(llvm_err)?;
    let mut code = Vec::with_capacity(kernels.len());
    for n in &names {
        let addr = ee.get_function_address(n).map_err(|e| Error::Llvm(format!("{n}: {e:?}")))?;
        code.push(addr as *const u8);
    }
    engine.module = Some(module);
    engine.ee = Some(ee);
    Ok((engine, code))
}

/// Threads to compile on by default: the machine's, fewer when the kernels are
/// small (a thread's context and engine cost ~10 ms).
fn compile_threads(sizes: &[usize]) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(16).min(sizes.iter().sum::<usize>() / 10_000 + 1)
}

/// A kernel's size: its statements and expressions, roughly what LLVM works on.
fn size(k: &Kernel) -> usize {
    k.to_string().len() / 16
}

/// The kernels of `sizes` in `n` parts (at most one per kernel) of about equal
/// size (largest first, each to the smallest part), each part in kernel order.
fn partition(sizes: &[usize], n: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<(usize, usize)> = sizes.iter().copied().enumerate().map(|(i, z)| (z, i)).collect();
    order.sort_by(|a, b| b.cmp(a));
    let mut parts: Vec<(usize, Vec<usize>)> = vec![(0, vec![]); n.clamp(1, sizes.len().max(1))];
    for (sz, i) in order {
        let p = parts.iter_mut().min_by_key(|p| p.0).expect("at least one part");
        p.0 += sz;
        p.1.push(i);
    }
    parts
        .into_iter()
        .filter(|p| !p.1.is_empty())
        .map(|(_, mut v)| {
            v.sort_unstable();
            v
        })
        .collect()
}
