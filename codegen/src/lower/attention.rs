//! Lowering of multi-head `attention`: per (batch, head, query) the scores
//! `q·kᵀ·scale (+ mask) (−inf above the causal diagonal)` into a scratch row, a
//! max-subtracted softmax over it, then `Σ_j p_j·v_j` vectorized over the head's
//! value columns. The parallel loop is over (batch, head).

use super::util::{RowOp, broadcast_strides, dot_row, reduce_row, Operand};
use super::{Lowerer, internal};
use crate::kernel::{Access, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Attention(_)) && ins.iter().all(|t| t.dtype == DType::F32) && outs.iter().all(|t| t.dtype == DType::F32)
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let Op::Attention(a) = op else { return Ok(false) };
    let (q, k, v, out) = (&ins[0], &ins[1], &ins[2], &outs[0]);
    let ([b, tq, e], [_, tk, _], [_, _, ev]) = (
        <[usize; 3]>::try_from(q.shape.as_slice()).map_err(|_| internal(node, "attention q"))?,
        <[usize; 3]>::try_from(k.shape.as_slice()).map_err(|_| internal(node, "attention k"))?,
        <[usize; 3]>::try_from(v.shape.as_slice()).map_err(|_| internal(node, "attention v"))?,
    );
    let h = a.heads.max(1);
    let (dh, dv) = (e / h, ev / h);
    let scale = a.scale.unwrap_or(1.0 / (dh as f32).sqrt());
    if out.is_empty() {
        return Ok(true);
    }
    if tk == 0 {
        return Err(internal(node, "attention over no keys"));
    }
    let w = l.target.vector_width;
    let scratch = l.temp(&format!("{node}.scores"), Scalar::F32, (b * h * tq * tk).max(1) as u64);
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let qb = kb.buffer("q", Scalar::F32, q.len(), Access::Read);
    let kbf = kb.buffer("k", Scalar::F32, k.len(), Access::Read);
    let vb = kb.buffer("v", Scalar::F32, v.len(), Access::Read);
    let mask = ins.get(3).map(|m| (kb.buffer("mask", Scalar::F32, m.len(), Access::Read), broadcast_strides(&m.shape, &[b, h, tq, tk])));
    let yb = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let sb = kb.buffer("scores", Scalar::F32, (b * h * tq * tk).max(1) as u64, Access::ReadWrite);
    let work = (b * h * tq * tk * (dh + dv)) as u64;
    let kind = if work >= l.target.parallel_min_elems && b * h > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let offset = tk as i64 - tq as i64;
    let causal = a.causal;
    kb.for_("bh", Expr::i(0), Expr::i((b * h) as i64), kind, |kb, bh| {
        let bi = kb.let_("bi", bh.clone() / Expr::i(h as i64));
        let hi = kb.let_("hi", bh.clone() % Expr::i(h as i64));
        kb.for_n("i", tq as u64, |kb, i| {
            let row = kb.let_("row", (bh.clone() * tq as i64 + i.clone()) * tk as i64);
            let qbase = kb.let_("qb", (bi.clone() * tq as i64 + i.clone()) * e as i64 + hi.clone() * dh as i64);
            kb.for_n("j", tk as u64, |kb, j| {
                let kbase = kb.let_("kb", (bi.clone() * tk as i64 + j.clone()) * e as i64 + hi.clone() * dh as i64);
                let d = dot_row(kb, qb, &qbase, kbf, &kbase, dh, w);
                let mut s = d * Expr::f(scale);
                if let Some((mb, st)) = &mask {
                    let at = bi.clone() * st[0] + hi.clone() * st[1] + i.clone() * st[2] + j.clone() * st[3];
                    s = s + Expr::load(*mb, at);
                }
                if causal {
                    s = Expr::select(j.clone().gt(i.clone() + offset), Expr::f(f32::NEG_INFINITY), s);
                }
                kb.store(sb, row.clone() + j, s);
            });
            let mx = reduce_row(kb, sb, &row, tk, w, RowOp::Max, &|_, x, _| x);
            let mx = kb.let_("max", mx);
            let sum = kb.var("sum", Ty::F32);
            kb.set(sum, Expr::f(0.0));
            kb.for_n("j", tk as u64, |kb, j| {
                let p = kb.let_("p", Expr::call(Intrinsic::Exp, vec![Expr::load(sb, row.clone() + j.clone()) - mx.clone()]));
                kb.store(sb, row.clone() + j, p.clone());
                kb.set(sum, Expr::var(sum) + p);
            });
            let inv = kb.let_("inv", Expr::f(1.0) / Expr::var(sum));
            let obase = kb.let_("ob", (bi.clone() * tq as i64 + i.clone()) * ev as i64 + hi.clone() * dv as i64);
            kb.for_("c", Expr::i(0), Expr::i(dv as i64), LoopKind::Vectorized(w), |kb, c| {
                let acc = kb.var("acc", Ty::F32);
                kb.set(acc, Expr::f(0.0));
                kb.for_n("j", tk as u64, |kb, j| {
                    let vv = Expr::load(vb, (bi.clone() * tk as i64 + j.clone()) * ev as i64 + hi.clone() * dv as i64 + c.clone());
                    kb.set(acc, Expr::fma(Expr::load(sb, row.clone() + j), vv, Expr::var(acc)));
                });
                kb.store(yb, obase.clone() + c, Expr::var(acc) * inv.clone());
            });
        });
    });
    let mut args = vec![q.buf, k.buf, v.buf];
    if let Some(m) = ins.get(3) {
        args.push(m.buf);
    }
    args.push(out.buf);
    args.push(scratch);
    l.step(node, kb.finish(), args);
    Ok(true)
}
