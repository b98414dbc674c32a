//! The `loop` strategy of `moe`: each expert's kept tokens in a loop over that
//! expert's weights — `h = act(x·w1[e])` (⊙ `x·w3[e]` when gated), then
//! `y = h·w2[e]` — with the pairs sorted by expert as for `gather` but without
//! padding to panels, then each token's rows weighted and summed. Each touched
//! expert's weights are read once, in order; no packing, no padded rows, but no
//! register tiling either: the strategy for few tokens per expert (decode).
//!
//! On a CPU each parallel iteration is one expert and one chunk of output
//! columns: four rows of the weights at a time stream through L1 and are
//! multiplied into each of the expert's token rows, whose chunks stay in L1/L2.
//! On the GPU there is no such loop: `mod.rs` runs `gather` there, whose rows
//! are unpadded on the GPU already.

use super::grouped::{Sorted, sort};
use super::{Layer, Pairs, combine, par};
use crate::kernel::{Access, BinOp, Expr, KernelBuilder, LoopKind, Scalar};
use crate::lower::expr::unary_f32;
use crate::lower::{BufIdx, Lowerer};
use crate::Error;
use smelt_ir::UnaryOp;

pub(super) fn lower(l: &mut Lowerer, ly: &Layer, pairs: &Pairs) -> Result<(), Error> {
    let (d, h, node) = (ly.d, ly.h, ly.node);
    let s = sort(l, ly, pairs, 1);
    let rows = s.rows;
    let hs = l.temp(&format!("{node}.hidden"), Scalar::F32, (rows * h) as u64);
    let ys = l.temp(&format!("{node}.expert_out"), Scalar::F32, (rows * d) as u64);
    let gs = ly.w3.map(|_| l.temp(&format!("{node}.gate_in"), Scalar::F32, (rows * h) as u64));
    let up = |gate| Gemv { a: s.xs, k: d, n: h, gate };
    if let (Some(w3), Some(gs)) = (ly.w3, gs) {
        gemv(l, ly, &s, "up3", &up(None), w3, gs);
    }
    gemv(l, ly, &s, "up", &up(Some((ly.m.activation, gs))), ly.w1, hs);
    gemv(l, ly, &s, "down", &Gemv { a: hs, k: h, n: d, gate: None }, ly.w2, ys);
    combine(l, ly, pairs, s.pos, ys);
    Ok(())
}

/// Output columns per parallel iteration: 4 KiB of each token row, so that a few
/// rows' chunks stay in L1 while four weight rows stream through.
const CHUNK: usize = 1024;

/// Each expert's rows times its weights: `out[r] = f(a[r] · w[e])` for the rows
/// `r` of expert `e`; `a` is `[rows, k]`, `w` `[E, k, n]`.
struct Gemv {
    a: BufIdx,
    k: usize,
    n: usize,
    /// The epilogue: `act(z)`, times the same element of the given buffer (the
    /// gated form).
    gate: Option<(UnaryOp, Option<BufIdx>)>,
}

fn gemv(l: &mut Lowerer, ly: &Layer, s: &Sorted, what: &str, g: &Gemv, w: BufIdx, out: BufIdx) {
    let (rows, e) = (s.rows, ly.e);
    let (k, n) = (g.k, g.n);
    let len = |l: &Lowerer, b: BufIdx| l.prog.buffer(b).len;
    let mut kb = KernelBuilder::new(l.kernel_name(ly.node, what));
    let nb = kb.buffer("ends", Scalar::I64, e as u64, Access::Read);
    let ab = kb.buffer("a", Scalar::F32, len(l, g.a), Access::Read);
    let wb = kb.buffer("w", Scalar::F32, len(l, w), Access::Read);
    let ob = kb.buffer("out", Scalar::F32, (rows * n) as u64, Access::ReadWrite);
    let gate = g.gate.map(|(act, b)| (act, b.map(|b| kb.buffer("gate", Scalar::F32, len(l, b), Access::Read))));
    let vw = LoopKind::Vectorized(l.target.vector_width);
    let chunk = CHUNK.min(n);
    let chunks = n.div_ceil(chunk);
    let kind = par(l, e * chunks, rows * k * n);
    kb.for_("it", Expr::i(0), Expr::i((e * chunks) as i64), kind, |kb, it| {
        let ex = kb.let_("ex", it.clone() / Expr::i(chunks as i64));
        let c = kb.let_("c", it.clone() % Expr::i(chunks as i64));
        let prev = Expr::load(nb, Expr::bin(BinOp::Max, ex.clone() - Expr::i(1), Expr::i(0)));
        let lo = kb.let_("lo", Expr::select(ex.clone().gt(Expr::i(0)), prev, Expr::i(0)));
        let hi = kb.let_("hi", Expr::load(nb, ex.clone()));
        kb.if_(hi.clone().gt(lo.clone()), |kb| {
            let j0 = kb.let_("j0", c * chunk as i64);
            let cols = kb.let_("cols", Expr::bin(BinOp::Min, Expr::i(chunk as i64), Expr::i(n as i64) - j0.clone()));
            let wbase = kb.let_("wbase", ex * (k * n) as i64 + j0.clone());
            let each_row = |kb: &mut KernelBuilder, f: &dyn Fn(&mut KernelBuilder, Expr, Expr)| {
                kb.for_("r", lo.clone(), hi.clone(), LoopKind::Serial, |kb, r| {
                    let obase = kb.let_("obase", r.clone() * n as i64 + j0.clone());
                    f(kb, r, obase);
                });
            };
            each_row(kb, &|kb, _, obase| kb.for_("j", Expr::i(0), cols.clone(), vw, |kb, j| kb.store(ob, obase + j, Expr::f(0.0))));
            let step = |kb: &mut KernelBuilder, i0: Expr, q: usize| {
                let wr: Vec<Expr> = (0..q).map(|u| kb.let_("wrow", wbase.clone() + (i0.clone() + u as i64) * n as i64)).collect();
                each_row(kb, &|kb, r, obase| {
                    let xs: Vec<Expr> = (0..q).map(|u| kb.let_("xi", Expr::load(ab, r.clone() * k as i64 + i0.clone() + u as i64))).collect();
                    kb.for_("j", Expr::i(0), cols.clone(), vw, |kb, j| {
                        let at = obase.clone() + j.clone();
                        let mut sum = Expr::load(ob, at.clone());
                        for (x, w0) in xs.iter().zip(&wr) {
                            sum = Expr::fma(x.clone(), Expr::load(wb, w0.clone() + j.clone()), sum);
                        }
                        kb.store(ob, at, sum);
                    });
                });
            };
            let main = (k / 4 * 4) as i64;
            kb.for_step("i", Expr::i(0), Expr::i(main), 4, LoopKind::Serial, |kb, i| step(kb, i, 4));
            for i in main..k as i64 {
                step(kb, Expr::i(i), 1);
            }
            if let Some((act, other)) = gate {
                each_row(kb, &|kb, _, obase| {
                    kb.for_("j", Expr::i(0), cols.clone(), vw, |kb, j| {
                        let at = kb.let_("at", obase.clone() + j);
                        let a = unary_f32(kb, act, Expr::load(ob, at.clone()), 1);
                        let y = match other {
                            Some(gb) => a * Expr::load(gb, at.clone()),
                            None => a,
                        };
                        kb.store(ob, at, y);
                    });
                });
            }
        });
    });
    let mut args = vec![s.ends, g.a, w, out];
    args.extend(g.gate.and_then(|(_, b)| b));
    l.step(ly.node, kb.finish(), args);
}
