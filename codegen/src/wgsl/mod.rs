//! The WGSL backend: kernel IR → WGSL compute shaders, run by the runtime through
//! wgpu (`smelt_runtime::gpu`).
//!
//! Each kernel becomes one shader module with one entry point, `main`:
//! - every kernel buffer is a storage binding `@group(0) @binding(k)` (read-only
//!   when the kernel only reads it). f32, i32, i64 and f64 buffers are arrays of
//!   their type; i8, u8 and bool buffers are packed four to a `u32` word, and a
//!   kernel that writes one declares it `array<atomic<u32>>` and stores a byte with
//!   `atomicAnd` + `atomicOr`, so that invocations writing neighbouring bytes of a
//!   word never lose each other's stores;
//! - a kernel whose body is one parallel loop runs one invocation per iteration
//!   (workgroups of [`WORKGROUP`], dispatched on a 2-d grid when there are more than
//!   65535 workgroups); any other kernel runs once, in one invocation;
//! - a parallel loop whose body holds `workgroup` / `reduce` loops (the
//!   cooperative rows of `lower::coop`) runs one workgroup of [`ROW_WORKGROUP`]
//!   invocations per iteration instead: those loops are strided over the
//!   invocations, and a reduction's partial results meet in a tree in
//!   workgroup memory (`workgroupBarrier` between levels);
//! - the kernel IR's `i64` is index arithmetic or tensor data, told apart by a
//!   pass over the kernel ([`int64`]): index values (and data that provably fits
//!   32 bits) compute in `i32` — buffers must hold fewer than 2³¹ elements —
//!   while i64 data is a two-word integer (`vec2<u32>`, low word first) computed
//!   by helper functions exactly as the interpreter's i64 (wrapping arithmetic,
//!   truncating division, saturating casts, floats rounded to nearest even). An
//!   i64 buffer is two i32 words per element. i32 arithmetic that the
//!   interpreter does in i64 and saturates is lowered for the GPU in i32 with
//!   explicit overflow checks (`lower::int32`), and the i64 accumulators of
//!   integer matmul of i32, i32 sums and products of narrow integers are two
//!   i32 words. Native `i64` (`shader-int64`) is not used: lavapipe's LLVM
//!   miscompiles comparisons of sign-extended i64s;
//! - f16 and bf16 buffers are packed two to a `u32` word (written like bytes,
//!   with atomics); their values are held as bits and converted to and from f32
//!   by bit manipulation, bit-exact with the `half` crate (round to nearest even,
//!   subnormals, NaN kept quiet): all arithmetic is in f32, as on the CPU. With
//!   [`Options::native_f16`] (the runtime sets it when the adapter has
//!   `shader-f16` and its conversions proved exact) f16 buffers are
//!   `array<f16>` instead (`enable f16;`): no packing, no atomics. Registers
//!   still hold f16 as bits, and the arithmetic stays f32: a load cast to f32 is
//!   `f32(b[i])` (other loads round that value to bits, which is exact), a store
//!   is `f16(x)` of the f32 value of the bits the exact conversion made — a value
//!   f16 represents, so no rounding mode matters. (WGSL has no 16-bit integer,
//!   and naga cannot bitcast `vec2<f16>` to `u32`, so bits cannot be moved
//!   directly.) Vulkan lets these conversions flush f16 subnormals, which the
//!   runtime checks once per device (`smelt_runtime::gpu::probe_f16`);
//! - the f64 of requantization is real f64 (`shader-f64`, which lavapipe and
//!   NVIDIA have);
//! - transcendentals are the polynomials of [`crate::math`] (the same operations as
//!   the CPU backends, so the same stated errors), emitted once per shader as helper
//!   functions; casts, NaN-propagating min/max, packed loads and stores likewise.
//!
//! Steps that carry a [`crate::lower::gpu::Tiled`] hint (matmul, gemm,
//! fused_matmul, conv) are emitted as a tiled shader instead ([`tiled`]):
//! workgroup-shared tiles of A and B and a register block per invocation.

mod emit;
mod helpers;
mod int64;
mod lit;
mod math;
mod tiled;

use crate::kernel::{Kernel, Scalar, Stmt, LoopKind};
use crate::lower::{Program, Step};
use crate::schedule::Target;
use crate::Error;

/// Invocations per workgroup of the generic kernels.
pub const WORKGROUP: u32 = 64;

