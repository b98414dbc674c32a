//! The `gather` and `dense` strategies of `moe`: the kept (token, expert) pairs
//! sorted by expert into row panels, and one grouped GEMM per weight matrix.
//!
//! - `sort` (serial): counts per expert; each expert's rows start on a panel
//!   boundary (`MR` rows on a CPU, 1 on the GPU and for the `loop` strategy);
//!   `group[panel]` is the panel's expert (−1 past the last); `perm[row]` the
//!   row's token (−1: padding); `pos[pair]` the pair's row (−1: dropped);
//!   `cursor[e]` ends where expert `e`'s rows end.
//! - `gather`: `xs[row] = x[perm[row]]`, zeros for padding.
//! - the products: on a CPU the packed GEMM of `gemm.rs` with
//!   [`OperandB::Grouped`] (each panel multiplies its expert's packed weights,
//!   which are packed at compile time when constant; unused panels are skipped,
//!   so an expert no token chose is never read); on the GPU one invocation per
//!   output element.
//! - `combine` (`mod.rs`): each token's rows, weighted.
//!
//! The rows are bounded by `pairs + min(E, pairs)·(MR − 1)`, so the buffers are
//! sized at compile time while the split between experts is decided per run.

use super::{Layer, Pairs, combine, par};
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::lower::expr::region;
use crate::lower::gemm::{DirectA, Extra, GemmSpec, OperandA, OperandB, PackSrc, gemm, pack};
use crate::lower::{BufIdx, Lowerer};
use crate::Error;
use smelt_ir::{BinaryOp, Expr as IrExpr};

pub(super) fn lower(l: &mut Lowerer, ly: &Layer, pairs: &Pairs) -> Result<(), Error> {
    let (d, h, node) = (ly.d, ly.h, ly.node);
    let panel = if l.target.is_gpu() { 1 } else { l.target.mr };
    let s = sort(l, ly, pairs, panel);
    let (rows, xs) = (s.rows, s.xs);
    // The products.
    let hs = l.temp(&format!("{node}.hidden"), Scalar::F32, (rows * h) as u64);
    let act = IrExpr::unary(ly.m.activation, IrExpr::input(0));
    let g = Grouped { node, rows, panel, group: s.group };
    match ly.w3 {
        Some(w3) => {
            let gs = l.temp(&format!("{node}.gate_in"), Scalar::F32, (rows * h) as u64);
            g.product(l, "up3", xs, d, w3, h, gs, None, IrExpr::input(0))?;
            g.product(l, "up", xs, d, ly.w1, h, hs, Some(gs), IrExpr::binary(BinaryOp::Mul, act, IrExpr::input(1)))?;
        }
        None => g.product(l, "up", xs, d, ly.w1, h, hs, None, act)?,
    }
    let ys = l.temp(&format!("{node}.expert_out"), Scalar::F32, (rows * d) as u64);
    g.product(l, "down", hs, h, ly.w2, d, ys, None, IrExpr::input(0))?;
    combine(l, ly, pairs, s.pos, ys);
    Ok(())
}

/// The pairs sorted by expert (see the module doc).
pub(super) struct Sorted {
    /// Rows (kept pairs and padding), sized for the worst case.
    pub rows: usize,
    pub pos: BufIdx,
    /// `i64[rows / panel]`: each panel's expert, −1 past the last.
    pub group: BufIdx,
    /// `i64[E]`: where each expert's rows end.
    pub ends: BufIdx,
    /// `f32[rows, D]`: the rows' tokens.
    pub xs: BufIdx,
}

