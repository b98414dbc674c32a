//! Lowering of pooling: windowed max and average (1-d and 2-d, padding, dilation,
//! ceil mode, `count_include_pad`, as ONNX) as direct loops over each output
//! element's window, and global pooling as a vector reduction per plane.

use super::util::{RowOp, reduce_row, Operand};
use super::{Lowerer, internal};
use crate::kernel::{Access, BinOp, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::ops::{Pool, PoolKind};
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Pool(_) | Op::GlobalPool(_))
        && ins.iter().all(|t| t.dtype == DType::F32)
        && outs.iter().all(|t| t.dtype == DType::F32)
}

/// (kernel, stride, pad begin, pad end, dilation) of each of the two spatial dims.
type Geo = [(usize, usize, usize, usize, usize); 2];

fn geometry(p: &Pool) -> Option<Geo> {
    match p.rank() {
        1 => Some([(1, 1, 0, 0, 1), (p.kernel[0], *p.stride.first()?, p.pad[0], p.pad[1], p.dilation[0])]),
        2 => Some([
            (p.kernel[0], p.stride[0], p.pad[0], p.pad[2], p.dilation[0]),
            (p.kernel[1], p.stride[1], p.pad[1], p.pad[3], p.dilation[1]),
        ]),
        _ => None,
    }
}

fn as_4d(s: &[usize]) -> Option<[usize; 4]> {
    match *s {
        [n, c, l] => Some([n, c, 1, l]),
        [n, c, h, w] => Some([n, c, h, w]),
        _ => None,
    }
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
            kb.for_("p", Expr::i(0), Expr::i(planes as i64), par, |kb, p| {
                let base = kb.let_("base", p.clone() * inner as i64);
                let rop = if kind == PoolKind::Max { RowOp::Max } else { RowOp::Add };
                let r = reduce_row(kb, xb, &base, inner, t.vector_width, rop, &|_, v, _| v);
                let r = if kind == PoolKind::Avg { r / Expr::f(inner as f32) } else { r };
                kb.store(y, p, r);
            });
        }
        Op::Pool(p) => {
            let geo = geometry(p).ok_or_else(|| internal(node, "pooling rank"))?;
            let [n, c, h, w] = as_4d(&x.shape).ok_or_else(|| internal(node, "pooling shape"))?;
            let [_, _, oh, ow] = as_4d(&out.shape).ok_or_else(|| internal(node, "pooling shape"))?;
            let planes = n * c;
            let par = if out.len() >= t.parallel_min_elems / 8 && planes > 1 { LoopKind::Parallel } else { LoopKind::Serial };
            let (kind, include) = (p.kind, p.count_include_pad);
            kb.for_("p", Expr::i(0), Expr::i(planes as i64), par, |kb, pl| {
                let base = kb.let_("base", pl.clone() * (h * w) as i64);
                let obase = kb.let_("obase", pl * (oh * ow) as i64);
                kb.for_n("oy", oh as u64, |kb, oy| {
                    kb.for_n("ox", ow as u64, |kb, ox| {
                        let acc = kb.var("acc", Ty::F32);
                        let real = kb.var("real", Ty::F32);
                        let padded = kb.var("padded", Ty::F32);
                        kb.set(acc, Expr::f(if kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 }));
                        kb.set(real, Expr::f(0.0));
                        kb.set(padded, Expr::f(0.0));
                        let (kh, sh, ph, peh, dh) = geo[0];
                        let (kw, sw, pw, pew, dw) = geo[1];
                        kb.for_n("ky", kh as u64, |kb, ky| {
                            let iy = kb.let_("iy", oy.clone() * sh as i64 + ky * dh as i64 - Expr::i(ph as i64));
                            kb.for_n("kx", kw as u64, |kb, kx| {
                                let ix = kb.let_("ix", ox.clone() * sw as i64 + kx * dw as i64 - Expr::i(pw as i64));
                                let in_y = iy.clone().ge(Expr::i(0)).and(iy.clone().lt(Expr::i(h as i64)));
                                let in_x = ix.clone().ge(Expr::i(0)).and(ix.clone().lt(Expr::i(w as i64)));
                                let inside = kb.let_("inside", in_y.and(in_x));
                                if include {
                                    let in_pad = iy.clone().lt(Expr::i((h + peh) as i64)).and(ix.clone().lt(Expr::i((w + pew) as i64)));
                                    kb.set(padded, Expr::var(padded) + Expr::cast(Scalar::F32, in_pad));
                                }
                                kb.if_(inside, |kb| {
                                    let v = Expr::load(xb, base.clone() + iy.clone() * w as i64 + ix.clone());
                                    let a = match kind {
                                        PoolKind::Max => Expr::bin(BinOp::Max, Expr::var(acc), v),
                                        PoolKind::Avg => Expr::var(acc) + v,
                                    };
                                    kb.set(acc, a);
                                    kb.set(real, Expr::var(real) + Expr::f(1.0));
                                });
                            });
                        });
                        let r = match kind {
                            PoolKind::Max => Expr::var(acc),
                            PoolKind::Avg => Expr::var(acc) / Expr::var(if include { padded } else { real }),
                        };
                        kb.store(y, obase.clone() + oy.clone() * ow as i64 + ox, r);
                    });
                });
            });
        }
        _ => return Ok(false),
    }
    l.step(node, kb.finish(), vec![x.buf, out.buf]);
    Ok(true)
}
