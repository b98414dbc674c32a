//! Shared lowering helpers: operands with fixed shapes, strides, broadcasting, and
//! the scheduled loop nest of elementwise kernels.

use super::BufIdx;
use crate::kernel::{BinOp, BufId, Expr, HOp, KernelBuilder, LoopKind, Scalar, Ty};
use crate::schedule::Target;
use smelt_ir::{DType, TensorType};

/// A value as lowering sees it: its buffer and concrete type.
#[derive(Debug, Clone)]
pub struct Operand {
    pub buf: BufIdx,
    pub ty: TensorType,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub scalar: Scalar,
}

impl Operand {
    pub fn new(buf: BufIdx, ty: TensorType) -> Result<Operand, String> {
        let shape = ty.shape.fixed().ok_or_else(|| format!("unbound shape {ty}"))?;
        let scalar = Scalar::of(ty.dtype).ok_or_else(|| format!("no kernel scalar for {}", ty.dtype))?;
        Ok(Operand { buf, dtype: ty.dtype, ty, shape, scalar })
    }

    pub fn len(&self) -> u64 {
        self.shape.iter().product::<usize>() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1] as i64;
    }
    s
}

/// Strides of an operand of `shape` broadcast (numpy, right-aligned) to `out`:
/// 0 along dims it repeats.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<i64> {
    let st = strides(shape);
    let off = out.len() - shape.len();
    (0..out.len())
        .map(|d| if d < off || shape[d - off] == 1 && out[d] != 1 { 0 } else { st[d - off] })
        .collect()
}

/// Merges adjacent dims that every operand walks contiguously and drops dims of
/// size 1: a smaller loop nest over the same elements.
pub fn coalesce(out: &[usize], strides: &[Vec<i64>]) -> (Vec<usize>, Vec<Vec<i64>>) {
    let mut dims: Vec<usize> = vec![];
    let mut st: Vec<Vec<i64>> = vec![vec![]; strides.len()];
    for d in 0..out.len() {
        if out[d] == 1 {
            continue;
        }
        let mergeable = !dims.is_empty()
            && strides.iter().zip(&st).all(|(s, cur)| cur.last().copied() == Some(s[d] * out[d] as i64));
        if mergeable {
            let last = dims.len() - 1;
            dims[last] *= out[d];
            for (s, cur) in strides.iter().zip(st.iter_mut()) {
                let l = cur.len() - 1;
                cur[l] = s[d];
            }
        } else {
            dims.push(out[d]);
            for (s, cur) in strides.iter().zip(st.iter_mut()) {
                cur.push(s[d]);
            }
        }
    }
    (dims, st)
}

/// The name of the loop variable over dim `d` of a nest.
fn loop_name(d: usize) -> &'static str {
    ["i", "j", "k", "l", "m", "n", "o", "p"].get(d).copied().unwrap_or("q")
}

