//! `attention` for the GPU target: one workgroup per query row (of every batch
//! and head), its invocations sharing the row's work through `workgroup` and
//! `reduce` loops (`coop.rs`):
//!
//! 1. one score per key and invocation, `scale·(q·k) + mask` (−inf past the
//!    causal diagonal), into a scratch row;
//! 2. the row max (a tree reduction), `p = exp(s − max)` stored back, `Σp`;
//! 3. one output column per invocation, `Σ_j p_j·v_j / Σp`.
//!
//! The CPU form (`attention.rs`) walks a whole head in one iteration of its
//! parallel loop, in register tiles: on a GPU that is one invocation per head.
//! The arithmetic and its order per element are the CPU form's (an `fma` chain
//! over the head dimension, scale, then mask), so both meet the same tolerance.

use super::coop::{each, reduce};
use super::util::{Operand, broadcast_strides};
use super::Lowerer;
use crate::kernel::{Access, BinOp, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;

/// The sizes of one attention op: `q [b, tq, e]`, `k [b, tk, e]`, `v [b, tk, ev]`.
pub struct Dims {
    pub b: usize,
    pub tq: usize,
    pub tk: usize,
    pub e: usize,
    pub ev: usize,
    pub heads: usize,
    pub scale: f32,
    pub causal: bool,
}

pub fn lower(l: &mut Lowerer, node: &str, d: &Dims, ins: &[Operand], out: &Operand) -> Result<(), Error> {
    let Dims { b, tq, tk, e, ev, heads: h, scale, causal } = *d;
    let (dh, dv) = (e / h, ev / h);
    let rows = b * h * tq;
    let scores = l.temp(&format!("{node}.scores"), Scalar::F32, (rows * tk) as u64);
    let mut kb = KernelBuilder::new(l.kernel_name(node, ""));
    let (q, k, v) = (&ins[0], &ins[1], &ins[2]);
    let qb = kb.buffer("q", Scalar::F32, q.len(), Access::Read);
    let kbf = kb.buffer("k", Scalar::F32, k.len(), Access::Read);
    let vb = kb.buffer("v", Scalar::F32, v.len(), Access::Read);
    let mask = ins.get(3).map(|m| (kb.buffer("mask", Scalar::F32, m.len(), Access::Read), broadcast_strides(&m.shape, &[b, h, tq, tk])));
    let yb = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let sb = kb.buffer("scores", Scalar::F32, (rows * tk) as u64, Access::ReadWrite);
    let acc = kb.var("acc", Ty::F32);
    kb.for_("r", Expr::i(0), Expr::i(rows as i64), LoopKind::Parallel, |kb, r| {
        let qi = kb.let_("qi", r.clone() % Expr::i(tq as i64));
        let bh = kb.let_("bh", r.clone() / Expr::i(tq as i64));
        let hi = kb.let_("hi", bh.clone() % Expr::i(h as i64));
        let bi = kb.let_("bi", bh / Expr::i(h as i64));
        let srow = kb.let_("srow", r * tk as i64);
        let qbase = kb.let_("qbase", (bi.clone() * tq as i64 + qi.clone()) * e as i64 + hi.clone() * dh as i64);
        // Columns from `from` on are past the diagonal (offset Tk − Tq): −inf.
        let from = causal.then(|| {
            let f = Expr::bin(BinOp::Max, Expr::bin(BinOp::Min, qi.clone() + (tk as i64 - tq as i64 + 1), Expr::i(tk as i64)), Expr::i(0));
            kb.let_("masked", f)
        });
        let m0 = mask.as_ref().map(|(_, st)| kb.let_("m0", bi.clone() * st[0] + hi.clone() * st[1] + qi.clone() * st[2]));
        each(kb, tk, |kb, j| {
            let kbase = kb.let_("kbase", (bi.clone() * tk as i64 + j.clone()) * e as i64 + hi.clone() * dh as i64);
            kb.set(acc, Expr::f(0.0));
            kb.for_n("d", dh as u64, |kb, dd| {
                let x = Expr::load(qb, qbase.clone() + dd.clone());
                kb.set(acc, Expr::fma(x, Expr::load(kbf, kbase.clone() + dd), Expr::var(acc)));
            });
            let mut s = Expr::var(acc) * Expr::f(scale);
            if let (Some((mb, st)), Some(m0)) = (&mask, &m0) {
                s = s + Expr::load(*mb, m0.clone() + j.clone() * st[3]);
            }
            if let Some(from) = &from {
                s = Expr::select(j.clone().ge(from.clone()), Expr::f(f32::NEG_INFINITY), s);
            }
            kb.store(sb, srow.clone() + j, s);
        });
        let mx = reduce(kb, "max", Ty::F32, BinOp::Max, Expr::f(f32::NEG_INFINITY), tk, |_, j| Expr::load(sb, srow.clone() + j));
        let mx = kb.let_("mx", mx);
        each(kb, tk, |kb, j| {
            let p = Expr::call(Intrinsic::Exp, vec![Expr::load(sb, srow.clone() + j.clone()) - mx.clone()]);
            kb.store(sb, srow.clone() + j, p);
        });
        let sum = reduce(kb, "sum", Ty::F32, BinOp::Add, Expr::f(0.0), tk, |_, j| Expr::load(sb, srow.clone() + j));
        let inv = kb.let_("inv", Expr::f(1.0) / sum);
        let orow = kb.let_("orow", (bi.clone() * tq as i64 + qi.clone()) * ev as i64 + hi.clone() * dv as i64);
        each(kb, dv, |kb, c| {
            let vcol = kb.let_("vcol", bi.clone() * (tk * ev) as i64 + hi.clone() * dv as i64 + c.clone());
            kb.set(acc, Expr::f(0.0));
            kb.for_n("j", tk as u64, |kb, j| {
                let p = Expr::load(sb, srow.clone() + j.clone());
                kb.set(acc, Expr::fma(p, Expr::load(vb, vcol.clone() + j * ev as i64), Expr::var(acc)));
            });
            kb.store(yb, orow.clone() + c, Expr::var(acc) * inv.clone());
        });
    });
    let mut args = vec![q.buf, k.buf, v.buf];
    if let Some(m) = ins.get(3) {
        args.push(m.buf);
    }
    args.push(out.buf);
    args.push(scores);
    l.step(node, kb.finish(), args);
    Ok(())
}
