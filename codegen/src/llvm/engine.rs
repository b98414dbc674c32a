//! The LLVM JIT: one module of kernels compiled by MCJIT and handed to
//! [`crate::native::JitCode`] with an owner that frees the module, the execution
//! engine and their context, in that order, when the code is dropped.
//!
//! inkwell ties an execution engine to its `Context` by a lifetime; the owner must
//! hold both, so the context is boxed and referenced as `'static` while the engine
//! lives (the only `unsafe` here, besides handing the entry points over).
#![allow(unsafe_code)]

use super::{build, jit_names, llvm_err, target_machine};
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
pub fn jit(kernels: &[Kernel]) -> Result<JitCode, Error> {
    let ctx = Box::into_raw(Box::new(Context::create()));
    let mut engine = Engine { module: None, ee: None, ctx };
    // SAFETY: the context lives until `engine` is dropped, after everything that
    // borrows it (see `Engine::drop`); the `'static` never escapes `engine`.
    let cx: &'static Context = unsafe { &*ctx };
    let tm = target_machine(RelocMode::Default)?;
    let names = jit_names(kernels);
    let module = build(cx, &tm, kernels, &names, true)?;
    let ee = module.create_jit_execution_engine(OptimizationLevel::Aggressive).map_err(llvm_err)?;
    let mut code = Vec::with_capacity(kernels.len());
    for n in &names {
        let addr = ee.get_function_address(n).map_err(|e| Error::Llvm(format!("{n}: {e:?}")))?;
        code.push(addr as *const u8);
    }
    engine.module = Some(module);
    engine.ee = Some(ee);
    // SAFETY: each address is the finalized code of the function `emit` built for
    // the kernel at the same index, with the kernel signature; the engine keeps it
    // alive until the owner is dropped. The engine's `Rc`s are all inside `engine`,
    // so moving it to another thread (as `JitCode` may) shares nothing.
    Ok(unsafe { JitCode::new(Box::new(engine), &code, kernels) })
}
