//! The `loop` strategy of `moe`: per chosen (token, expert) pair, matrix-vector
//! products with that expert's weights — `h = act(x·w1[e])` (⊙ `x·w3[e]` when
//! gated), then `y = h·w2[e]` — and the weighted sum of each token's rows. No
//! sorting, padding or packing; each pair streams its expert's weights again,
//! which is what the cost model charges it.
//!
//! On a CPU each parallel iteration is one pair and one block of `4·w` output
//! columns, accumulated in four `w`-lane registers over the whole depth (the
//! weights' rows are read as they lie, one contiguous block per row); the
//! columns past the last whole block are one scalar loop. On the GPU each
//! invocation is one output element.

use super::{Layer, Pairs, Rows, combine, par};
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::lower::expr::unary_f32;
use crate::lower::{BufIdx, Lowerer};
use crate::Error;
use smelt_ir::UnaryOp;

pub(super) fn lower(l: &mut Lowerer, ly: &Layer, pairs: &Pairs) -> Result<(), Error> {
    let (t, d, h, node) = (ly.t, ly.d, ly.h, ly.node);
    let np = t * pairs.per;
    let hs = l.temp(&format!("{node}.hidden"), Scalar::F32, (np * h) as u64);
    let ys = l.temp(&format!("{node}.expert_out"), Scalar::F32, (np * d) as u64);
    let up = |gate: Option<(UnaryOp, Option<BufIdx>)>| Gemv { a: ly.x, a_per_pair: false, k: d, n: h, gate };
    let gated = ly.w3.map(|w3| {
        let gs = l.temp(&format!("{node}.gate_in"), Scalar::F32, (np * h) as u64);
        gemv(l, ly, pairs, "up3", &up(None), w3, gs);
        gs
    });
    gemv(l, ly, pairs, "up", &up(Some((ly.m.activation, gated))), ly.w1, hs);
    gemv(l, ly, pairs, "down", &Gemv { a: hs, a_per_pair: true, k: h, n: d, gate: None }, ly.w2, ys);
    combine(l, ly, pairs, Rows::ByPair(pairs.experts), ys);
    Ok(())
}

/// One matrix-vector product per pair: `out[p] = f(a[row(p)] · w[experts[p]])`,
/// `w` of `[E, k, n]`; `row(p)` is the pair's token, or `p` itself.
struct Gemv {
    a: BufIdx,
    a_per_pair: bool,
    k: usize,
    n: usize,
    /// The epilogue: `act(z)`, times the same element of the given buffer (the
    /// gated form).
    gate: Option<(UnaryOp, Option<BufIdx>)>,
}

