//! Lowering of `qconv1d`/`qconv2d`/`qconv3d`: `Σ (x − zx)(w − zw[oc])` over the receptive
//! field accumulated in wrapping i32 (the i8/u8 products widened, padding
//! contributing nothing, as the reference's `x = zx` there), plus the optional i32
//! bias; then either the accumulators are the output or they are requantized in
//! f64 by `quant::requantize`. Constant weights are widened and shifted by their
//! zero points at compile time. Every conv is a 3-d one: a 1-d conv has depth and
//! height 1, a 2-d one depth 1.

use super::quant::{params, requantize};
use super::util::Operand;
use super::{BufIdx, BufKind, Lowerer, internal};
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::ops::{Conv, Requant};
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    let q8 = |t: &TensorType| matches!(t.dtype, DType::I8 | DType::U8) && t.quant.is_some();
    let Op::QConv(c, _) = op else { return false };
    matches!(c.rank(), 1..=3)
        && ins.len() >= 2
        && q8(ins[0])
        && q8(ins[1])
        && ins[0].quant.as_ref().is_some_and(|q| q.axis().is_none())
        && ins[1].quant.as_ref().is_some_and(|q| q.axis().is_none_or(|a| a == 0))
        && ins.get(2).is_none_or(|b| b.dtype == DType::I32 && b.quant.is_none())
        && outs.iter().all(|t| matches!(t.dtype, DType::I8 | DType::U8 | DType::I32))
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let Op::QConv(c, r) = op else { return Ok(false) };
    qconv(l, node, c, r, ins, &outs[0])
}