/// Invocations per workgroup of a cooperative kernel (a workgroup per row of a
/// reduction; a power of two, for the tree).
pub const ROW_WORKGROUP: u32 = 128;

/// How a shader is dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// `invocations` ids, in workgroups of `workgroup` invocations; the runtime lays
    /// the workgroups out on a grid of at most 65535 per dimension.
    Linear { invocations: u64, workgroup: u32 },
    /// An explicit grid of workgroups.
    Grid([u32; 3]),
}

/// Device features a shader needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// f64 arithmetic (`shader-f64`): requantization.
    pub f64: bool,
    /// f16 storage (`shader-f16`): a native-f16 shader with an f16 buffer.
    pub f16: bool,
}

/// How shaders are emitted for a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// f16 buffers as `array<f16>` (the adapter must have `shader-f16`) rather
    /// than packed two to a `u32` word. The default, `false`, is the portable
    /// form that every adapter runs (what `smelt compile --emit wgsl` prints
    /// unless `--schedule wgsl-f16=on`).
    pub native_f16: bool,
    /// The tiled GEMM's workgroup tile, 64 or 128 (`None`: chosen per GEMM,
    /// see [`tiled`]).
    pub tile: Option<u32>,
}

impl Options {
    /// The options for an adapter that has (`shader_f16`) or lacks `shader-f16`,
    /// with the schedule's `wgsl-f16` and `wgsl-tile` applied: `wgsl-f16=off`
    /// forces the packed form, `=on` the native one (which fails clearly on an
    /// adapter without the feature).
    pub fn for_device(shader_f16: bool, opts: &crate::schedule::ScheduleOptions) -> Options {
        Options { native_f16: opts.wgsl_f16.unwrap_or(shader_f16), tile: opts.wgsl_tile }
    }
}

/// One compute shader: its WGSL text, its bindings (in kernel buffer order) and
/// how to dispatch it.
#[derive(Debug, Clone)]
pub struct Shader {
    pub name: String,
    pub source: String,
    /// Whether binding `k` is written (read-write storage) or only read.
    pub writes: Vec<bool>,
    pub dispatch: Dispatch,
    pub needs: Needs,
}

/// The schedule parameters of GPU lowering: every elementwise kernel parallel (one
/// invocation per 4-element vector), no CPU cache blocking.
pub fn target() -> Target {
    Target {
        name: "wgsl",
        processor: crate::schedule::Processor::Gpu,
        vector_width: 4,
        mr: 4,
        nr: 4,
        generated_tile: None,
        kc: 1 << 20,
        mc: 4,
        nc: 4,
        tuning: None,
        k_unroll: 1,
        parallel_min_elems: 0,
        parallel_chunk: 4,
        quant_pairs: false,
        quant_quads: false,
        quant_amx: false,
        quant_quads_narrow: false,
        split_heavy_epilogue: false,
        conv_rows: false,
        conv_rows_pointwise: false,
        direct_a: false,
        ukernels: false,
        winograd: false,
        winograd_tile: 2,
        loop_opts: false,
        compile_threads: None,
        moe: smelt_ir::ops::MoeStrategy::Auto,
    }
}

fn kernel_err(k: &Kernel, message: impl Into<String>) -> Error {
    Error::Kernel { kernel: k.name.clone(), message: message.into() }
}

/// The WGSL of one step: the tiled shader when the step has a tiling hint, else
/// the generic translation of its kernel.
pub fn emit_step(step: &Step, opts: &Options) -> Result<Shader, Error> {
    match &step.tiled {
        Some(t) => tiled::emit(&step.kernel, t, opts),
        None => emit_kernel(&step.kernel, opts),
    }
}