/// Emits the loop nest of an elementwise kernel over `dims`: the outer loop
/// parallel when the work is large, the innermost vectorized. `body` gets one
/// index expression per entry of `strides`.
pub fn nest(kb: &mut KernelBuilder, t: &Target, dims: &[usize], strides: &[Vec<i64>], body: impl FnOnce(&mut KernelBuilder, &[Expr])) {
    let total: u64 = dims.iter().map(|&d| d as u64).product();
    let mut body = Some(body);
    let mut call = |kb: &mut KernelBuilder, idx: &[Expr]| {
        if let Some(b) = body.take() {
            b(kb, idx)
        }
    };
    if dims.is_empty() {
        call(kb, &vec![Expr::i(0); strides.len()]);
        return;
    }
    let parallel = total >= t.parallel_min_elems;
    let w = t.vector_width;
    if t.is_gpu() && dims.len() > 1 {
        // One invocation per element: the outer dim alone (a batch of 2) would
        // leave the GPU idle and each invocation a long serial loop.
        return each_index(kb, t, dims, |kb, ix| {
            let idx: Vec<Expr> =
                strides.iter().map(|s| ix.iter().zip(s).fold(Expr::i(0), |a, (i, &st)| a + i.clone() * st)).collect();
            call(kb, &idx)
        });
    }
    if dims.len() == 1 && parallel {
        let n = dims[0] as i64;
        let chunk = t.parallel_chunk as i64;
        let chunks = (n + chunk - 1) / chunk;
        kb.for_("c", Expr::i(0), Expr::i(chunks), LoopKind::Parallel, |kb, c| {
            let lo = c * chunk;
            let hi = Expr::bin(crate::kernel::BinOp::Min, lo.clone() + chunk, Expr::i(n));
            kb.for_("i", lo, hi, LoopKind::Vectorized(w), |kb, i| {
                let idx: Vec<Expr> = strides.iter().map(|s| i.clone() * s[0]).collect();
                call(kb, &idx);
            });
        });
        return;
    }
    #[allow(clippy::too_many_arguments)]
    fn level(
        kb: &mut KernelBuilder,
        d: usize,
        dims: &[usize],
        strides: &[Vec<i64>],
        acc: Vec<Expr>,
        parallel: bool,
        w: u32,
        call: &mut dyn FnMut(&mut KernelBuilder, &[Expr]),
    ) {
        let last = d + 1 == dims.len();
        let kind = if d == 0 && parallel {
            LoopKind::Parallel
        } else if last && dims[d] >= w as usize {
            LoopKind::Vectorized(w)
        } else {
            LoopKind::Serial
        };
        let name = loop_name(d);
        kb.for_(name, Expr::i(0), Expr::i(dims[d] as i64), kind, |kb, i| {
            let acc: Vec<Expr> = acc.iter().zip(strides).map(|(a, s)| a.clone() + i.clone() * s[d]).collect();
            if last {
                call(kb, &acc);
            } else {
                level(kb, d + 1, dims, strides, acc, parallel, w, call);
            }
        });
    }
    level(kb, 0, dims, strides, vec![Expr::i(0); strides.len()], parallel, w, &mut call);
}

/// Loops over every multi-index of `dims` (row-major) for kernels whose body
/// needs the multi-index itself: on a GPU one parallel iteration per element,
/// its index recovered by division; on a CPU the outer loop parallel when the
/// work is large (as in [`nest`]) and the others serial.
pub fn each_index(kb: &mut KernelBuilder, t: &Target, dims: &[usize], body: impl FnOnce(&mut KernelBuilder, &[Expr])) {
    let total: u64 = dims.iter().map(|&d| d as u64).product();
    if dims.is_empty() {
        return body(kb, &[]);
    }
    if t.is_gpu() {
        kb.for_("p", Expr::i(0), Expr::i(total as i64), LoopKind::Parallel, |kb, p| {
            let mut inner = total;
            let mut ix = vec![];
            for (d, &n) in dims.iter().enumerate() {
                inner /= n as u64;
                let name = loop_name(d);
                let e = if d == 0 { p.clone() / Expr::i(inner as i64) } else { (p.clone() / Expr::i(inner as i64)) % Expr::i(n as i64) };
                ix.push(kb.let_(name, e));
            }
            body(kb, &ix)
        });
        return;
    }
    fn level(kb: &mut KernelBuilder, dims: &[usize], acc: Vec<Expr>, parallel: bool, body: &mut Option<impl FnOnce(&mut KernelBuilder, &[Expr])>) {
        let d = acc.len();
        if d == dims.len() {
            if let Some(b) = body.take() {
                b(kb, &acc)
            }
            return;
        }
        let kind = if d == 0 && parallel { LoopKind::Parallel } else { LoopKind::Serial };
        let name = loop_name(d);
        kb.for_(name, Expr::i(0), Expr::i(dims[d] as i64), kind, |kb, i| {
            let mut a = acc.clone();
            a.push(i);
            level(kb, dims, a, parallel, body);
        });
    }
    level(kb, dims, vec![], total >= t.parallel_min_elems, &mut Some(body));
}

/// How [`reduce_row`] combines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOp {
    Add,
    Max,
    Min,
    Mul,
}

