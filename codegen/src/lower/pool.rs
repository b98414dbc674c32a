//! Lowering of pooling: windowed max and average (1-d, 2-d and 3-d, padding,
//! dilation, ceil mode, `count_include_pad`, max with the indices of its maxima, as
//! ONNX) as direct loops over each output element's window, and global pooling as a
//! vector reduction per plane (on the GPU, a workgroup per plane when planes are
//! large: `lower::coop`).

use super::util::{RowOp, reduce_row, Operand};
use super::{coop, Lowerer, internal};
use crate::kernel::{Access, BinOp, CmpOp, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::ops::{Pool, PoolKind, StorageOrder};
use smelt_ir::{DType, Op, TensorType};

/// f32 pooling of 1 to 3 spatial dims; max pooling's indices are i64.
pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    let rank_ok = match op {
        Op::Pool(p) => (1..=3).contains(&p.rank()),
        Op::GlobalPool(_) => true,
        _ => false,
    };
    rank_ok
        && ins.iter().all(|t| t.dtype == DType::F32)
        && outs.iter().enumerate().all(|(i, t)| t.dtype == if i == 0 { DType::F32 } else { DType::I64 })
}

/// One spatial dim of a window: (kernel, stride, pad begin, pad end, dilation).
type Dim1 = (usize, usize, usize, usize, usize);

fn geometry(p: &Pool) -> Option<Vec<Dim1>> {
    let r = p.rank();
    if !(1..=3).contains(&r) || p.stride.len() != r || p.pad.len() != 2 * r || p.dilation.len() != r {
        return None;
    }
    Some((0..r).map(|i| (p.kernel[i], p.stride[i], p.pad[i], p.pad[r + i], p.dilation[i])).collect())
}