/// Translates a kernel (verified, then vectorized) into a shader.
pub fn emit_kernel(k: &Kernel, opts: &Options) -> Result<Shader, Error> {
    crate::kernel::verify::verify(k).map_err(|e| kernel_err(k, e.join("; ")))?;
    let k = crate::schedule::vectorize(k);
    let parallel = matches!(k.body.as_slice(), [Stmt::Loop(l)] if l.kind == LoopKind::Parallel);
    let extent = k.parallel_extent();
    let coop = parallel && matches!(k.body.as_slice(), [Stmt::Loop(l)] if has_coop_loop(&l.body));
    let mut e = emit::Emitter::new(&k, opts);
    let workgroup = if coop { ROW_WORKGROUP } else if parallel { WORKGROUP } else { 1 };
    let body = if parallel {
        let [Stmt::Loop(l)] = k.body.as_slice() else { unreachable!("checked above") };
        if extent > i32::MAX as u64 {
            return Err(Error::Unsupported { backend: "wgsl", op: format!("{extent} parallel iterations"), node: k.name.clone() });
        }
        let mut s = if coop {
            // One workgroup per iteration; the row index is uniform, so the early
            // return keeps the reductions' barriers in uniform control flow.
            e.coop = Some(workgroup);
            format!("  let row = i32(wid.y * nwg.x + wid.x);\n  if (row >= {extent}i) {{ return; }}\n  {} = row;\n", e.var_name(l.var))
        } else {
            format!("  if (pid >= {extent}i) {{ return; }}\n  {} = pid;\n", e.var_name(l.var))
        };
        s.push_str(&e.block(&l.body, 1).map_err(|m| kernel_err(&k, m))?);
        s
    } else {
        e.block(&k.body, 1).map_err(|m| kernel_err(&k, m))?
    };
    let source = e.module(&body, workgroup);
    let invocations = if coop { extent * workgroup as u64 } else if parallel { extent } else { 1 };
    let dispatch = Dispatch::Linear { invocations, workgroup };
    Ok(Shader { name: k.name.clone(), source, writes: k.buffers.iter().map(|b| b.access.writes()).collect(), dispatch, needs: e.needs() })
}

/// Whether a block holds a `workgroup` or `reduce` loop, directly or in serial
/// loops (where the verifier allows them).
fn has_coop_loop(body: &[Stmt]) -> bool {
    body.iter().any(|s| match s {
        Stmt::Loop(l) => matches!(l.kind, LoopKind::Workgroup | LoopKind::Reduce(..)) || has_coop_loop(&l.body),
        _ => false,
    })
}

/// Checks that the WGSL backend lowers every node of `g` (before shapes are
/// bound): what the lowering handles. i64 tensors are data like any other (the
/// emitter's two-word integers, `int64`). Reported as `not supported on wgsl:
/// <op> at node <name>`.
pub fn check(g: &smelt_ir::Graph) -> Result<(), Error> {
    crate::lower::check(g).map_err(|e| match e {
        Error::Unsupported { op, node, .. } => Error::Unsupported { backend: "wgsl", op, node },
        e => e,
    })
}

/// Every shader of a program, as text (`smelt compile --emit wgsl`).
pub fn print_program(p: &Program, opts: &Options) -> Result<String, Error> {
    let mut s = String::new();
    for st in &p.steps {
        let sh = emit_step(st, opts)?;
        let args: Vec<String> = st.args.iter().map(|b| p.buffer(*b).name.clone()).collect();
        s.push_str(&format!("// node {}: kernel {} ({:?}); bindings: {}\n", st.node, sh.name, sh.dispatch, args.join(", ")));
        s.push_str(&sh.source);
        s.push('\n');
    }
    Ok(s)
}

/// The WGSL name of a kernel scalar held in a register (i8 and u8 compute as i32).
pub(crate) fn scalar_name(s: Scalar) -> &'static str {
    match s {
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
        Scalar::I8 | Scalar::U8 | Scalar::I32 => "i32",
        // Index arithmetic (and narrow data) in i32: lavapipe's LLVM miscompiles
        // comparisons of sign-extended i64 values, and WGSL proper has no i64.
        // Wide i64 data is `vec2<u32>` (`int64`), chosen by the emitter.
        Scalar::I64 => "i32",
        Scalar::Bool => "bool",
        // 16-bit floats are held as their bits (the low half of a `u32`): they are
        // only loaded, stored and converted (`helpers::cast`).
        Scalar::F16 | Scalar::BF16 => "u32",
    }
}

/// Whether a buffer of this scalar is packed several elements to a `u32` word:
/// four bytes (i8, u8, bool) or two 16-bit floats — f16 only without native
/// f16 storage (i64 buffers are two i32 words per element: see `helpers::load`).
pub(crate) fn packed(s: Scalar, native_f16: bool) -> bool {
    match s {
        Scalar::F16 => !native_f16,
        _ => matches!(s, Scalar::I8 | Scalar::U8 | Scalar::Bool | Scalar::BF16),
    }
}
