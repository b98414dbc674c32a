//! Lowering of reductions (`reduce_sum/mean/max/min/prod/l2` over axes, and
//! `argmax`/`argmin`). When the reduced axes are the trailing ones each output
//! reduces one contiguous row with vector accumulators; otherwise a loop nest over
//! the kept dims (the innermost vectorized) accumulates over the reduced dims.
//! Integers accumulate in i64 (wrapping) and saturate into the output dtype. On
//! the GPU, long reductions are cooperative (`lower::coop`): a workgroup per output.

use super::util::{RowOp, nest, reduce_row, strides, Operand};
use super::{coop, int32, Lowerer, internal};
use crate::kernel::{Access, BinOp, CmpOp, Expr, KernelBuilder, LoopKind, Scalar, Ty, UnOp};
use crate::Error;
use smelt_ir::ops::reduce::reduce_axes;
use smelt_ir::ops::{ArgKind, ReduceKind};
use smelt_ir::shape::normalize_axis;
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], _outs: &[TensorType]) -> bool {
    let d = ins.first().map(|t| t.dtype);
    match op {
        Op::Reduce { kind, .. } => match d {
            Some(DType::F32) => true,
            Some(DType::I8 | DType::U8 | DType::I32 | DType::I64) => !matches!(kind, ReduceKind::Mean | ReduceKind::L2),
            _ => false,
        },
        Op::ArgReduce { .. } => matches!(d, Some(DType::F32 | DType::I8 | DType::U8 | DType::I32 | DType::I64)),
        _ => false,
    }
}

/// Nested serial loops over the reduced dims `(size, stride)` from offset `at`.
fn walk(kb: &mut KernelBuilder, d: usize, red: &[(usize, i64)], at: Expr, body: &mut dyn FnMut(&mut KernelBuilder, Expr)) {
    if d == red.len() {
        return body(kb, at);
    }
    let (n, s) = red[d];
    kb.for_n("r", n as u64, |kb, r| walk(kb, d + 1, red, at.clone() + r * s, body));
}