fn gemv(l: &mut Lowerer, ly: &Layer, pairs: &Pairs, what: &str, g: &Gemv, w: BufIdx, out: BufIdx) {
    let np = ly.t * pairs.per;
    let (k, n, per) = (g.k, g.n, pairs.per as i64);
    let len = |l: &Lowerer, b: BufIdx| l.prog.buffer(b).len;
    let mut kb = KernelBuilder::new(l.kernel_name(ly.node, what));
    let eb = kb.buffer("experts", Scalar::I64, np as u64, Access::Read);
    let ab = kb.buffer("a", Scalar::F32, len(l, g.a), Access::Read);
    let wb = kb.buffer("w", Scalar::F32, len(l, w), Access::Read);
    let ob = kb.buffer("out", Scalar::F32, (np * n) as u64, Access::Write);
    let gate = g.gate.map(|(act, b)| (act, b.map(|b| kb.buffer("gate", Scalar::F32, len(l, b), Access::Read))));
    // The epilogue on `lanes` lanes of row `p` from column `j`.
    let finish = |kb: &mut KernelBuilder, z: Expr, at: Expr, lanes: u32| -> Expr {
        match gate {
            None => z,
            Some((act, other)) => {
                let a = unary_f32(kb, act, z, lanes);
                match other {
                    None => a,
                    Some(gb) if lanes == 1 => a * Expr::load(gb, at),
                    Some(gb) => a * Expr::loadv(gb, at, lanes),
                }
            }
        }
    };
    let a_row = move |p: &Expr| if g.a_per_pair { p.clone() } else { p.clone() / Expr::i(per) };
    if l.target.is_gpu() {
        kb.for_("pj", Expr::i(0), Expr::i((np * n) as i64), LoopKind::Parallel, |kb, pj| {
            let p = kb.let_("p", pj.clone() / Expr::i(n as i64));
            let j = kb.let_("j", pj.clone() % Expr::i(n as i64));
            let ex = kb.let_("ex", Expr::load(eb, p.clone()));
            kb.if_(ex.clone().ge(Expr::i(0)), |kb| {
                let arow = kb.let_("arow", a_row(&p) * k as i64);
                let wbase = kb.let_("wbase", ex * (k * n) as i64 + j);
                let acc = kb.var("acc", Ty::F32);
                kb.set(acc, Expr::f(0.0));
                kb.for_n("i", k as u64, |kb, i| {
                    let v = Expr::load(ab, arow.clone() + i.clone()) * Expr::load(wb, wbase.clone() + i * n as i64);
                    kb.set(acc, Expr::var(acc) + v);
                });
                let y = finish(kb, Expr::var(acc), pj.clone(), 1);
                kb.store(ob, pj, y);
            });
        });
    } else {
        let lanes = l.target.vector_width;
        let bw = 4 * lanes as usize;
        let blocks = n.div_ceil(bw);
        let full = n / bw;
        let accs: Vec<_> = (0..4).map(|v| kb.var(&format!("acc{v}"), Ty::vec(Scalar::F32, lanes))).collect();
        let kind = par(l, np * blocks, np * k * n);
        kb.for_("it", Expr::i(0), Expr::i((np * blocks) as i64), kind, |kb, it| {
            let p = kb.let_("p", it.clone() / Expr::i(blocks as i64));
            let jb = kb.let_("jb", it.clone() % Expr::i(blocks as i64));
            let ex = kb.let_("ex", Expr::load(eb, p.clone()));
            kb.if_(ex.clone().ge(Expr::i(0)), |kb| {
                let arow = kb.let_("arow", a_row(&p) * k as i64);
                let j0 = kb.let_("j0", jb.clone() * bw as i64);
                let wbase = kb.let_("wbase", ex * (k * n) as i64 + j0.clone());
                let obase = kb.let_("obase", p.clone() * n as i64 + j0.clone());
                let whole = |kb: &mut KernelBuilder| {
                    for &a in &accs {
                        kb.set(a, Expr::splat(Expr::f(0.0), lanes));
                    }
                    kb.for_n("i", k as u64, |kb, i| {
                        let xi = kb.let_("xi", Expr::splat(Expr::load(ab, arow.clone() + i.clone()), lanes));
                        let row = kb.let_("row", wbase.clone() + i * n as i64);
                        for (v, &a) in accs.iter().enumerate() {
                            let wv = Expr::loadv(wb, row.clone() + (v * lanes as usize) as i64, lanes);
                            kb.set(a, Expr::fma(xi.clone(), wv, Expr::var(a)));
                        }
                    });
                    for (v, &a) in accs.iter().enumerate() {
                        let at = kb.let_("at", obase.clone() + (v * lanes as usize) as i64);
                        let y = finish(kb, Expr::var(a), at.clone(), lanes);
                        kb.store(ob, at, y);
                    }
                };
                let edge = |kb: &mut KernelBuilder| {
                    kb.for_("j", j0.clone(), Expr::i(n as i64), LoopKind::Serial, |kb, j| {
                        let acc = kb.var("acc", Ty::F32);
                        kb.set(acc, Expr::f(0.0));
                        let col = kb.let_("col", wbase.clone() - j0.clone() + j.clone());
                        kb.for_n("i", k as u64, |kb, i| {
                            let v = Expr::load(ab, arow.clone() + i.clone()) * Expr::load(wb, col.clone() + i * n as i64);
                            kb.set(acc, Expr::var(acc) + v);
                        });
                        let at = kb.let_("at", p.clone() * n as i64 + j);
                        let y = finish(kb, Expr::var(acc), at.clone(), 1);
                        kb.store(ob, at, y);
                    });
                };
                crate::lower::util::by_panel(kb, &jb, full, blocks, |kb, guarded| if guarded { edge(kb) } else { whole(kb) });
            });
        });
    }
    let mut args = vec![pairs.experts, g.a, w, out];
    args.extend(g.gate.and_then(|(_, b)| b));
    l.step(ly.node, kb.finish(), args);
}