/// Reduces `len` contiguous f32 elements of `buf` from `base`, each mapped by `f`
/// (called with a value of 1 or `w` lanes and the lane count) — `w` lanes at a
/// time into a vector accumulator, then its lanes, then the scalar tail. Returns
/// the result bound to a variable.
pub fn reduce_row(
    kb: &mut KernelBuilder,
    buf: BufId,
    base: &Expr,
    len: usize,
    w: u32,
    op: RowOp,
    f: &dyn Fn(&mut KernelBuilder, Expr, u32) -> Expr,
) -> Expr {
    let init = match op {
        RowOp::Add => 0.0,
        RowOp::Mul => 1.0,
        RowOp::Max => f32::NEG_INFINITY,
        RowOp::Min => f32::INFINITY,
    };
    let comb = |a: Expr, b: Expr| match op {
        RowOp::Add => a + b,
        RowOp::Mul => a * b,
        RowOp::Max => Expr::bin(BinOp::Max, a, b),
        RowOp::Min => Expr::bin(BinOp::Min, a, b),
    };
    let main = len / w as usize * w as usize;
    let acc = kb.var("acc", Ty::F32);
    if main > 0 && op != RowOp::Mul {
        let accv = kb.var("accv", Ty::vec(Scalar::F32, w));
        kb.set(accv, Expr::splat(Expr::f(init), w));
        kb.for_step("j", Expr::i(0), Expr::i(main as i64), w as u64, LoopKind::Serial, |kb, j| {
            let v = f(kb, Expr::loadv(buf, base.clone() + j, w), w);
            kb.set(accv, comb(Expr::var(accv), v));
        });
        let h = match op {
            RowOp::Add => HOp::Add,
            RowOp::Max => HOp::Max,
            _ => HOp::Min,
        };
        kb.set(acc, Expr::hreduce(h, Expr::var(accv)));
    } else {
        kb.set(acc, Expr::f(init));
    }
    let start = if op == RowOp::Mul { 0 } else { main };
    if start < len {
        kb.for_("j", Expr::i(start as i64), Expr::i(len as i64), LoopKind::Serial, |kb, j| {
            let v = f(kb, Expr::load(buf, base.clone() + j), 1);
            kb.set(acc, comb(Expr::var(acc), v));
        });
    }
    Expr::var(acc)
}

/// A constant f32 of `lanes` lanes.
pub fn fconst(x: f32, lanes: u32) -> Expr {
    if lanes == 1 { Expr::f(x) } else { Expr::splat(Expr::f(x), lanes) }
}

/// `Σ a[a_base + i]·b[b_base + i]` over `len` f32 elements, `w` lanes at a time.
pub fn dot_row(kb: &mut KernelBuilder, a: BufId, a_base: &Expr, b: BufId, b_base: &Expr, len: usize, w: u32) -> Expr {
    let main = len / w as usize * w as usize;
    let acc = kb.var("dot", Ty::F32);
    if main > 0 {
        let accv = kb.var("dotv", Ty::vec(Scalar::F32, w));
        kb.set(accv, Expr::splat(Expr::f(0.0), w));
        kb.for_step("d", Expr::i(0), Expr::i(main as i64), w as u64, LoopKind::Serial, |kb, d| {
            let x = Expr::loadv(a, a_base.clone() + d.clone(), w);
            let y = Expr::loadv(b, b_base.clone() + d, w);
            kb.set(accv, Expr::fma(x, y, Expr::var(accv)));
        });
        kb.set(acc, Expr::hreduce(HOp::Add, Expr::var(accv)));
    } else {
        kb.set(acc, Expr::f(0.0));
    }
    if main < len {
        kb.for_("d", Expr::i(main as i64), Expr::i(len as i64), LoopKind::Serial, |kb, d| {
            let x = Expr::load(a, a_base.clone() + d.clone());
            let y = Expr::load(b, b_base.clone() + d);
            kb.set(acc, Expr::fma(x, y, Expr::var(acc)));
        });
    }
    Expr::var(acc)
}

/// `body(guarded)` for panel `p` of `panels`, of which the first `full` are
/// whole: unguarded when every panel is whole, guarded when none is, else
/// chosen by `p < full` at run time.
pub fn by_panel(kb: &mut KernelBuilder, p: &Expr, full: usize, panels: usize, body: impl Fn(&mut KernelBuilder, bool)) {
    if full == panels {
        body(kb, false);
    } else if full == 0 {
        body(kb, true);
    } else {
        kb.if_else(p.clone().lt(Expr::i(full as i64)), |kb| body(kb, false), |kb| body(kb, true));
    }
}