/// The offset of flat index `f` over dims `(size, stride)` (row-major).
fn unflatten(f: &Expr, dims: &[(usize, i64)]) -> Expr {
    let mut off = Expr::i(0);
    let mut inner = 1usize;
    for &(n, st) in dims.iter().rev() {
        let q = if inner == 1 { f.clone() } else { f.clone() / Expr::i(inner as i64) };
        let q = if inner * n == dims.iter().map(|d| d.0).product::<usize>() { q } else { q % Expr::i(n as i64) };
        off = off + q * st;
        inner *= n;
    }
    off
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let (x, out) = (&ins[0], &outs[0]);
    let t = l.target.clone();
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let xb = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let y = kb.buffer("out", out.scalar, out.len(), Access::Write);
    let xst = strides(&x.shape);
    match op {
        Op::Reduce { kind, axes, .. } => {
            let ax = reduce_axes(axes, x.shape.len()).map_err(|m| internal(node, &m))?;
            let kind = *kind;
            let count: usize = ax.iter().map(|&a| x.shape[a]).product();
            let float = x.scalar == Scalar::F32;
            let kept: Vec<usize> = (0..x.shape.len()).filter(|d| !ax.contains(d)).collect();
            let trailing = ax.iter().enumerate().all(|(i, &a)| a == x.shape.len() - ax.len() + i);
            let finish = move |acc: Expr| -> Expr {
                match kind {
                    ReduceKind::Mean => acc / Expr::f(count as f32),
                    ReduceKind::L2 => Expr::un(UnOp::Sqrt, acc),
                    _ => acc,
                }
            };
            let (in_lo, in_hi) = x.scalar.int_range().unwrap_or((i64::MIN, i64::MAX));
            let outputs: usize = kept.iter().map(|&d| x.shape[d]).product();
            let rop = match kind {
                ReduceKind::Max => BinOp::Max,
                ReduceKind::Min => BinOp::Min,
                ReduceKind::Prod => BinOp::Mul,
                _ => BinOp::Add,
            };
            // The GPU's integer sums of i32 and products of 32-bit or narrower
            // integers keep the reference's i64 accumulator as two i32 words
            // (`int32`); i64 data is the WGSL emitter's two-word i64 already.
            let wide = t.is_gpu()
                && !float
                && x.scalar != Scalar::I64
                && (kind == ReduceKind::Prod || (kind == ReduceKind::Sum && x.scalar == Scalar::I32));
            if !wide && coop::cooperative(&t, outputs, count) {
                // A workgroup per output: the reduced elements spread over its
                // invocations (offsets decomposed from one flat index).
                let kdims: Vec<(usize, i64)> = kept.iter().map(|&d| (x.shape[d], xst[d])).collect();
                let rdims: Vec<(usize, i64)> = ax.iter().map(|&a| (x.shape[a], xst[a])).collect();
                let (acc_ty, init) = if float {
                    (Ty::F32, Expr::f(coop::identity_f32(rop)))
                } else {
                    let id = match kind {
                        ReduceKind::Max => in_lo,
                        ReduceKind::Min => in_hi,
                        ReduceKind::Prod => 1,
                        _ => 0,
                    };
                    (Ty::I64, Expr::i(id))
                };
                let out_scalar = out.scalar;
                kb.for_("r", Expr::i(0), Expr::i(outputs as i64), LoopKind::Parallel, |kb, r| {
                    let base = if trailing { r.clone() * count as i64 } else { unflatten(&r, &kdims) };
                    let base = kb.let_("base", base);
                    let sq = kind == ReduceKind::L2;
                    let acc = coop::reduce(kb, "acc", acc_ty, rop, init, count, |kb, q| {
                        let at = if trailing { base.clone() + q } else { base.clone() + unflatten(&q, &rdims) };
                        let v = Expr::load(xb, at);
                        let v = if float { v } else { Expr::cast(Scalar::I64, v) };
                        if sq {
                            let v = kb.let_("v", v);
                            v.clone() * v
                        } else {
                            v
                        }
                    });
                    let res = finish(acc);
                    kb.store(y, r, if float { res } else { Expr::cast(out_scalar, res) });
                });
            } else if float && trailing {
                let outer: usize = kept.iter().map(|&d| x.shape[d]).product();
                let par = if x.len() >= t.parallel_min_elems && outer > 1 { LoopKind::Parallel } else { LoopKind::Serial };
                kb.for_("r", Expr::i(0), Expr::i(outer as i64), par, |kb, r| {
                    let base = kb.let_("base", r.clone() * count as i64);
                    let rop = match kind {
                        ReduceKind::Max => RowOp::Max,
                        ReduceKind::Min => RowOp::Min,
                        ReduceKind::Prod => RowOp::Mul,
                        _ => RowOp::Add,
                    };
                    let sq = kind == ReduceKind::L2;
                    let acc = reduce_row(kb, xb, &base, count, t.vector_width, rop, &|_, v, _| if sq { v.clone() * v } else { v });
                    kb.store(y, r, finish(acc));
                });
            } else {
                // Output positions over the kept dims; the reduced dims walked inside.
                let dims: Vec<usize> = kept.iter().map(|&d| x.shape[d]).collect();
                let in_st: Vec<i64> = kept.iter().map(|&d| xst[d]).collect();
                let out_st = strides(&dims);
                let red: Vec<(usize, i64)> = ax.iter().map(|&a| (x.shape[a], xst[a])).collect();
                let acc_ty = if float { Ty::F32 } else { Ty::I64 };
                let init = match (kind, float) {
                    (ReduceKind::Max, true) => Expr::f(f32::NEG_INFINITY),
                    (ReduceKind::Min, true) => Expr::f(f32::INFINITY),
                    (ReduceKind::Prod, true) => Expr::f(1.0),
                    (_, true) => Expr::f(0.0),
                    // The input type's range: the same result as i64's once
                    // saturated into the output, and within i32 for the GPU.
                    (ReduceKind::Max, false) => Expr::i(in_lo),
                    (ReduceKind::Min, false) => Expr::i(in_hi),
                    (ReduceKind::Prod, false) => Expr::i(1),
                    (_, false) => Expr::i(0),
                };
                let out_scalar = out.scalar;
                let mut t2 = t.clone();
                t2.parallel_min_elems = u64::MAX;
                let in_sc = x.scalar;
                // One output: the reduced dims walked from `at0`, stored at `yi`.
                let one = |kb: &mut KernelBuilder, at0: Expr, yi: Expr| {
                    if wide {
                        let acc = if kind == ReduceKind::Prod { int32::one64(kb) } else { int32::acc64(kb) };
                        walk(kb, 0, &red, at0, &mut |kb, at| {
                            let v = Expr::load(xb, at);
                            let v = if in_sc == Scalar::I32 { v } else { Expr::cast(Scalar::I32, v) };
                            if kind == ReduceKind::Prod { int32::mul64(kb, acc, v) } else { int32::add64(kb, acc, v) }
                        });
                        let r = int32::saturate64(acc);
                        kb.store(y, yi, if out_scalar == Scalar::I32 { r } else { Expr::cast(out_scalar, r) });
                        return;
                    }
                    let acc = kb.var("acc", acc_ty);
                    kb.set(acc, init.clone());
                    walk(kb, 0, &red, at0, &mut |kb, at| {
                        let v = Expr::load(xb, at);
                        let v = if float { v } else { Expr::cast(Scalar::I64, v) };
                        let a = Expr::var(acc);
                        let next = match kind {
                            ReduceKind::Max => Expr::bin(BinOp::Max, a, v),
                            ReduceKind::Min => Expr::bin(BinOp::Min, a, v),
                            ReduceKind::Prod => a * v,
                            ReduceKind::L2 => a + v.clone() * v,
                            _ => a + v,
                        };
                        kb.set(acc, next);
                    });
                    let r = finish(Expr::var(acc));
                    let r = if float { r } else { Expr::cast(out_scalar, r) };
                    kb.store(y, yi, r);
                };
                if t.is_gpu() {
                    // The GPU: one output per invocation.
                    let kdims: Vec<(usize, i64)> = kept.iter().map(|&d| (x.shape[d], xst[d])).collect();
                    kb.for_("o", Expr::i(0), Expr::i(outputs as i64), LoopKind::Parallel, |kb, o| {
                        let base = kb.let_("base", unflatten(&o, &kdims));
                        one(kb, base, o);
                    });
                } else {
                    nest(&mut kb, &t2, &dims, &[in_st, out_st], |kb, idx| one(kb, idx[0].clone(), idx[1].clone()));
                }
            }
        }
        Op::ArgReduce { kind, axis, .. } => {
            let a = normalize_axis(*axis, x.shape.len()).ok_or_else(|| internal(node, "arg-reduction axis"))?;
            let (outer, len, inner): (usize, usize, usize) =
                (x.shape[..a].iter().product(), x.shape[a], x.shape[a + 1..].iter().product());
            if len == 0 {
                return Err(internal(node, &format!("{} over an empty axis", op.name())));
            }
            let (max, float) = (*kind == ArgKind::Max, x.scalar == Scalar::F32);
            let vty = if float { Ty::F32 } else { Ty::I64 };
            kb.for_n("o", outer as u64, |kb, o| {
                kb.for_n("i", inner as u64, |kb, i| {
                    let at = |k: Expr| (o.clone() * len as i64 + k) * inner as i64 + i.clone();
                    let ld = |k: Expr| if float { Expr::load(xb, at(k)) } else { Expr::cast(Scalar::I64, Expr::load(xb, at(k))) };
                    let best = kb.var("best", Ty::I64);
                    let bv = kb.var("bv", vty);
                    kb.set(best, Expr::i(0));
                    kb.set(bv, ld(Expr::i(0)));
                    kb.for_("k", Expr::i(1), Expr::i(len as i64), LoopKind::Serial, |kb, k| {
                        let c = kb.let_("c", ld(k.clone()));
                        let op = if max { CmpOp::Gt } else { CmpOp::Lt };
                        let better = if float {
                            // The first NaN wins, as numpy.
                            let nan = |e: Expr| Expr::cmp(CmpOp::Ne, e.clone(), e);
                            Expr::un(UnOp::Not, nan(Expr::var(bv))).and(Expr::bin(BinOp::Or, nan(c.clone()), Expr::cmp(op, c.clone(), Expr::var(bv))))
                        } else {
                            Expr::cmp(op, c.clone(), Expr::var(bv))
                        };
                        let better = kb.let_("better", better);
                        kb.set(best, Expr::select(better.clone(), k, Expr::var(best)));
                        kb.set(bv, Expr::select(better, c, Expr::var(bv)));
                    });
                    kb.store(y, o.clone() * inner as i64 + i.clone(), Expr::var(best));
                });
            });
        }
        _ => return Ok(false),
    }
    l.step(node, kb.finish(), vec![x.buf, out.buf]);
    Ok(true)
}