/// Sorts the pairs by expert, each expert's rows starting on a multiple of
/// `panel`, and gathers their tokens.
pub(super) fn sort(l: &mut Lowerer, ly: &Layer, pairs: &Pairs, panel: usize) -> Sorted {
    let (t, d, e, node) = (ly.t, ly.d, ly.e, ly.node);
    let np = t * pairs.per;
    let rows = (np + e.min(np) * (panel - 1)).div_ceil(panel) * panel;
    let panels = rows / panel;
    let perm = l.temp(&format!("{node}.perm"), Scalar::I64, rows as u64);
    let pos = l.temp(&format!("{node}.pos"), Scalar::I64, np as u64);
    let group = l.temp(&format!("{node}.group"), Scalar::I64, panels as u64);
    let cursor = l.temp(&format!("{node}.cursor"), Scalar::I64, e as u64);

    // Sort.
    let mut kb = KernelBuilder::new(l.kernel_name(node, "sort"));
    let eb = kb.buffer("experts", Scalar::I64, np as u64, Access::Read);
    let pb = kb.buffer("perm", Scalar::I64, rows as u64, Access::Write);
    let qb = kb.buffer("pos", Scalar::I64, np as u64, Access::Write);
    let gb = kb.buffer("group", Scalar::I64, panels as u64, Access::Write);
    let cb = kb.buffer("cursor", Scalar::I64, e as u64, Access::ReadWrite);
    let per = pairs.per as i64;
    kb.for_n("ex", e as u64, |kb, ex| kb.store(cb, ex, Expr::i(0)));
    kb.for_n("p", np as u64, |kb, p| {
        let ex = kb.let_("ex", Expr::load(eb, p));
        kb.if_(ex.clone().ge(Expr::i(0)), |kb| kb.store(cb, ex.clone(), Expr::load(cb, ex) + 1));
    });
    kb.for_n("g", panels as u64, |kb, g| kb.store(gb, g, Expr::i(-1)));
    kb.for_n("r", rows as u64, |kb, r| kb.store(pb, r, Expr::i(-1)));
    let off = kb.var("off", Ty::I64);
    kb.set(off, Expr::i(0));
    kb.for_n("ex", e as u64, |kb, ex| {
        let c = kb.let_("c", Expr::load(cb, ex.clone()));
        let first = kb.let_("first", Expr::var(off) / Expr::i(panel as i64));
        let n = kb.let_("n", (c + (panel as i64 - 1)) / Expr::i(panel as i64));
        kb.for_("q", Expr::i(0), n.clone(), LoopKind::Serial, |kb, q| kb.store(gb, first.clone() + q, ex.clone()));
        kb.store(cb, ex, Expr::var(off));
        kb.set(off, Expr::var(off) + n * panel as i64);
    });
    kb.for_n("p", np as u64, |kb, p| {
        let ex = kb.let_("ex", Expr::load(eb, p.clone()));
        kb.if_else(
            ex.clone().ge(Expr::i(0)),
            |kb| {
                let r = kb.let_("r", Expr::load(cb, ex.clone()));
                kb.store(pb, r.clone(), p.clone() / Expr::i(per));
                kb.store(qb, p.clone(), r.clone());
                kb.store(cb, ex, r + 1);
            },
            |kb| kb.store(qb, p.clone(), Expr::i(-1)),
        );
    });
    l.step(node, kb.finish(), vec![pairs.experts, perm, pos, group, cursor]);

    // Gather the rows.
    let xs = l.temp(&format!("{node}.rows"), Scalar::F32, (rows * d) as u64);
    let mut kb = KernelBuilder::new(l.kernel_name(node, "gather"));
    let pb = kb.buffer("perm", Scalar::I64, rows as u64, Access::Read);
    let xb = kb.buffer("x", Scalar::F32, (t * d) as u64, Access::Read);
    let sb = kb.buffer("rows", Scalar::F32, (rows * d) as u64, Access::Write);
    if l.target.is_gpu() {
        kb.for_("ri", Expr::i(0), Expr::i((rows * d) as i64), LoopKind::Parallel, |kb, ri| {
            let src = kb.let_("src", Expr::load(pb, ri.clone() / Expr::i(d as i64)));
            let at = Expr::select(src.clone().ge(Expr::i(0)), src.clone() * d as i64 + ri.clone() % Expr::i(d as i64), Expr::i(0));
            kb.store(sb, ri, Expr::select(src.ge(Expr::i(0)), Expr::load(xb, at), Expr::f(0.0)));
        });
    } else {
        let vw = LoopKind::Vectorized(l.target.vector_width);
        kb.for_("r", Expr::i(0), Expr::i(rows as i64), par(l, rows, rows * d), |kb, r| {
            let src = kb.let_("src", Expr::load(pb, r.clone()));
            let dst = kb.let_("dst", r * d as i64);
            kb.if_else(
                src.clone().ge(Expr::i(0)),
                |kb| {
                    let from = kb.let_("from", src * d as i64);
                    kb.for_("i", Expr::i(0), Expr::i(d as i64), vw, |kb, i| {
                        kb.store(sb, dst.clone() + i.clone(), Expr::load(xb, from.clone() + i));
                    });
                },
                |kb| kb.for_("i", Expr::i(0), Expr::i(d as i64), vw, |kb, i| kb.store(sb, dst.clone() + i, Expr::f(0.0))),
            );
        });
    }
    l.step(node, kb.finish(), vec![perm, ly.x, xs]);
    Sorted { rows, pos, group, ends: cursor, xs }
}

