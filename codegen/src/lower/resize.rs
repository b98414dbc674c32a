//! Lowering of `resize`: one kernel per resized axis, each reading what the last
//! wrote (interpolation is separable, as in the interpreter). The taps of every
//! output coordinate are computed at compile time ([`axis_taps`]) into constant
//! tables — element offsets and weights — so a kernel is a loop over output rows
//! (the dims up to and including the axis), each a weighted sum of `taps` input
//! rows vectorized over the dims after the axis; nearest mode is a one-tap
//! gather. `tf_crop_and_resize` coordinates outside the input store the
//! extrapolation value.

use super::util::{nest, Operand};
use super::{internal, Lowerer};
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar};
use crate::Error;
use smelt_ir::ops::resize::axis_taps;
use smelt_ir::{DType, Op, TensorType};

/// More taps than this (antialiased downsampling by large factors) are summed
/// by a loop instead of one unrolled expression.
const UNROLL_TAPS: usize = 8;

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Resize(_)) && ins.iter().all(|t| t.dtype == DType::F32) && outs.iter().all(|t| t.dtype == DType::F32)
}

fn i64_table(values: impl IntoIterator<Item = i64>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let Op::Resize(r) = op else { return Ok(false) };
    let (x, out) = (&ins[0], &outs[0]);
    let rank = x.shape.len();
    if out.shape.len() != rank {
        return Err(internal(node, "resize changes the rank"));
    }
    let axes = r.resized_axes(&x.shape, &out.shape);
    let t = l.target.clone();
    if axes.is_empty() {
        let mut kb = KernelBuilder::new(l.kernel_name(node, "copy"));
        let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
        let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
        nest(&mut kb, &t, &[x.len() as usize], &[vec![1], vec![1]], |kb, idx| {
            kb.store(y, idx[1].clone(), Expr::load(xb, idx[0].clone()))
        });
        l.step(node, kb.finish(), vec![x.buf, out.buf]);
        return Ok(true);
    }
    let mut shape = x.shape.clone();
    let mut src = x.buf;
    for (step, &axis) in axes.iter().enumerate() {
        let (len, n) = (shape[axis], out.shape[axis]);
        if len == 0 && n > 0 {
            return Err(internal(node, "resize of an empty axis"));
        }
        let taps = axis_taps(r, axis, rank, len, n);
        let tn = taps.taps;
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        shape[axis] = n;
        let total = outer * n * inner;
        let last = step + 1 == axes.len();
        let dst = if last { out.buf } else { l.temp(&format!("{node}.axis{axis}"), Scalar::F32, total as u64) };
        let suffix = if axes.len() > 1 { format!("axis{axis}") } else { String::new() };
        let offs = l.constant(&format!("{node}.{}offsets", suffix), Scalar::I64, i64_table(taps.idx.iter().map(|&i| (i * inner) as i64)));
        let weights: Vec<f32> = taps.w.iter().map(|&w| w as f32).collect();
        let one_tap = tn == 1 && weights.iter().all(|&w| w == 1.0);
        let wts = (!one_tap).then(|| l.constant_f32(&format!("{node}.{}weights", suffix), &weights));
        let any_outside = taps.outside.iter().any(|&o| o);
        let flags = any_outside.then(|| l.constant(&format!("{node}.{}outside", suffix), Scalar::I64, i64_table(taps.outside.iter().map(|&o| o as i64))));

        let mut kb = KernelBuilder::new(l.kernel_name(node, &suffix));
        let xb = kb.buffer("x", Scalar::F32, (outer * len * inner) as u64, Access::Read);
        let y = kb.buffer("out", Scalar::F32, total as u64, Access::ReadWrite);
        let ob = kb.buffer("offsets", Scalar::I64, taps.idx.len() as u64, Access::Read);
        let wb = wts.map(|_| kb.buffer("weights", Scalar::F32, weights.len() as u64, Access::Read));
        let fb = flags.map(|_| kb.buffer("outside", Scalar::I64, n as u64, Access::Read));
        let rows = (outer * n) as i64;
        let kind = if total as u64 >= t.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial };
        let vec = if inner >= t.vector_width as usize { LoopKind::Vectorized(t.vector_width) } else { LoopKind::Serial };
        let (len_i, n_i, inner_i) = (len as i64, n as i64, inner as i64);
        let extrapolation = r.extrapolation;
        kb.for_("r", Expr::i(0), Expr::i(rows), kind, |kb, row| {
            let k = kb.let_("k", row.clone() % Expr::i(n_i));
            let base = kb.let_("base", (row.clone() - k.clone()) / Expr::i(n_i) * Expr::i(len_i * inner_i));
            let at = kb.let_("at", row * Expr::i(inner_i));
            let body = |kb: &mut KernelBuilder| {
                if tn > UNROLL_TAPS {
                    kb.for_("i", Expr::i(0), Expr::i(inner_i), vec, |kb, i| kb.store(y, at.clone() + i, Expr::f(0.0)));
                    kb.for_("t", Expr::i(0), Expr::i(tn as i64), LoopKind::Serial, |kb, tap| {
                        let j = kb.let_("j", k.clone() * Expr::i(tn as i64) + tap);
                        let src = kb.let_("src", base.clone() + Expr::load(ob, j.clone()));
                        let w = kb.let_("w", Expr::load(wb.expect("weights"), j));
                        kb.for_("i", Expr::i(0), Expr::i(inner_i), vec, |kb, i| {
                            let dst = at.clone() + i.clone();
                            kb.store(y, dst.clone(), Expr::load(y, dst) + w.clone() * Expr::load(xb, src.clone() + i));
                        });
                    });
                    return;
                }
                let srcs: Vec<Expr> = (0..tn)
                    .map(|tap| kb.let_(&format!("s{tap}"), base.clone() + Expr::load(ob, k.clone() * Expr::i(tn as i64) + Expr::i(tap as i64))))
                    .collect();
                let ws: Vec<Expr> = match wb {
                    Some(wb) => (0..tn)
                        .map(|tap| kb.let_(&format!("w{tap}"), Expr::load(wb, k.clone() * Expr::i(tn as i64) + Expr::i(tap as i64))))
                        .collect(),
                    None => vec![],
                };
                kb.for_("i", Expr::i(0), Expr::i(inner_i), vec, |kb, i| {
                    let v = if ws.is_empty() {
                        Expr::load(xb, srcs[0].clone() + i.clone())
                    } else {
                        let mut acc = ws[0].clone() * Expr::load(xb, srcs[0].clone() + i.clone());
                        for tap in 1..tn {
                            acc = acc + ws[tap].clone() * Expr::load(xb, srcs[tap].clone() + i.clone());
                        }
                        acc
                    };
                    kb.store(y, at.clone() + i, v);
                });
            };
            match fb {
                Some(fb) => kb.if_else(
                    Expr::load(fb, k.clone()).eq_(Expr::i(1)),
                    |kb| kb.for_("i", Expr::i(0), Expr::i(inner_i), vec, |kb, i| kb.store(y, at.clone() + i, Expr::f(extrapolation))),
                    body,
                ),
                None => body(kb),
            }
        });
        let mut args = vec![src, dst, offs];
        args.extend(wts);
        args.extend(flags);
        l.step(node, kb.finish(), args);
        src = dst;
    }
    Ok(true)
}
