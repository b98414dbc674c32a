//! Lowering of the whole-layer `moe` (`y = moe(x, logits, w1, w2[, w3])`) on every
//! backend, in three strategies that compute the same layer:
//!
//! - **routing** (`route`, parallel per token): the top `k` logits with the
//!   reference's order — larger first, ties to the lower expert, NaN above
//!   everything — and their softmax weights (over the chosen logits, or over all
//!   of them without `normalize`), its `exp` in f32; with a capacity, `slots`
//!   (serial) drops the pairs past an expert's capacity in token order.
//! - **gather** (`grouped.rs`): the chosen (token, expert) pairs sorted by expert
//!   into row panels, one grouped GEMM per weight matrix over them (each panel
//!   multiplies its expert's weights; panels past the last are skipped), then
//!   each token's rows weighted and summed;
//! - **dense**: the same with every expert on every token, the unchosen pairs
//!   weighted 0;
//! - **loop** (`pairs.rs`): the pairs sorted by expert without padding, each
//!   expert's rows multiplied by its weights in a loop (no register tiling).
//!
//! The strategy is the target's (`--schedule moe=`), else the layer's, else the
//! cheapest by [`MoeShape::cost`] at this binding's token count: plans are
//! per binding, so decode and prefill each get their own.

mod grouped;
mod pairs;

use super::util::Operand;
use super::{BufIdx, Lowerer, internal};
use crate::kernel::{Access, BinOp, CmpOp, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::ops::{Moe, MoeShape, MoeStrategy};
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Moe(_)) && ins.iter().all(|t| t.dtype == DType::F32) && outs.iter().all(|t| t.dtype == DType::F32)
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let Op::Moe(m) = op else { return Ok(false) };
    moe(l, node, m, ins, &outs[0])?;
    Ok(true)
}

/// A layer's sizes and buffers, as the strategies see them.
struct Layer<'a> {
    node: &'a str,
    m: &'a Moe,
    t: usize,
    d: usize,
    h: usize,
    e: usize,
    x: BufIdx,
    w1: BufIdx,
    w2: BufIdx,
    w3: Option<BufIdx>,
    out: BufIdx,
}

/// The chosen (token, expert) pairs: `experts[t·per + j]` (−1: dropped) and their
/// f64 weights, `per` pairs per token.
struct Pairs {
    experts: BufIdx,
    weights: BufIdx,
    per: usize,
    /// `i64[pairs]`, 0 for a pair computed but not chosen (dense): `combine`
    /// leaves it out, so that an unchosen expert's NaN or infinity does not
    /// reach the output as `0·NaN`.
    chosen: Option<BufIdx>,
}

/// The strategy this layer runs with at this binding.
pub fn strategy(l: &Lowerer, m: &Moe, shape: &MoeShape) -> MoeStrategy {
    match (l.target.moe, m.strategy) {
        (MoeStrategy::Auto, MoeStrategy::Auto) => shape.choose(&l.target.moe_machine()),
        (MoeStrategy::Auto, s) | (s, _) => s,
    }
}

fn moe(l: &mut Lowerer, node: &str, m: &Moe, ins: &[Operand], out: &Operand) -> Result<(), Error> {
    let (x, logits, w1, w2) = (&ins[0], &ins[1], &ins[2], &ins[3]);
    let w3 = ins.get(4);
    let ([t, d], [_, e], [_, _, h]) = (
        <[usize; 2]>::try_from(x.shape.as_slice()).map_err(|_| internal(node, "moe expects x [T, D]"))?,
        <[usize; 2]>::try_from(logits.shape.as_slice()).map_err(|_| internal(node, "moe expects logits [T, E]"))?,
        <[usize; 3]>::try_from(w1.shape.as_slice()).map_err(|_| internal(node, "moe expects w1 [E, D, H]"))?,
    );
    let k = m.k;
    if k == 0
        || k > e
        || logits.shape != [t, e]
        || w1.shape != [e, d, h]
        || w2.shape != [e, h, d]
        || w3.is_some_and(|w3| w3.shape != [e, d, h])
    {
        return Err(internal(node, "moe shapes do not agree"));
    }
    let layer = Layer { node, m, t, d, h, e, x: x.buf, w1: w1.buf, w2: w2.buf, w3: w3.map(|w| w.buf), out: out.buf };
    let shape = MoeShape { tokens: t, d_model: d, d_ff: h, experts: e, k, gated: w3.is_some() };
    let chosen = route(l, &layer, logits.buf);
    match strategy(l, m, &shape) {
        // On the GPU, gather's rows are unpadded: it is the loop there.
        MoeStrategy::Loop if !l.target.is_gpu() => pairs::lower(l, &layer, &chosen),
        MoeStrategy::Dense => {
            let all = everyone(l, &layer, &chosen);
            grouped::lower(l, &layer, &all)
        }
        MoeStrategy::Gather | MoeStrategy::Loop | MoeStrategy::Auto => grouped::lower(l, &layer, &chosen),
    }
}

