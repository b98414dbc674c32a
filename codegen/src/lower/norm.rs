//! Lowering of normalization: inference `batch_norm` (an elementwise kernel with
//! per-channel parameters), `layer_norm` (per row: mean and variance by vector
//! reductions, then one normalizing pass), `softmax` / `log_softmax` along an
//! axis (max, sum of exponentials, then the outputs) and `lrn` (per channel row:
//! the window's squares summed into the output, vectorized over positions, then
//! one normalizing pass). On the GPU, long rows are cooperative (`lower::coop`):
//! a workgroup per row.

use super::util::{RowOp, broadcast_strides, coalesce, fconst, nest, reduce_row, Operand};
use super::{coop, Lowerer, internal};
use crate::kernel::{Access, BinOp, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar, Ty, UnOp};
use crate::Error;
use smelt_ir::shape::normalize_axis;
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    op.family() == smelt_ir::ops::Family::Norm
        && ins.iter().all(|t| t.dtype == DType::F32)
        && outs.iter().all(|t| t.dtype == DType::F32)
}

/// A layer norm's (rows, row length).
fn layer_rows(x: &Operand, axis: i64) -> (usize, usize) {
    let a = normalize_axis(axis, x.shape.len()).unwrap_or(0);
    (x.shape[..a].iter().product(), x.shape[a..].iter().product())
}