/// Loop names of the output positions, kernel taps and input coordinates of the
/// last `r` of the dims (z, y, x).
fn names(r: usize) -> ([&'static str; 3], [&'static str; 3], [&'static str; 3]) {
    let pick = |a: [&'static str; 3]| {
        let mut v = [""; 3];
        v[..r].copy_from_slice(&a[3 - r..]);
        v
    };
    (pick(["oz", "oy", "ox"]), pick(["kz", "ky", "kx"]), pick(["iz", "iy", "ix"]))
}

/// Nested loops over `dims` named `names`, the body getting every index.
fn nest(kb: &mut KernelBuilder, dims: &[usize], names: &[&str], acc: Vec<Expr>, body: &mut dyn FnMut(&mut KernelBuilder, &[Expr])) {
    if acc.len() == dims.len() {
        return body(kb, &acc);
    }
    let d = acc.len();
    kb.for_n(names[d], dims[d] as u64, |kb, i| {
        let mut a = acc.clone();
        a.push(i);
        nest(kb, dims, names, a, body);
    });
}

/// Row-major strides of a shape.
fn strides(s: &[usize]) -> Vec<usize> {
    (0..s.len()).map(|d| s[d + 1..].iter().product()).collect()
}

/// `Σ idx[d]·strides[d]` without multiplying by 1.
fn offset(base: Expr, idx: &[Expr], strides: &[usize]) -> Expr {
    idx.iter().zip(strides).fold(base, |a, (i, &s)| if s == 1 { a + i.clone() } else { a + i.clone() * s as i64 })
}

/// Nested loops over the kernel taps of output position `o`, the body getting the
/// input coordinate `o·stride + k·dilation − pad_begin` of every dim.
fn nest_taps(
    kb: &mut KernelBuilder,
    geo: &[Dim1],
    knames: &[&str],
    inames: &[&str],
    o: &[Expr],
    acc: Vec<Expr>,
    body: &mut dyn FnMut(&mut KernelBuilder, &[Expr]),
) {
    if acc.len() == geo.len() {
        return body(kb, &acc);
    }
    let d = acc.len();
    let (k, s, pb, _, dil) = geo[d];
    kb.for_n(knames[d], k as u64, |kb, kk| {
        let i = kb.let_(inames[d], o[d].clone() * s as i64 + kk * dil as i64 - Expr::i(pb as i64));
        let mut a = acc.clone();
        a.push(i);
        nest_taps(kb, geo, knames, inames, o, a, body);
    });
}

/// The output positions `[lo, hi)` of one dim whose windows lie wholly inside
/// the input: `o·stride − pad ≥ 0` and `o·stride − pad + (k − 1)·dilation < n`.
fn interior(k: usize, stride: usize, pad: usize, dil: usize, n: usize, on: usize) -> (usize, usize) {
    let lo = pad.div_ceil(stride);
    let reach = (k - 1) * dil;
    // The largest o with o·stride + reach < n + pad.
    let hi = if n + pad > reach { ((n + pad - reach - 1) / stride + 1).min(on) } else { 0 };
    (lo.min(hi), hi)
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let (x, out) = (&ins[0], &outs[0]);
    let t = l.target.clone();
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    match op {
        Op::GlobalPool(kind) => {
            let planes: usize = x.shape[..2.min(x.shape.len())].iter().product();
            let inner: usize = x.shape.get(2..).map_or(1, |s| s.iter().product());
            let par = if x.len() >= t.parallel_min_elems && planes > 1 { LoopKind::Parallel } else { LoopKind::Serial };
            let kind = *kind;
            if coop::cooperative(&t, planes, inner) {
                // A workgroup per plane.
                kb.for_("p", Expr::i(0), Expr::i(planes as i64), LoopKind::Parallel, |kb, p| {
                    let base = kb.let_("base", p.clone() * inner as i64);
                    let op = if kind == PoolKind::Max { BinOp::Max } else { BinOp::Add };
                    let r = coop::reduce(kb, "acc", Ty::F32, op, Expr::f(coop::identity_f32(op)), inner, |_, j| Expr::load(xb, base.clone() + j));
                    let r = if kind == PoolKind::Avg { r / Expr::f(inner as f32) } else { r };
                    kb.store(y, p, r);
                });
            } else {
                kb.for_("p", Expr::i(0), Expr::i(planes as i64), par, |kb, p| {
                    let base = kb.let_("base", p.clone() * inner as i64);
                    let rop = if kind == PoolKind::Max { RowOp::Max } else { RowOp::Add };
                    let r = reduce_row(kb, xb, &base, inner, t.vector_width, rop, &|_, v, _| v);
                    let r = if kind == PoolKind::Avg { r / Expr::f(inner as f32) } else { r };
                    kb.store(y, p, r);
                });
            }
        }
        Op::Pool(p) => {
            let geo = geometry(p).ok_or_else(|| internal(node, "pooling rank"))?;
            let r = geo.len();
            if x.shape.len() != r + 2 || out.shape.len() != r + 2 {
                return Err(internal(node, "pooling shape"));
            }
            let (planes, plane, oplane) = (x.shape[0] * x.shape[1], x.shape[2..].iter().product::<usize>(), out.shape[2..].iter().product::<usize>());
            let (xs, os) = (x.shape[2..].to_vec(), out.shape[2..].to_vec());
            let (xst, ost) = (strides(&xs), strides(&os));
            // Column-major strides of the input's spatial dims (for `indices`).
            let cst: Vec<usize> = (0..r).map(|d| xs[..d].iter().product()).collect();
            let par = if out.len() >= t.parallel_min_elems / 8 && planes > 1 { LoopKind::Parallel } else { LoopKind::Serial };
            let (kind, include) = (p.kind, p.count_include_pad);
            let ib = match (p.indices, outs.get(1)) {
                (Some(_), Some(o)) => Some(kb.buffer("indices", Scalar::I64, o.len(), Access::Write)),
                (Some(_), None) => return Err(internal(node, "max pooling with indices has two outputs")),
                _ => None,
            };
            let order = p.indices;
            let (onames, knames, inames) = names(r);
            // Windows wholly inside the input (no indices wanted) take the taps
            // unrolled, without bounds checks.
            let inner: Vec<(usize, usize)> = geo.iter().zip(&xs).zip(&os).map(|((&(k, st, pb, _, dil), &n), &on)| interior(k, st, pb, dil, n, on)).collect();
            let split = ib.is_none() && geo.iter().map(|g| g.0).product::<usize>() <= 64 && inner.iter().all(|&(lo, hi)| lo < hi);
            kb.for_("p", Expr::i(0), Expr::i(planes as i64), par, |kb, pl| {
                let base = kb.let_("base", pl.clone() * plane as i64);
                let obase = kb.let_("obase", pl * oplane as i64);
                // One output element; `fast`: its window lies inside the input.
                let point = |kb: &mut KernelBuilder, o: &[Expr], fast: bool| {
                    let acc = kb.var("acc", Ty::F32);
                    let real = kb.var("real", Ty::F32);
                    let padded = kb.var("padded", Ty::F32);
                    let arg = ib.map(|_| kb.var("arg", Ty::I64));
                    kb.set(acc, Expr::f(if kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 }));
                    kb.set(real, Expr::f(0.0));
                    kb.set(padded, Expr::f(0.0));
                    if let Some(a) = arg {
                        kb.set(a, Expr::i(-1));
                    }
                    let o = o.to_vec();
                    let slow = |kb: &mut KernelBuilder| nest_taps(kb, &geo, &knames[..r], &inames[..r], &o, vec![], &mut |kb, ii| {
                        let inside = ii.iter().zip(&xs).map(|(i, &n)| i.clone().ge(Expr::i(0)).and(i.clone().lt(Expr::i(n as i64))));
                        let inside = inside.reduce(Expr::and).expect("rank ≥ 1");
                        let inside = kb.let_("inside", inside);
                        if include {
                            let in_pad = ii.iter().zip(&geo).zip(&xs).map(|((i, g), &n)| i.clone().lt(Expr::i((n + g.3) as i64)));
                            let in_pad = in_pad.reduce(Expr::and).expect("rank ≥ 1");
                            kb.set(padded, Expr::var(padded) + Expr::cast(Scalar::F32, in_pad));
                        }
                        kb.if_(inside, |kb| {
                            let v = Expr::load(xb, offset(base.clone(), ii, &xst));
                            if let Some(a) = arg {
                                // The first maximum in window order; a NaN wins and stays.
                                let v = kb.let_("v", v.clone());
                                let acc_ok = Expr::cmp(CmpOp::Eq, Expr::var(acc), Expr::var(acc));
                                let better = Expr::bin(BinOp::Or, v.clone().gt(Expr::var(acc)), Expr::cmp(CmpOp::Ne, v.clone(), v.clone()));
                                let upd = Expr::bin(BinOp::Or, Expr::var(a).lt(Expr::i(0)), acc_ok.and(better));
                                let cs = if order == Some(StorageOrder::ColMajor) { &cst } else { &xst };
                                kb.set(a, Expr::select(upd, offset(Expr::i(0), ii, cs), Expr::var(a)));
                                kb.set(acc, Expr::bin(BinOp::Max, Expr::var(acc), v));
                            } else {
                                let a = match kind {
                                    PoolKind::Max => Expr::bin(BinOp::Max, Expr::var(acc), v),
                                    PoolKind::Avg => Expr::var(acc) + v,
                                };
                                kb.set(acc, a);
                            }
                            kb.set(real, Expr::var(real) + Expr::f(1.0));
                        });
                    });
                    if fast {
                        let corner: Vec<Expr> = o.iter().zip(&geo).map(|(oi, g)| oi.clone() * g.1 as i64 - Expr::i(g.2 as i64)).collect();
                        let at0 = kb.let_("at0", offset(base.clone(), &corner, &xst));
                        let taps: usize = geo.iter().map(|g| g.0).product();
                        for tap in 0..taps {
                            // The tap's offset: `k_d·dilation_d` along every dim.
                            let (mut rest, mut off) = (tap, 0usize);
                            for d in (0..r).rev() {
                                off += rest % geo[d].0 * geo[d].4 * xst[d];
                                rest /= geo[d].0;
                            }
                            let v = Expr::load(xb, at0.clone() + off as i64);
                            let a = match kind {
                                PoolKind::Max => Expr::bin(BinOp::Max, Expr::var(acc), v),
                                PoolKind::Avg => Expr::var(acc) + v,
                            };
                            kb.set(acc, a);
                        }
                        kb.set(real, Expr::f(taps as f32));
                        kb.set(padded, Expr::f(taps as f32));
                    } else {
                        slow(kb);
                    }
                    let res = match kind {
                        PoolKind::Max => Expr::var(acc),
                        PoolKind::Avg => Expr::var(acc) / Expr::var(if include { padded } else { real }),
                    };
                    let at = offset(obase.clone(), &o, &ost);
                    kb.store(y, at.clone(), res);
                    if let (Some(ib), Some(a)) = (ib, arg) {
                        // A window wholly in the padding keeps −1, as in the interpreter.
                        let flat = Expr::select(Expr::var(a).lt(Expr::i(0)), Expr::i(-1), Expr::var(a) + base.clone());
                        kb.store(ib, at, flat);
                    }
                };
                if !split {
                    return nest(kb, &os, &onames[..r], vec![], &mut |kb, o| point(kb, o, false));
                }
                // The last dim in three runs when the outer dims' windows are inside:
                // checked, unchecked (a plain loop LLVM can vectorize), checked.
                nest(kb, &os[..r - 1], &onames[..r - 1], vec![], &mut |kb, outer| {
                    let run = |kb: &mut KernelBuilder, lo: usize, hi: usize, fast: bool| {
                        if lo >= hi {
                            return;
                        }
                        kb.for_(onames[r - 1], Expr::i(lo as i64), Expr::i(hi as i64), LoopKind::Serial, |kb, ox| {
                            let mut o = outer.to_vec();
                            o.push(ox);
                            point(kb, &o, fast);
                        });
                    };
                    let (lo, hi) = inner[r - 1];
                    let on = os[r - 1];
                    let cond = outer.iter().zip(&inner).map(|(oi, &(lo, hi))| oi.clone().ge(Expr::i(lo as i64)).and(oi.clone().lt(Expr::i(hi as i64)))).reduce(Expr::and);
                    let all = |kb: &mut KernelBuilder| {
                        run(kb, 0, lo, false);
                        run(kb, lo, hi, true);
                        run(kb, hi, on, false);
                    };
                    match cond {
                        Some(c) => kb.if_else(c, all, |kb| run(kb, 0, on, false)),
                        None => all(kb),
                    }
                });
            });
            let mut args = vec![x.buf, out.buf];
            args.extend(outs.get(1).filter(|_| p.indices.is_some()).map(|o| o.buf));
            l.step(node, kb.finish(), args);
            return Ok(true);
        }
        _ => return Ok(false),
    }
    l.step(node, kb.finish(), vec![x.buf, out.buf]);
    Ok(true)
}