fn par(l: &Lowerer, n: usize, work: usize) -> LoopKind {
    if n > 1 && work as u64 >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial }
}

/// Whether `(va, ia)` ranks before `(vb, ib)`: larger value first (NaN largest),
/// equal values by lower index.
fn before(va: Expr, ia: Expr, vb: Expr, ib: Expr) -> Expr {
    let nan = |e: Expr| Expr::cmp(CmpOp::Ne, e.clone(), e);
    let (na, nb) = (nan(va.clone()), nan(vb.clone()));
    let gt = Expr::select(na.clone(), Expr::un(crate::kernel::UnOp::Not, nb.clone()), Expr::select(nb.clone(), Expr::b(false), va.clone().gt(vb.clone())));
    let eq = Expr::select(na, nb.clone(), Expr::select(nb, Expr::b(false), va.eq_(vb)));
    Expr::bin(BinOp::Or, gt, eq.and(ia.lt(ib)))
}

/// `f64::max` as the reference folds it: a NaN operand gives the other.
fn fmax(a: Expr, b: Expr) -> Expr {
    let nan = |e: &Expr| Expr::cmp(CmpOp::Ne, e.clone(), e.clone());
    Expr::select(nan(&a), b.clone(), Expr::select(nan(&b), a.clone(), Expr::bin(BinOp::Max, a, b)))
}

