//! Lowering of the whole-layer `moe` (gate, top-k routing, expert FFNs, gated
//! sum), computed in f64 as the reference does: three kernels —
//! `route` (per token, parallel: the gate logits, the top k of them with the
//! reference's order — larger first, ties to the lower expert, NaN above
//! everything — and the softmax over the chosen logits, its `exp` in f32),
//! `slots` (serial, only with a capacity: tokens past an expert's capacity, in
//! token order, are dropped) and `experts` (per token, parallel: each kept
//! expert's `act(x·w1[e])·w2[e]`, weighted and summed, rounded to f32 once).

use super::expr::unary_f32;
use super::util::Operand;
use super::{Lowerer, internal};
use crate::kernel::{Access, BinOp, CmpOp, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar, Ty, UnOp};
use crate::Error;
use smelt_ir::ops::Moe;
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Moe(_)) && ins.iter().all(|t| t.dtype == DType::F32) && outs.iter().all(|t| t.dtype == DType::F32)
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let Op::Moe(m) = op else { return Ok(false) };
    moe(l, node, m, ins, &outs[0])
}

/// Whether `(va, ia)` ranks before `(vb, ib)`: larger value first (NaN largest),
/// equal values by lower index.
fn before(va: Expr, ia: Expr, vb: Expr, ib: Expr) -> Expr {
    let nan = |e: Expr| Expr::cmp(CmpOp::Ne, e.clone(), e);
    let (na, nb) = (nan(va.clone()), nan(vb.clone()));
    let gt = Expr::select(na.clone(), Expr::un(UnOp::Not, nb.clone()), Expr::select(nb.clone(), Expr::b(false), va.clone().gt(vb.clone())));
    let eq = Expr::select(na, nb.clone(), Expr::select(nb, Expr::b(false), va.eq_(vb)));
    Expr::bin(BinOp::Or, gt, eq.and(ia.lt(ib)))
}

