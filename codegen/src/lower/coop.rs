//! Cooperative row loops for the GPU target: a row-wise reduction (softmax, layer
//! norm, `reduce_*`, global pooling, and the window of a large-window max/avg
//! pool, [`cooperative_window`]) whose rows are long runs one row per
//! iteration of the top-level parallel loop, and inside it `workgroup` loops
//! (independent iterations) and `reduce(op into acc)` loops (a fold into one
//! variable), which the WGSL emitter spreads over a workgroup's invocations with a
//! tree reduction in shared memory. CPU backends run those loops serially, so the
//! kernels stay valid everywhere; only the GPU lowering builds them.

use crate::kernel::{BinOp, Expr, KernelBuilder, LoopKind, Ty};
use crate::schedule::Target;

/// Rows at least this long always get a workgroup each.
pub const LONG_ROW: usize = 256;
/// Rows at least this long get a workgroup each when there are few rows (fewer
/// than [`FEW_ROWS`]: one invocation per row would leave most of a GPU idle).
pub const MID_ROW: usize = 32;
pub const FEW_ROWS: usize = 2048;

/// Whether `rows` reductions of `len` elements each run a workgroup per row
/// (decided at lowering time, from the bound sizes): only on the GPU target, and
/// only where the rows are long or few. Many short rows keep one invocation per
/// row, which needs no barriers.
pub fn cooperative(t: &Target, rows: usize, len: usize) -> bool {
    t.is_gpu() && (len >= LONG_ROW || (len >= MID_ROW && rows < FEW_ROWS))
}

/// Pooling windows of at least this many taps may get a workgroup per output.
pub const POOL_WINDOW: usize = 64;

/// Whether `outputs` pooling windows of `window` taps each run a workgroup per
/// output (GPU only): the window is large (≥ [`POOL_WINDOW`]) and either very
/// large (≥ [`LONG_ROW`]) or the outputs are few (< [`FEW_ROWS`]). Otherwise one
/// invocation per output loops over its window.
pub fn cooperative_window(t: &Target, outputs: usize, window: usize) -> bool {
    t.is_gpu() && window >= POOL_WINDOW && (window >= LONG_ROW || outputs < FEW_ROWS)
}

/// `acc = init; reduce(op into acc) for j in 0..len { acc = acc op f(j) }`;
/// returns `acc`. `init` must be `op`'s identity or a value to fold into (the
/// GPU combines the partial results with the value before the loop).
pub fn reduce(
    kb: &mut KernelBuilder,
    name: &str,
    ty: Ty,
    op: BinOp,
    init: Expr,
    len: usize,
    f: impl FnOnce(&mut KernelBuilder, Expr) -> Expr,
) -> Expr {
    let acc = kb.var(name, ty);
    kb.set(acc, init);
    kb.for_("j", Expr::i(0), Expr::i(len as i64), LoopKind::Reduce(op, acc), |kb, j| {
        let v = f(kb, j);
        kb.set(acc, Expr::bin(op, Expr::var(acc), v));
    });
    Expr::var(acc)
}

/// `workgroup for j in 0..len { body(j) }`: iterations that store their own
/// elements.
pub fn each(kb: &mut KernelBuilder, len: usize, body: impl FnOnce(&mut KernelBuilder, Expr)) {
    kb.for_("j", Expr::i(0), Expr::i(len as i64), LoopKind::Workgroup, body);
}

/// The identity of a float reduction.
pub fn identity_f32(op: BinOp) -> f32 {
    match op {
        BinOp::Mul => 1.0,
        BinOp::Max => f32::NEG_INFINITY,
        BinOp::Min => f32::INFINITY,
        _ => 0.0,
    }
}
