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
//! - the kernel IR's `i64` (index arithmetic, and i64 tensors) computes in `i32`:
//!   buffers must hold fewer than 2³¹ elements, an i64 buffer is two i32 words
//!   per element (loads saturate values beyond the i32 range, stores
//!   sign-extend), and [`check`] refuses the ops whose results would differ from
//!   the interpreter's (i64 tensors other than indices). i32 arithmetic that the
//!   interpreter does in i64 and saturates is lowered for the GPU in i32 with
//!   explicit overflow checks (`lower::int32`), and the i64 accumulators of
//!   integer matmul, i32 sums and integer products are two i32 words.
//!   Native `i64` (`shader-int64`) is not used: lavapipe's LLVM miscompiles
//!   comparisons of sign-extended i64s;
//! - f16 and bf16 buffers are packed two to a `u32` word (written like bytes,
//!   with atomics); their values are held as bits and converted to and from f32
//!   by bit manipulation, bit-exact with the `half` crate (round to nearest even,
//!   subnormals, NaN kept quiet): all arithmetic is in f32, as on the CPU;
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
        vector_width: 4,
        mr: 4,
        nr: 4,
        kc: 1 << 20,
        mc: 4,
        nc: 4,
        k_unroll: 1,
        parallel_min_elems: 0,
        parallel_chunk: 4,
        quant_pairs: false,
        split_heavy_epilogue: false,
        conv_rows: false,
    }
}

fn kernel_err(k: &Kernel, message: impl Into<String>) -> Error {
    Error::Kernel { kernel: k.name.clone(), message: message.into() }
}

/// The WGSL of one step: the tiled shader when the step has a tiling hint, else
/// the generic translation of its kernel.
pub fn emit_step(step: &Step) -> Result<Shader, Error> {
    match &step.tiled {
        Some(t) => tiled::emit(&step.kernel, t),
        None => emit_kernel(&step.kernel),
    }
}

/// Translates a kernel (verified, then vectorized) into a shader.
pub fn emit_kernel(k: &Kernel) -> Result<Shader, Error> {
    crate::kernel::verify::verify(k).map_err(|e| kernel_err(k, e.join("; ")))?;
    let k = crate::schedule::vectorize(k);
    let parallel = matches!(k.body.as_slice(), [Stmt::Loop(l)] if l.kind == LoopKind::Parallel);
    let extent = k.parallel_extent();
    let coop = parallel && matches!(k.body.as_slice(), [Stmt::Loop(l)] if l.body.iter().any(|s| matches!(s, Stmt::Loop(i) if matches!(i.kind, LoopKind::Workgroup | LoopKind::Reduce(..)))));
    let mut e = emit::Emitter::new(&k);
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

/// Checks that the WGSL backend lowers every node of `g` (before shapes are
/// bound): what the lowering handles, less what i32 registers would change —
/// i64 tensors other than indices (gather's indices, argmax/argmin and topk
/// outputs, MoE routing, casts between i64 and other integers). Reported as
/// `not supported on wgsl: <op> at node <name>`.
pub fn check(g: &smelt_ir::Graph) -> Result<(), Error> {
    use smelt_ir::{DType, Op};
    crate::lower::check(g).map_err(|e| match e {
        Error::Unsupported { op, node, .. } => Error::Unsupported { backend: "wgsl", op, node },
        e => e,
    })?;
    let order = g.topo_order().unwrap_or_default();
    for id in order {
        let n = g.node(id);
        if n.op.is_source() || matches!(n.op, Op::Reshape { .. }) {
            continue;
        }
        let ins: Vec<DType> = g.node_inputs(id).iter().filter_map(|v| g.value_type(*v).map(|t| t.dtype)).collect();
        let outs: Vec<DType> = n.types.iter().map(|t| t.dtype).collect();
        let i64_at = |i: usize| ins.get(i) == Some(&DType::I64);
        let any_i64 = ins.contains(&DType::I64) || outs.contains(&DType::I64);
        let ok_i64 = match &n.op {
            Op::Gather { .. } => !i64_at(0) && outs[0] != DType::I64,
            Op::ArgReduce { .. } | Op::TopK(_) | Op::MoeDispatch { .. } | Op::MoeCombine { .. } => {
                !i64_at(0) && !matches!(n.op, Op::TopK(_) if outs[0] == DType::I64)
            }
            Op::Cast { .. } => ins.first().is_some_and(|d| !d.is_float()) && outs.first().is_some_and(|d| !d.is_float()),
            _ => false,
        };
        if any_i64 && !ok_i64 {
            return Err(Error::Unsupported { backend: "wgsl", op: n.op.name().to_string(), node: n.name().to_string() });
        }
    }
    Ok(())
}

/// Every shader of a program, as text (`smelt compile --emit wgsl`).
pub fn print_program(p: &Program) -> Result<String, Error> {
    let mut s = String::new();
    for st in &p.steps {
        let sh = emit_step(st)?;
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
        // Index arithmetic in i32: lavapipe's LLVM miscompiles comparisons of
        // sign-extended i64 values, and WGSL proper has no i64.
        Scalar::I64 => "i32",
        Scalar::Bool => "bool",
        // 16-bit floats are held as their bits (the low half of a `u32`): they are
        // only loaded, stored and converted (`helpers::cast`).
        Scalar::F16 | Scalar::BF16 => "u32",
    }
}

/// Whether a buffer of this scalar is packed several elements to a `u32` word:
/// four bytes (i8, u8, bool) or two 16-bit floats (i64 buffers are two i32
/// words per element: see `helpers::load`).
pub(crate) fn packed(s: Scalar) -> bool {
    matches!(s, Scalar::I8 | Scalar::U8 | Scalar::Bool | Scalar::F16 | Scalar::BF16)
}