fn moe(l: &mut Lowerer, node: &str, m: &Moe, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, gate, w1, w2) = (&ins[0], &ins[1], &ins[2], &ins[3]);
    let ([t, d], [_, e], [_, _, h]) = (
        <[usize; 2]>::try_from(x.shape.as_slice()).map_err(|_| internal(node, "moe expects x [T, D]"))?,
        <[usize; 2]>::try_from(gate.shape.as_slice()).map_err(|_| internal(node, "moe expects gate [D, E]"))?,
        <[usize; 3]>::try_from(w1.shape.as_slice()).map_err(|_| internal(node, "moe expects w1 [E, D, H]"))?,
    );
    let k = m.k;
    if k == 0 || k > e || gate.shape != [d, e] || w1.shape != [e, d, h] || w2.shape != [e, h, d] {
        return Err(internal(node, "moe shapes do not agree"));
    }
    let logits = l.temp(&format!("{node}.logits"), Scalar::F64, (t * e) as u64);
    let idx = l.temp(&format!("{node}.experts"), Scalar::I64, (t * k) as u64);
    let wts = l.temp(&format!("{node}.weights"), Scalar::F64, (t * k) as u64);
    let min_par = l.target.parallel_min_elems;
    let par = |work: usize| if t > 1 && work as u64 >= min_par { LoopKind::Parallel } else { LoopKind::Serial };
    let f64of = |e: Expr| Expr::cast(Scalar::F64, e);

    // Route: logits, top k, softmax weights.
    let mut kb = KernelBuilder::new(l.kernel_name(node, "route"));
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let gb = kb.buffer("gate", Scalar::F32, gate.len(), Access::Read);
    let lb = kb.buffer("logits", Scalar::F64, (t * e) as u64, Access::ReadWrite);
    let ib = kb.buffer("experts", Scalar::I64, (t * k) as u64, Access::Write);
    let wb = kb.buffer("weights", Scalar::F64, (t * k) as u64, Access::Write);
    kb.for_("tok", Expr::i(0), Expr::i(t as i64), par(t * d * e), |kb, tok| {
        kb.for_n("ex", e as u64, |kb, ex| {
            let acc = kb.var("z", Ty { scalar: Scalar::F64, lanes: 1 });
            kb.set(acc, f64of(Expr::f(0.0)));
            kb.for_n("i", d as u64, |kb, i| {
                let p = f64of(Expr::load(xb, tok.clone() * d as i64 + i.clone())) * f64of(Expr::load(gb, i * e as i64 + ex.clone()));
                kb.set(acc, Expr::var(acc) + p);
            });
            kb.store(lb, tok.clone() * e as i64 + ex, Expr::var(acc));
        });
        let pv = kb.var("pv", Ty { scalar: Scalar::F64, lanes: 1 });
        let pi = kb.var("pi", Ty::I64);
        let mx = kb.var("mx", Ty { scalar: Scalar::F64, lanes: 1 });
        kb.set(pv, f64of(Expr::f(0.0)));
        kb.set(pi, Expr::i(-1));
        kb.set(mx, f64of(Expr::f(0.0)));
        kb.for_n("j", k as u64, |kb, j| {
            let bv = kb.var("bv", Ty { scalar: Scalar::F64, lanes: 1 });
            let bi = kb.var("bi", Ty::I64);
            kb.set(bv, f64of(Expr::f(0.0)));
            kb.set(bi, Expr::i(-1));
            kb.for_n("ex", e as u64, |kb, ex| {
                let v = kb.let_("v", Expr::load(lb, tok.clone() * e as i64 + ex.clone()));
                let after = Expr::bin(BinOp::Or, j.clone().eq_(Expr::i(0)), before(Expr::var(pv), Expr::var(pi), v.clone(), ex.clone()));
                let better = Expr::bin(BinOp::Or, Expr::var(bi).lt(Expr::i(0)), before(v.clone(), ex.clone(), Expr::var(bv), Expr::var(bi)));
                kb.if_(after.and(better), |kb| {
                    kb.set(bv, v.clone());
                    kb.set(bi, ex.clone());
                });
            });
            kb.store(ib, tok.clone() * k as i64 + j.clone(), Expr::var(bi));
            kb.store(wb, tok.clone() * k as i64 + j.clone(), Expr::var(bv));
            // f64::max: a NaN operand gives the other.
            let first = j.clone().eq_(Expr::i(0));
            let m2 = Expr::select(Expr::cmp(CmpOp::Ne, Expr::var(mx), Expr::var(mx)), Expr::var(bv), Expr::bin(BinOp::Max, Expr::var(mx), Expr::var(bv)));
            let m2 = Expr::select(Expr::cmp(CmpOp::Ne, Expr::var(bv), Expr::var(bv)), Expr::var(mx), m2);
            kb.set(mx, Expr::select(first, Expr::var(bv), m2));
            kb.set(pv, Expr::var(bv));
            kb.set(pi, Expr::var(bi));
        });
        let sum = kb.var("sum", Ty { scalar: Scalar::F64, lanes: 1 });
        kb.set(sum, f64of(Expr::f(0.0)));
        kb.for_n("j", k as u64, |kb, j| {
            let at = tok.clone() * k as i64 + j;
            let z = Expr::cast(Scalar::F32, Expr::load(wb, at.clone()) - Expr::var(mx));
            let ev = kb.let_("ev", f64of(Expr::call(Intrinsic::Exp, vec![z])));
            kb.store(wb, at, ev.clone());
            kb.set(sum, Expr::var(sum) + ev);
        });
        kb.for_n("j", k as u64, |kb, j| {
            let at = tok.clone() * k as i64 + j;
            kb.store(wb, at.clone(), Expr::load(wb, at) / Expr::var(sum));
        });
    });
    // `wb` is read back above: declare it read-write.
    let mut kernel = kb.finish();
    kernel.buffers[wb.0 as usize].access = Access::ReadWrite;
    l.step(node, kernel, vec![x.buf, gate.buf, logits, idx, wts]);

    // Slots: drop tokens past an expert's capacity (expert index −1).
    if let Some(cap) = m.capacity(t, e) {
        let counts = l.temp(&format!("{node}.counts"), Scalar::I64, e as u64);
        let mut kb = KernelBuilder::new(l.kernel_name(node, "slots"));
        let ib = kb.buffer("experts", Scalar::I64, (t * k) as u64, Access::ReadWrite);
        let cb = kb.buffer("counts", Scalar::I64, e as u64, Access::ReadWrite);
        kb.for_n("ex", e as u64, |kb, ex| kb.store(cb, ex, Expr::i(0)));
        kb.for_n("p", (t * k) as u64, |kb, p| {
            let ex = kb.let_("ex", Expr::load(ib, p.clone()));
            let c = kb.let_("c", Expr::load(cb, ex.clone()));
            kb.if_else(
                c.clone().lt(Expr::i(cap as i64)),
                |kb| kb.store(cb, ex.clone(), c.clone() + Expr::i(1)),
                |kb| kb.store(ib, p.clone(), Expr::i(-1)),
            );
        });
        l.step(node, kb.finish(), vec![idx, counts]);
    }

    // Experts: per token, the weighted sum of its kept experts' FFNs.
    let hid = l.temp(&format!("{node}.hidden"), Scalar::F64, (t * h) as u64);
    let acc = l.temp(&format!("{node}.acc"), Scalar::F64, (t * d) as u64);
    let mut kb = KernelBuilder::new(l.kernel_name(node, "experts"));
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let w1b = kb.buffer("w1", Scalar::F32, w1.len(), Access::Read);
    let w2b = kb.buffer("w2", Scalar::F32, w2.len(), Access::Read);
    let ib = kb.buffer("experts", Scalar::I64, (t * k) as u64, Access::Read);
    let wb = kb.buffer("weights", Scalar::F64, (t * k) as u64, Access::Read);
    let hb = kb.buffer("hidden", Scalar::F64, (t * h) as u64, Access::ReadWrite);
    let ab = kb.buffer("acc", Scalar::F64, (t * d) as u64, Access::ReadWrite);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let act = m.activation;
    kb.for_("tok", Expr::i(0), Expr::i(t as i64), par(t * k * d * h * 2), |kb, tok| {
        kb.for_n("o", d as u64, |kb, o| kb.store(ab, tok.clone() * d as i64 + o, f64of(Expr::f(0.0))));
        kb.for_n("j", k as u64, |kb, j| {
            let p = kb.let_("p", tok.clone() * k as i64 + j);
            let ex = kb.let_("ex", Expr::load(ib, p.clone()));
            kb.if_(ex.clone().ge(Expr::i(0)), |kb| {
                kb.for_n("hh", h as u64, |kb, hh| {
                    let z = kb.var("z", Ty { scalar: Scalar::F64, lanes: 1 });
                    kb.set(z, f64of(Expr::f(0.0)));
                    kb.for_n("i", d as u64, |kb, i| {
                        let xv = f64of(Expr::load(xb, tok.clone() * d as i64 + i.clone()));
                        let wv = f64of(Expr::load(w1b, (ex.clone() * d as i64 + i) * h as i64 + hh.clone()));
                        kb.set(z, Expr::var(z) + xv * wv);
                    });
                    let a = unary_f32(kb, act, Expr::cast(Scalar::F32, Expr::var(z)), 1);
                    kb.store(hb, tok.clone() * h as i64 + hh, f64of(a));
                });
                let wt = kb.let_("wt", Expr::load(wb, p.clone()));
                kb.for_n("o", d as u64, |kb, o| {
                    let v = kb.var("v", Ty { scalar: Scalar::F64, lanes: 1 });
                    kb.set(v, f64of(Expr::f(0.0)));
                    kb.for_n("hh", h as u64, |kb, hh| {
                        let hv = Expr::load(hb, tok.clone() * h as i64 + hh.clone());
                        let wv = f64of(Expr::load(w2b, (ex.clone() * h as i64 + hh) * d as i64 + o.clone()));
                        kb.set(v, Expr::var(v) + hv * wv);
                    });
                    let at = tok.clone() * d as i64 + o;
                    kb.store(ab, at.clone(), Expr::load(ab, at) + wt.clone() * Expr::var(v));
                });
            });
        });
        kb.for_n("o", d as u64, |kb, o| {
            let at = tok.clone() * d as i64 + o;
            kb.store(y, at.clone(), Expr::cast(Scalar::F32, Expr::load(ab, at)));
        });
    });
    l.step(node, kb.finish(), vec![x.buf, w1.buf, w2.buf, idx, wts, hid, acc, out.buf]);
    Ok(true)
}