/// The sorted rows' layout.
struct Grouped<'a> {
    node: &'a str,
    rows: usize,
    panel: usize,
    group: BufIdx,
}

impl Grouped<'_> {
    /// `c[r] = epilogue(a[r] · w[group(r)], extra[r])` for the rows of used panels:
    /// `a` is `[rows, k]`, `w` `[E, k, n]`, `c` and the extra `[rows, n]`.
    #[allow(clippy::too_many_arguments)]
    fn product(
        &self,
        l: &mut Lowerer,
        what: &str,
        a: BufIdx,
        k: usize,
        w: BufIdx,
        n: usize,
        c: BufIdx,
        extra: Option<BufIdx>,
        epilogue: IrExpr,
    ) -> Result<(), Error> {
        let (rows, node) = (self.rows, self.node);
        let name = format!("{node}.{what}");
        if l.target.is_gpu() {
            let len = |l: &Lowerer, b: BufIdx| l.prog.buffer(b).len;
            let mut kb = KernelBuilder::new(l.kernel_name(node, what));
            let gb = kb.buffer("group", Scalar::I64, len(l, self.group), Access::Read);
            let ab = kb.buffer("a", Scalar::F32, (rows * k) as u64, Access::Read);
            let wb = kb.buffer("w", Scalar::F32, len(l, w), Access::Read);
            let cb = kb.buffer("c", Scalar::F32, (rows * n) as u64, Access::Write);
            let xb = extra.map(|_| kb.buffer("extra", Scalar::F32, (rows * n) as u64, Access::Read));
            let panel = self.panel as i64;
            kb.for_("rj", Expr::i(0), Expr::i((rows * n) as i64), LoopKind::Parallel, |kb, rj| {
                let r = kb.let_("r", rj.clone() / Expr::i(n as i64));
                let j = kb.let_("j", rj.clone() % Expr::i(n as i64));
                let g = kb.let_("g", Expr::load(gb, r.clone() / Expr::i(panel)));
                kb.if_(g.clone().ge(Expr::i(0)), |kb| {
                    let arow = kb.let_("arow", r * k as i64);
                    let wbase = kb.let_("wbase", g * (k * n) as i64 + j);
                    let acc = kb.var("acc", Ty::F32);
                    kb.set(acc, Expr::f(0.0));
                    kb.for_n("i", k as u64, |kb, i| {
                        let v = Expr::load(ab, arow.clone() + i.clone()) * Expr::load(wb, wbase.clone() + i * n as i64);
                        kb.set(acc, Expr::var(acc) + v);
                    });
                    let mut ins = vec![Expr::var(acc)];
                    ins.extend(xb.map(|xb| Expr::load(xb, rj.clone())));
                    let y = region(kb, &epilogue, &ins, 1);
                    kb.store(cb, rj, y);
                });
            });
            let mut args = vec![self.group, a, w, c];
            args.extend(extra);
            l.step(node, kb.finish(), args);
            return Ok(());
        }
        let t = l.target.clone();
        let experts = (l.prog.buffer(w).len as usize) / (k * n);
        let sb = PackSrc { buf: w, batches: experts, bstride: (k * n) as i64, count: n, depth: k, s_lane: 1, s_depth: n as i64 };
        let pb = pack(l, &name, "w", &sb, t.nr)?;
        let stride = (n.div_ceil(t.nr) * k * t.nr) as i64;
        let a = if t.direct_a {
            OperandA::InPlace(DirectA { a, batch: vec![], rs: k as i64 })
        } else {
            let sa = PackSrc { buf: a, batches: 1, bstride: 0, count: rows, depth: k, s_lane: k as i64, s_depth: 1 };
            OperandA::Packed { pa: pack(l, &name, "a", &sa, t.mr)?, batch: vec![] }
        };
        let extras = extra.map(|buf| Extra { buf, off: 0, batch: vec![], rs: n as i64, cs: 1 }).into_iter().collect();
        let spec = GemmSpec {
            batch: vec![],
            m: rows,
            n,
            k,
            a,
            b: OperandB::Grouped { pb, table: self.group, stride },
            c,
            extras,
            epilogue,
        };
        gemm(l, &name, &spec)
    }
}