fn exp(x: Expr) -> Expr {
    Expr::call(Intrinsic::Exp, vec![x])
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    if let Op::Lrn { size, alpha, beta, bias } = *op {
        return lrn(l, node, &ins[0], &outs[0], size, [alpha, beta, bias]);
    }
    let out = &outs[0];
    let x = &ins[0];
    let t = l.target.clone();
    let w = t.vector_width;
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let bufs: Vec<_> = ins.iter().enumerate().map(|(i, o)| kb.buffer(&format!("in{i}"), Scalar::F32, o.len(), Access::Read)).collect();
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    match *op {
        Op::BatchNorm { epsilon } => {
            if x.shape.len() < 2 {
                return Err(internal(node, "batch_norm of a tensor without channels"));
            }
            // Parameters broadcast along dim 1.
            let mut pshape = vec![1; x.shape.len()];
            pshape[1] = x.shape[1];
            let mut st = vec![broadcast_strides(&x.shape, &x.shape)];
            for _ in 0..4 {
                st.push(broadcast_strides(&pshape, &x.shape));
            }
            let (dims, st) = coalesce(&x.shape, &st);
            nest(&mut kb, &t, &dims, &st, |kb, idx| {
                let v = |i: usize| Expr::load(bufs[i], idx[i].clone());
                let d = Expr::un(UnOp::Sqrt, v(4) + Expr::f(epsilon));
                let r = (v(0) - v(3)) / d * v(1) + v(2);
                kb.store(y, idx[0].clone(), r);
            });
        }
        Op::LayerNorm { axis, epsilon } if coop::cooperative(&t, layer_rows(x, axis).0, layer_rows(x, axis).1) => {
            let (outer, inner) = layer_rows(x, axis);
            let has_bias = ins.len() > 2;
            kb.for_("r", Expr::i(0), Expr::i(outer as i64), LoopKind::Parallel, |kb, r| {
                let base = kb.let_("base", r * inner as i64);
                let s = coop::reduce(kb, "sum", Ty::F32, BinOp::Add, Expr::f(0.0), inner, |_, j| Expr::load(bufs[0], base.clone() + j));
                let mean = kb.let_("mean", s / Expr::f(inner as f32));
                let ss = coop::reduce(kb, "ss", Ty::F32, BinOp::Add, Expr::f(0.0), inner, |kb, j| {
                    let d = kb.let_("d", Expr::load(bufs[0], base.clone() + j) - mean.clone());
                    d.clone() * d
                });
                let rstd = kb.let_("rstd", Expr::f(1.0) / Expr::un(UnOp::Sqrt, ss / Expr::f(inner as f32) + Expr::f(epsilon)));
                coop::each(kb, inner, |kb, j| {
                    let v = (Expr::load(bufs[0], base.clone() + j.clone()) - mean.clone()) * rstd.clone() * Expr::load(bufs[1], j.clone());
                    let v = if has_bias { v + Expr::load(bufs[2], j.clone()) } else { v };
                    kb.store(y, base.clone() + j, v);
                });
            });
        }
        Op::LayerNorm { axis, epsilon } => {
            let a = normalize_axis(axis, x.shape.len()).ok_or_else(|| internal(node, "layer_norm axis"))?;
            let inner: usize = x.shape[a..].iter().product();
            let outer: usize = x.shape[..a].iter().product();
            let kind = if x.len() >= t.parallel_min_elems && outer > 1 { LoopKind::Parallel } else { LoopKind::Serial };
            let has_bias = ins.len() > 2;
            kb.for_("r", Expr::i(0), Expr::i(outer as i64), kind, |kb, r| {
                let base = kb.let_("base", r * inner as i64);
                let s = reduce_row(kb, bufs[0], &base, inner, w, RowOp::Add, &|_, v, _| v);
                let mean = kb.let_("mean", s / Expr::f(inner as f32));
                let m2 = mean.clone();
                let ss = reduce_row(kb, bufs[0], &base, inner, w, RowOp::Add, &|kb, v, lanes| {
                    let d = kb.let_("d", v - if lanes == 1 { m2.clone() } else { Expr::splat(m2.clone(), lanes) });
                    d.clone() * d
                });
                let var = ss / Expr::f(inner as f32);
                let rstd = kb.let_("rstd", Expr::f(1.0) / Expr::un(UnOp::Sqrt, var + Expr::f(epsilon)));
                kb.for_("j", Expr::i(0), Expr::i(inner as i64), LoopKind::Vectorized(w), |kb, j| {
                    let v = (Expr::load(bufs[0], base.clone() + j.clone()) - mean.clone()) * rstd.clone() * Expr::load(bufs[1], j.clone());
                    let v = if has_bias { v + Expr::load(bufs[2], j.clone()) } else { v };
                    kb.store(y, base.clone() + j, v);
                });
            });
        }
        Op::Softmax { axis, log } => {
            let a = normalize_axis(axis, x.shape.len()).ok_or_else(|| internal(node, "softmax axis"))?;
            let (outer, len, inner): (usize, usize, usize) =
                (x.shape[..a].iter().product(), x.shape[a], x.shape[a + 1..].iter().product());
            if coop::cooperative(&t, outer * inner, len) {
                // One row (strided by `inner`) per workgroup.
                kb.for_("r", Expr::i(0), Expr::i((outer * inner) as i64), LoopKind::Parallel, |kb, r| {
                    let base = if inner == 1 {
                        kb.let_("base", r * len as i64)
                    } else {
                        kb.let_("base", r.clone() / Expr::i(inner as i64) * (len * inner) as i64 + r % Expr::i(inner as i64))
                    };
                    let at = |k: Expr| base.clone() + if inner == 1 { k } else { k * inner as i64 };
                    let mx = coop::reduce(kb, "max", Ty::F32, BinOp::Max, Expr::f(f32::NEG_INFINITY), len, |_, k| Expr::load(bufs[0], at(k)));
                    let mx = kb.let_("m", mx);
                    let s = coop::reduce(kb, "sum", Ty::F32, BinOp::Add, Expr::f(0.0), len, |_, k| exp(Expr::load(bufs[0], at(k)) - mx.clone()));
                    let fin = if log { kb.let_("lse", Expr::call(Intrinsic::Log, vec![s])) } else { kb.let_("inv", Expr::f(1.0) / s) };
                    coop::each(kb, len, |kb, k| {
                        let z = Expr::load(bufs[0], at(k.clone())) - mx.clone();
                        let v = if log { z - fin.clone() } else { exp(z) * fin.clone() };
                        kb.store(y, at(k), v);
                    });
                });
                let mut args: Vec<_> = ins.iter().map(|o| o.buf).collect();
                args.push(out.buf);
                l.step(node, kb.finish(), args);
                return Ok(true);
            }
            let kind = if x.len() >= t.parallel_min_elems && outer > 1 { LoopKind::Parallel } else { LoopKind::Serial };
            if inner == 1 {
                kb.for_("r", Expr::i(0), Expr::i(outer as i64), kind, |kb, r| {
                    let base = kb.let_("base", r * len as i64);
                    let mx = reduce_row(kb, bufs[0], &base, len, w, RowOp::Max, &|_, v, _| v);
                    let mx = kb.let_("max", mx);
                    let m2 = mx.clone();
                    let s = reduce_row(kb, bufs[0], &base, len, w, RowOp::Add, &|_, v, lanes| {
                        exp(v - if lanes == 1 { m2.clone() } else { Expr::splat(m2.clone(), lanes) })
                    });
                    let s = kb.let_("sum", s);
                    let fin = if log { kb.let_("lse", Expr::call(Intrinsic::Log, vec![s])) } else { kb.let_("inv", Expr::f(1.0) / s) };
                    kb.for_("j", Expr::i(0), Expr::i(len as i64), LoopKind::Vectorized(w), |kb, j| {
                        let z = Expr::load(bufs[0], base.clone() + j.clone()) - mx.clone();
                        let v = if log { z - fin.clone() } else { exp(z) * fin.clone() };
                        kb.store(y, base.clone() + j, v);
                    });
                });
            } else {
                kb.for_("o", Expr::i(0), Expr::i(outer as i64), kind, |kb, o| {
                    kb.for_("i", Expr::i(0), Expr::i(inner as i64), LoopKind::Vectorized(w), |kb, i| {
                        let at = |k: Expr| (o.clone() * len as i64 + k) * inner as i64 + i.clone();
                        let mx = kb.var("max", crate::kernel::Ty::F32);
                        kb.set(mx, fconst(f32::NEG_INFINITY, 1));
                        kb.for_n("k", len as u64, |kb, k| kb.set(mx, Expr::bin(BinOp::Max, Expr::var(mx), Expr::load(bufs[0], at(k)))));
                        let s = kb.var("sum", crate::kernel::Ty::F32);
                        kb.set(s, Expr::f(0.0));
                        kb.for_n("k", len as u64, |kb, k| kb.set(s, Expr::var(s) + exp(Expr::load(bufs[0], at(k)) - Expr::var(mx))));
                        let fin = if log { kb.let_("lse", Expr::call(Intrinsic::Log, vec![Expr::var(s)])) } else { kb.let_("inv", Expr::f(1.0) / Expr::var(s)) };
                        kb.for_n("k", len as u64, |kb, k| {
                            let z = Expr::load(bufs[0], at(k.clone())) - Expr::var(mx);
                            let v = if log { z - fin.clone() } else { exp(z) * fin.clone() };
                            kb.store(y, at(k), v);
                        });
                    });
                });
            }
        }
        _ => return Ok(false),
    }
    let mut args: Vec<_> = ins.iter().map(|o| o.buf).collect();
    args.push(out.buf);
    l.step(node, kb.finish(), args);
    Ok(true)
}