/// The routing kernel (and the capacity kernel): each token's `k` experts and
/// weights.
fn route(l: &mut Lowerer, ly: &Layer, logits: BufIdx) -> Pairs {
    let (t, e, k, node) = (ly.t, ly.e, ly.m.k, ly.node);
    let idx = l.temp(&format!("{node}.experts"), Scalar::I64, (t * k) as u64);
    let wts = l.temp(&format!("{node}.weights"), Scalar::F64, (t * k) as u64);
    let f64of = |e: Expr| Expr::cast(Scalar::F64, e);
    let f64v = Ty { scalar: Scalar::F64, lanes: 1 };
    let normalize = ly.m.normalize;
    let kind = par(l, t, t * e * 8);
    let mut kb = KernelBuilder::new(l.kernel_name(node, "route"));
    let lb = kb.buffer("logits", Scalar::F32, (t * e) as u64, Access::Read);
    let ib = kb.buffer("experts", Scalar::I64, (t * k) as u64, Access::Write);
    let wb = kb.buffer("weights", Scalar::F64, (t * k) as u64, Access::ReadWrite);
    kb.for_("tok", Expr::i(0), Expr::i(t as i64), kind, |kb, tok| {
        let logit = |ex: Expr| f64of(Expr::load(lb, tok.clone() * e as i64 + ex));
        let (pv, pi, mx) = (kb.var("pv", f64v), kb.var("pi", Ty::I64), kb.var("mx", f64v));
        kb.set(pv, f64of(Expr::f(0.0)));
        kb.set(pi, Expr::i(-1));
        kb.set(mx, f64of(Expr::f(f32::NEG_INFINITY)));
        kb.for_n("j", k as u64, |kb, j| {
            let (bv, bi) = (kb.var("bv", f64v), kb.var("bi", Ty::I64));
            kb.set(bv, f64of(Expr::f(0.0)));
            kb.set(bi, Expr::i(-1));
            kb.for_n("ex", e as u64, |kb, ex| {
                let v = kb.let_("v", logit(ex.clone()));
                let after = Expr::bin(BinOp::Or, j.clone().eq_(Expr::i(0)), before(Expr::var(pv), Expr::var(pi), v.clone(), ex.clone()));
                let better = Expr::bin(BinOp::Or, Expr::var(bi).lt(Expr::i(0)), before(v.clone(), ex.clone(), Expr::var(bv), Expr::var(bi)));
                kb.if_(after.and(better), |kb| {
                    kb.set(bv, v.clone());
                    kb.set(bi, ex.clone());
                });
            });
            kb.store(ib, tok.clone() * k as i64 + j.clone(), Expr::var(bi));
            kb.store(wb, tok.clone() * k as i64 + j.clone(), Expr::var(bv));
            if normalize {
                kb.set(mx, fmax(Expr::var(mx), Expr::var(bv)));
            }
            kb.set(pv, Expr::var(bv));
            kb.set(pi, Expr::var(bi));
        });
        // The softmax's max and sum: over the chosen logits, or over all of them.
        let sum = kb.var("sum", f64v);
        kb.set(sum, f64of(Expr::f(0.0)));
        let ex32 = |v: Expr, mx: Expr| f64of(Expr::call(Intrinsic::Exp, vec![Expr::cast(Scalar::F32, v - mx)]));
        if normalize {
            kb.for_n("j", k as u64, |kb, j| {
                let ev = ex32(Expr::load(wb, tok.clone() * k as i64 + j), Expr::var(mx));
                kb.set(sum, Expr::var(sum) + ev);
            });
        } else {
            kb.for_n("ex", e as u64, |kb, ex| kb.set(mx, fmax(Expr::var(mx), logit(ex))));
            kb.for_n("ex", e as u64, |kb, ex| {
                let ev = ex32(logit(ex), Expr::var(mx));
                kb.set(sum, Expr::var(sum) + ev);
            });
        }
        kb.for_n("j", k as u64, |kb, j| {
            let at = tok.clone() * k as i64 + j;
            let ev = ex32(Expr::load(wb, at.clone()), Expr::var(mx));
            kb.store(wb, at, ev / Expr::var(sum));
        });
    });
    l.step(node, kb.finish(), vec![logits, idx, wts]);

    // Slots: drop the pairs past an expert's capacity (expert index −1).
    if let Some(cap) = ly.m.capacity(t, e) {
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
    Pairs { experts: idx, weights: wts, per: k, chosen: None }
}

/// The dense strategy's pairs: every expert for every token, weighted by its
/// routing weight if it was chosen (and kept), else 0.
fn everyone(l: &mut Lowerer, ly: &Layer, chosen: &Pairs) -> Pairs {
    let (t, e, k, node) = (ly.t, ly.e, chosen.per, ly.node);
    let idx = l.temp(&format!("{node}.all_experts"), Scalar::I64, (t * e) as u64);
    let wts = l.temp(&format!("{node}.all_weights"), Scalar::F64, (t * e) as u64);
    let keep = l.temp(&format!("{node}.chosen"), Scalar::I64, (t * e) as u64);
    let kind = par(l, t, t * e * 4);
    let mut kb = KernelBuilder::new(l.kernel_name(node, "dense_pairs"));
    let ci = kb.buffer("experts", Scalar::I64, (t * k) as u64, Access::Read);
    let cw = kb.buffer("weights", Scalar::F64, (t * k) as u64, Access::Read);
    let ai = kb.buffer("all_experts", Scalar::I64, (t * e) as u64, Access::Write);
    let aw = kb.buffer("all_weights", Scalar::F64, (t * e) as u64, Access::ReadWrite);
    let ak = kb.buffer("chosen", Scalar::I64, (t * e) as u64, Access::ReadWrite);
    kb.for_("tok", Expr::i(0), Expr::i(t as i64), kind, |kb, tok| {
        kb.for_n("ex", e as u64, |kb, ex| {
            let at = kb.let_("at", tok.clone() * e as i64 + ex.clone());
            kb.store(ai, at.clone(), ex);
            kb.store(aw, at.clone(), Expr::cast(Scalar::F64, Expr::f(0.0)));
            kb.store(ak, at, Expr::i(0));
        });
        kb.for_n("j", k as u64, |kb, j| {
            let p = kb.let_("p", tok.clone() * k as i64 + j);
            let ex = kb.let_("ex", Expr::load(ci, p.clone()));
            kb.if_(ex.clone().ge(Expr::i(0)), |kb| {
                let at = kb.let_("at", tok.clone() * e as i64 + ex);
                kb.store(aw, at.clone(), Expr::load(cw, p));
                kb.store(ak, at, Expr::i(1));
            });
        });
    });
    l.step(node, kb.finish(), vec![chosen.experts, chosen.weights, idx, wts, keep]);
    Pairs { experts: idx, weights: wts, per: e, chosen: Some(keep) }
}

/// `out[t] = Σ_j weights[t·per + j] · ys[pos[t·per + j]]` over the kept pairs
/// (`pos` ≥ 0), in f32 (the sum of at most `per` terms).
fn combine(l: &mut Lowerer, ly: &Layer, pairs: &Pairs, pos: BufIdx, ys: BufIdx) {
    let (t, d, per, node) = (ly.t, ly.d, pairs.per, ly.node);
    let ys_len = l.prog.buffer(ys).len;
    let mut kb = KernelBuilder::new(l.kernel_name(node, "combine"));
    let rv = kb.buffer("rows", Scalar::I64, (t * per) as u64, Access::Read);
    let cv = pairs.chosen.map(|_| kb.buffer("chosen", Scalar::I64, (t * per) as u64, Access::Read));
    // The pair's row, or −1 when it is dropped or not chosen.
    let row = move |p: Expr| match cv {
        Some(cv) => Expr::select(Expr::load(cv, p.clone()).gt(Expr::i(0)), Expr::load(rv, p), Expr::i(-1)),
        None => Expr::load(rv, p),
    };
    let wb = kb.buffer("weights", Scalar::F64, (t * per) as u64, Access::Read);
    let yb = kb.buffer("ys", Scalar::F32, ys_len, Access::Read);
    let ob = kb.buffer("out", Scalar::F32, (t * d) as u64, Access::ReadWrite);
    if l.target.is_gpu() {
        // One invocation per output element.
        kb.for_("to", Expr::i(0), Expr::i((t * d) as i64), LoopKind::Parallel, |kb, to| {
            let tok = kb.let_("tok", to.clone() / Expr::i(d as i64));
            let o = kb.let_("o", to.clone() % Expr::i(d as i64));
            let acc = kb.var("acc", Ty::F32);
            kb.set(acc, Expr::f(0.0));
            kb.for_n("j", per as u64, |kb, j| {
                let p = kb.let_("p", tok.clone() * per as i64 + j);
                let r = kb.let_("r", row(p.clone()));
                kb.if_(r.clone().ge(Expr::i(0)), |kb| {
                    let w = Expr::cast(Scalar::F32, Expr::load(wb, p));
                    kb.set(acc, Expr::var(acc) + w * Expr::load(yb, r * d as i64 + o.clone()));
                });
            });
            kb.store(ob, to, Expr::var(acc));
        });
    } else {
        let vw = LoopKind::Vectorized(l.target.vector_width);
        let kind = par(l, t, t * d * per);
        kb.for_("tok", Expr::i(0), Expr::i(t as i64), kind, |kb, tok| {
            let base = kb.let_("base", tok.clone() * d as i64);
            kb.for_("o", Expr::i(0), Expr::i(d as i64), vw, |kb, o| kb.store(ob, base.clone() + o, Expr::f(0.0)));
            kb.for_n("j", per as u64, |kb, j| {
                let p = kb.let_("p", tok.clone() * per as i64 + j);
                let r = kb.let_("r", row(p.clone()));
                kb.if_(r.clone().ge(Expr::i(0)), |kb| {
                    let w = kb.let_("w", Expr::cast(Scalar::F32, Expr::load(wb, p)));
                    let src = kb.let_("src", r * d as i64);
                    kb.for_("o", Expr::i(0), Expr::i(d as i64), vw, |kb, o| {
                        let at = base.clone() + o.clone();
                        kb.store(ob, at.clone(), Expr::load(ob, at) + w.clone() * Expr::load(yb, src.clone() + o));
                    });
                });
            });
        });
    }
    let mut args = vec![pos];
    args.extend(pairs.chosen);
    args.extend([pairs.weights, ys, ly.out]);
    l.step(node, kb.finish(), args);
}
