//! The Cranelift backend: kernel IR → CLIF → machine code, in memory (cranelift-jit)
//! or as an object file (cranelift-object). The host ISA is detected with
//! cranelift-native (SSE4.1, AVX, FMA on this machine: f32x4 `fma` becomes
//! `vfmadd213ps`).

mod cast;
mod emit;
mod math_ops;

pub use crate::native::{Arena, Call, JitCode, Place};

use crate::Error;
use crate::kernel::{Kernel, verify::verify};
use crate::schedule::vectorize;
use cranelift_codegen::ir::{Function, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

fn cl_err(e: impl std::fmt::Display) -> Error {
    Error::Cranelift(e.to_string())
}

/// The host ISA with speed optimizations; `pic` for object files.
fn host_isa(pic: bool) -> Result<OwnedTargetIsa, Error> {
    let mut fb = settings::builder();
    fb.set("opt_level", "speed").map_err(cl_err)?;
    fb.set("is_pic", if pic { "true" } else { "false" }).map_err(cl_err)?;
    fb.set("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" }).map_err(cl_err)?;
    let isa = cranelift_native::builder().map_err(cl_err)?;
    isa.finish(settings::Flags::new(fb)).map_err(cl_err)
}

/// A kernel ready to emit: verified, then vectorized.
fn prepare(k: &Kernel) -> Result<Kernel, Error> {
    verify(k).map_err(|errs| Error::Kernel { kernel: k.name.clone(), message: errs.join("; ") })?;
    Ok(vectorize(k))
}

/// Builds the CLIF function of one (prepared) kernel into `ctx`.
fn build(module: &dyn Module, k: &Kernel, ctx: &mut Context, fctx: &mut FunctionBuilderContext, index: u32) -> Result<(), Error> {
    let sig = emit::signature(module.isa().default_call_conv());
    ctx.func = Function::with_name_signature(UserFuncName::user(0, index), sig);
    let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
    emit::emit(k, &mut b).map_err(|message| Error::Kernel { kernel: k.name.clone(), message })?;
    b.seal_all_blocks();
    b.finalize(module.target_config());
    Ok(())
}

/// `fmaf` for hosts without FMA, where Cranelift calls it for scalar `fma`.
extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// Compiles kernels into executable memory.
#[allow(unsafe_code)]
pub fn jit(kernels: &[Kernel]) -> Result<JitCode, Error> {
    let mut jb = JITBuilder::with_isa(host_isa(false)?, default_libcall_names());
    jb.symbol("fmaf", fmaf as *const u8);
    let mut module = JITModule::new(jb);
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids: Vec<FuncId> = Vec::with_capacity(kernels.len());
    for (i, k) in kernels.iter().enumerate() {
        let p = prepare(k)?;
        build(&module, &p, &mut ctx, &mut fctx, i as u32)?;
        let name = format!("k{i}_{}", k.name);
        let id = module.declare_function(&name, Linkage::Local, &ctx.func.signature).map_err(cl_err)?;
        module.define_function(id, &mut ctx).map_err(|e| Error::Kernel { kernel: k.name.clone(), message: format!("{e:?}") })?;
        module.clear_context(&mut ctx);
        ids.push(id);
    }
    module.finalize_definitions().map_err(cl_err)?;
    let code: Vec<*const u8> = ids.iter().map(|&id| module.get_finalized_function(id)).collect();
    let owner = crate::native::ClifOwner(Some(module));
    // SAFETY: each entry is a finalized function of `module` built by `emit` with
    // the kernel signature from the kernel at the same index; the module frees its
    // code only when `owner` is dropped.
    Ok(unsafe { JitCode::new(Box::new(owner), &code, kernels) })
}

/// Builds each kernel's function in a scratch JIT module and concatenates what
/// `show` makes of it, each under a `; kernel NAME` line.
fn text(kernels: &[Kernel], mut show: impl FnMut(&JITModule, &Kernel, &mut Context) -> Result<String, Error>) -> Result<String, Error> {
    let jb = JITBuilder::with_isa(host_isa(false)?, default_libcall_names());
    let module = JITModule::new(jb);
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut out = String::new();
    for (i, k) in kernels.iter().enumerate() {
        let p = prepare(k)?;
        build(&module, &p, &mut ctx, &mut fctx, i as u32)?;
        out.push_str(&format!("; kernel {}\n{}\n", k.name, show(&module, k, &mut ctx)?));
        ctx.clear();
    }
    Ok(out)
}

/// The CLIF text of each kernel (after vectorization), for `--emit clif`.
pub fn clif(kernels: &[Kernel]) -> Result<String, Error> {
    text(kernels, |_, _, ctx| Ok(ctx.func.display().to_string()))
}

/// The machine code of each kernel as assembly text (Cranelift's disassembly).
pub fn asm(kernels: &[Kernel]) -> Result<String, Error> {
    text(kernels, |module, k, ctx| {
        ctx.set_disasm(true);
        let code = ctx
            .compile(module.isa(), &mut Default::default())
            .map_err(|e| Error::Kernel { kernel: k.name.clone(), message: format!("{:?}", e.inner) })?;
        Ok(code.vcode.clone().unwrap_or_default())
    })
}

/// An object file with one exported function per kernel, named
/// `{prefix}_{kernel}`, each `void f(void *const *buffers, int64_t lo, int64_t hi)`.
pub fn object(kernels: &[Kernel], prefix: &str) -> Result<Vec<u8>, Error> {
    let ob = cranelift_object::ObjectBuilder::new(host_isa(true)?, prefix.as_bytes().to_vec(), default_libcall_names())
        .map_err(cl_err)?;
    crate::kernel::refuse_tile_calls(kernels, "object files")?;
    let mut module = cranelift_object::ObjectModule::new(ob);
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    for (i, k) in kernels.iter().enumerate() {
        let p = prepare(k)?;
        build(&module, &p, &mut ctx, &mut fctx, i as u32)?;
        let id = module
            .declare_function(&format!("{prefix}_{}", k.name), Linkage::Export, &ctx.func.signature)
            .map_err(cl_err)?;
        module.define_function(id, &mut ctx).map_err(|e| Error::Kernel { kernel: k.name.clone(), message: format!("{e:?}") })?;
        module.clear_context(&mut ctx);
    }
    module.finish().emit().map_err(cl_err)
}