fn qconv(l: &mut Lowerer, node: &str, c: &Conv, rq: &Requant, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, w) = (&ins[0], &ins[1]);
    // Shapes as [n, c, d, h, w]; strides, pads and dilations as (d, h, w).
    let lift = |s: &[usize]| -> Vec<usize> {
        let mut v = s[..2.min(s.len())].to_vec();
        v.extend(std::iter::repeat_n(1, 5usize.saturating_sub(s.len())));
        v.extend_from_slice(&s[2.min(s.len())..]);
        v
    };
    let (xs, ws, os) = (lift(&x.shape), lift(&w.shape), lift(&out.shape));
    let r = c.rank();
    if c.stride.len() != r || c.pad.len() < r || c.dilation.len() != r || !(1..=3).contains(&r) {
        return Err(internal(node, "qconv attributes do not match its rank"));
    }
    let spatial = |v: &[usize], fill: usize| -> [usize; 3] {
        let mut a = [fill; 3];
        a[3 - r..].copy_from_slice(&v[..r]);
        a
    };
    let (stride, pad, dil) = (spatial(&c.stride, 1), spatial(&c.pad[..r], 0), spatial(&c.dilation, 1));
    let (&[n, ci, id, ih, iw], &[m, cg, kd, kh, kw], &[on, om, od, oh, ow]) = (&xs[..], &ws[..], &os[..]) else {
        return Err(internal(node, "qconv: unexpected shapes"));
    };
    let g = c.groups;
    if g == 0 || on != n || om != m || m % g != 0 || ci != cg * g {
        return Err(internal(node, "qconv: x, w and groups do not match"));
    }
    let (qx, qw) = (x.ty.quant.clone().ok_or_else(|| internal(node, "x"))?, w.ty.quant.clone().ok_or_else(|| internal(node, "w"))?);
    let (sx, zx) = qx.at(0);
    let (sw, zw) = params(&qw, m);
    let zw_of = |oc: usize| zw[oc.min(zw.len().saturating_sub(1))];
    // The weights as i32 minus their zero point: a constant when the weights are.
    let wz: Option<BufIdx> = match &l.prog.buffer(w.buf).kind {
        BufKind::Const(bytes) => {
            let per = cg * kd * kh * kw;
            let v: Vec<u8> = (0..m * per)
                .flat_map(|i| {
                    let q = if w.scalar == Scalar::I8 { bytes[i] as i8 as i32 } else { bytes[i] as i32 };
                    (q - zw_of(i / per) as i32).to_le_bytes()
                })
                .collect();
            Some(l.constant(&format!("{node}.w_i32"), Scalar::I32, v))
        }
        _ => None,
    };
    let zwb = l.constant(&format!("{node}.w_zero_point"), Scalar::I32, (0..m).flat_map(|oc| (zw_of(oc) as i32).to_le_bytes()).collect());
    let requant = rq.dtype != DType::I32;
    let len = (n * m * od * oh * ow) as u64;
    let acc_buf = if requant { l.temp(&format!("{node}.acc"), Scalar::I32, len) } else { out.buf };
    let mut kb = KernelBuilder::new(l.kernel_name(node, "acc"));
    let xb = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let wb = match wz {
        Some(_) => kb.buffer("w_i32", Scalar::I32, w.len(), Access::Read),
        None => kb.buffer("w", w.scalar, w.len(), Access::Read),
    };
    let zk = kb.buffer("w_zero_point", Scalar::I32, m as u64, Access::Read);
    let bias = ins.get(2).map(|o| kb.buffer("bias", Scalar::I32, o.len(), Access::Read));
    let y = kb.buffer("acc", Scalar::I32, len, Access::Write);
    let work = len.saturating_mul((cg * kd * kh * kw) as u64);
    let par = if n * m > 1 && work >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    let (mg, widened) = (m / g, wz.is_some());
    let i32c = |v: i64| Expr::int(v, Scalar::I32);
    kb.for_("bo", Expr::i(0), Expr::i((n * m) as i64), par, |kb, bo| {
        let b = kb.let_("b", bo.clone() / Expr::i(m as i64));
        let oc = kb.let_("oc", bo.clone() % Expr::i(m as i64));
        let ic0 = kb.let_("ic0", (oc.clone() / Expr::i(mg as i64)) * cg as i64);
        let zwv = kb.let_("zw", Expr::load(zk, oc.clone()));
        kb.for_n("oz", od as u64, |kb, oz| {
            kb.for_n("oy", oh as u64, |kb, oy| {
                kb.for_n("ox", ow as u64, |kb, ox| {
                    let acc = kb.var("acc", Ty::I32);
                    kb.set(acc, bias.map_or(i32c(0), |bb| Expr::load(bb, oc.clone())));
                    kb.for_n("cc", cg as u64, |kb, cc| {
                        kb.for_n("kz", kd as u64, |kb, kz| {
                            let zz = kb.let_("z", oz.clone() * stride[0] as i64 + kz.clone() * dil[0] as i64 - Expr::i(pad[0] as i64));
                            kb.if_(zz.clone().ge(Expr::i(0)).and(zz.clone().lt(Expr::i(id as i64))), |kb| {
                                kb.for_n("ky", kh as u64, |kb, ky| {
                                    let yy = kb.let_("y", oy.clone() * stride[1] as i64 + ky.clone() * dil[1] as i64 - Expr::i(pad[1] as i64));
                                    kb.if_(yy.clone().ge(Expr::i(0)).and(yy.clone().lt(Expr::i(ih as i64))), |kb| {
                                        kb.for_n("kx", kw as u64, |kb, kx| {
                                            let xx = kb.let_("xx", ox.clone() * stride[2] as i64 + kx.clone() * dil[2] as i64 - Expr::i(pad[2] as i64));
                                            kb.if_(xx.clone().ge(Expr::i(0)).and(xx.clone().lt(Expr::i(iw as i64))), |kb| {
                                                let plane = (b.clone() * ci as i64 + ic0.clone() + cc.clone()) * id as i64 + zz.clone();
                                                let xi = (plane * ih as i64 + yy.clone()) * iw as i64 + xx;
                                                let wplane = (oc.clone() * cg as i64 + cc.clone()) * kd as i64 + kz.clone();
                                                let wi = (wplane * kh as i64 + ky.clone()) * kw as i64 + kx;
                                                let xv = Expr::cast(Scalar::I32, Expr::load(xb, xi)) - i32c(zx as i64);
                                                let wv = if widened { Expr::load(wb, wi) } else { Expr::cast(Scalar::I32, Expr::load(wb, wi)) - zwv.clone() };
                                                kb.set(acc, Expr::var(acc) + xv * wv);
                                            });
                                        });
                                    });
                                });
                            });
                        });
                    });
                    let at = (((b.clone() * m as i64 + oc.clone()) * od as i64 + oz.clone()) * oh as i64 + oy.clone()) * ow as i64 + ox;
                    kb.store(y, at, Expr::var(acc));
                });
            });
        });
    });
    let mut args = vec![x.buf, wz.unwrap_or(w.buf), zwb];
    if let Some(o) = ins.get(2) {
        args.push(o.buf);
    }
    args.push(acc_buf);
    l.step(node, kb.finish(), args);
    if requant {
        requantize(l, node, rq, acc_buf, out, sx, &sw, (n, m, od * oh * ow))?;
    }
    Ok(true)
}