/// `lrn`: for each (image, channel) row, in parallel, the output row first holds
/// the sum of squares over the channel window (`c − ⌊(size−1)/2⌋ … c +
/// ⌈(size−1)/2⌉`, clipped to the channels), added channel by channel with the
/// positions vectorized; then `y = x / (bias + α/size · Σ)^β`.
fn lrn(l: &mut Lowerer, node: &str, x: &Operand, out: &Operand, size: usize, [alpha, beta, bias]: [f32; 3]) -> Result<bool, Error> {
    if x.shape.len() < 2 || size == 0 {
        return Err(internal(node, "lrn of a tensor without channels"));
    }
    let (c, inner) = (x.shape[1] as i64, x.shape[2..].iter().product::<usize>() as i64);
    let rows = x.shape[0] as i64 * c;
    let (below, above) = (((size - 1) / 2) as i64, (size / 2) as i64);
    let t = l.target.clone();
    let mut kb = KernelBuilder::new(l.kernel_name(node, ""));
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::ReadWrite);
    let vec = LoopKind::Vectorized(t.vector_width);
    let kind = if x.len() >= t.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    kb.for_("r", Expr::i(0), Expr::i(rows), kind, |kb, r| {
        let ch = kb.let_("ch", r.clone() % Expr::i(c));
        let row = kb.let_("row", r * inner);
        let img = kb.let_("img", row.clone() - ch.clone() * inner);
        let lo = kb.let_("lo", Expr::bin(BinOp::Max, ch.clone() - Expr::i(below), Expr::i(0)));
        let hi = kb.let_("hi", Expr::bin(BinOp::Min, ch + (above + 1), Expr::i(c)));
        kb.for_("p", Expr::i(0), Expr::i(inner), vec, |kb, p| kb.store(y, row.clone() + p, Expr::f(0.0)));
        kb.for_("k", lo, hi, LoopKind::Serial, |kb, k| {
            let off = kb.let_("off", img.clone() + k * inner);
            kb.for_("p", Expr::i(0), Expr::i(inner), vec, |kb, p| {
                let v = kb.let_("v", Expr::load(xb, off.clone() + p.clone()));
                let at = row.clone() + p;
                kb.store(y, at.clone(), Expr::load(y, at) + v.clone() * v);
            });
        });
        kb.for_("p", Expr::i(0), Expr::i(inner), vec, |kb, p| {
            let at = row.clone() + p;
            let d = Expr::f(bias) + Expr::load(y, at.clone()) * Expr::f(alpha / size as f32);
            let v = Expr::load(xb, at.clone()) / Expr::call(Intrinsic::Pow, vec![d, Expr::f(beta)]);
            kb.store(y, at, v);
        });
    });
    l.step(node, kb.finish(), vec![x.buf, out.buf]);
    Ok(true)
}
