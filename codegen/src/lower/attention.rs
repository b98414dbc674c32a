//! Lowering of multi-head `attention` as register-tiled matrix products. The
//! parallel loop is over (batch, head); each iteration first copies its head of K
//! transposed into a scratch `Kᵀ` (`dh × Tkp`, `Tkp` = Tk rounded up to the tile
//! width, zero columns past Tk), then walks the queries in blocks of `MR` rows:
//!
//! 1. scores: an `MR × NR` tile of `q·Kᵀ` per column block — a broadcast query
//!    element times a vector of `Kᵀ`, as the GEMM micro-kernel — scaled on the way
//!    out into a scratch block `S` of `MR × Tkp` (it stays in L1);
//! 2. per row: the mask added and the causal columns set to −inf, the row max, then
//!    `p = exp(s − max)` stored back and summed, in vectors;
//! 3. `P·V`: `MR × NR` tiles of `Σ_j p_j·v_j` (a broadcast `p` times a vector of V's
//!    row), each row scaled by `1/Σp` as it is stored; leftover columns in single
//!    vectors, then in scalars.
//!
//! Row blocks past the last full one, and the tiles of the leftover columns, are
//! the same code with fewer rows or lanes (all sizes are known when lowering).

use super::util::{Operand, RowOp, broadcast_strides, reduce_row};
use super::{Lowerer, internal};
use crate::kernel::{Access, BinOp, BufId, Expr, HOp, Intrinsic, KernelBuilder, LoopKind, Scalar, Ty, VarId};
use crate::Error;
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Attention(_)) && ins.iter().all(|t| t.dtype == DType::F32) && outs.iter().all(|t| t.dtype == DType::F32)
}

/// `x` broadcast to `lanes` lanes (itself when `lanes` is 1).
fn splat(x: Expr, lanes: u32) -> Expr {
    if lanes == 1 { x } else { Expr::splat(x, lanes) }
}

/// A `lanes`-lane load (a scalar load when `lanes` is 1).
fn load(buf: BufId, at: Expr, lanes: u32) -> Expr {
    if lanes == 1 { Expr::load(buf, at) } else { Expr::loadv(buf, at, lanes) }
}

/// The sizes and buffers of one attention kernel.
struct Cx {
    q: BufId,
    k: BufId,
    v: BufId,
    out: BufId,
    kt: BufId,
    s: BufId,
    mask: Option<(BufId, Vec<i64>)>,
    tq: usize,
    tk: usize,
    tkp: usize,
    e: usize,
    ev: usize,
    dh: usize,
    dv: usize,
    scale: f32,
    causal: bool,
    nr: usize,
    w: u32,
    /// Accumulators: `mr` rows of `nr / w` vectors.
    acc: Vec<Vec<VarId>>,
    /// Accumulators of the scalar column tail: `mr` rows.
    acc1: Vec<VarId>,
    /// `1/Σp` per row of the block.
    inv: Vec<VarId>,
}

/// Per (batch, head) offsets.
struct Head {
    bi: Expr,
    hi: Expr,
    kt_b: Expr,
    s_b: Expr,
}

impl Cx {
    /// Accumulator `(r, v)` for tiles of `lanes` lanes.
    fn acc(&self, r: usize, v: usize, lanes: u32) -> VarId {
        if lanes == 1 { self.acc1[r] } else { self.acc[r][v] }
    }

    /// The block of `rows` query rows from `i0`: scores, softmax, `P·V`.
    fn block(&self, kb: &mut KernelBuilder, hd: &Head, i0: &Expr, rows: usize) {
        let (w, nv) = (self.w, self.nr / self.w as usize);
        let (e, ev, tk, tkp) = (self.e as i64, self.ev as i64, self.tk as i64, self.tkp as i64);
        let qrow: Vec<Expr> =
            (0..rows).map(|r| kb.let_("qr", (hd.bi.clone() * self.tq as i64 + i0.clone() + r as i64) * e + hd.hi.clone() * self.dh as i64)).collect();
        // 1. Scores, NR columns at a time.
        kb.for_step("j0", Expr::i(0), Expr::i(tkp), self.nr as u64, LoopKind::Serial, |kb, j0| {
            for r in 0..rows {
                for v in 0..nv {
                    kb.set(self.acc[r][v], splat(Expr::f(0.0), w));
                }
            }
            kb.for_n("d", self.dh as u64, |kb, d| {
                let kt0 = kb.let_("ktd", hd.kt_b.clone() + d.clone() * tkp + j0.clone());
                let bvec: Vec<Expr> = (0..nv).map(|v| kb.let_("kv", Expr::loadv(self.kt, kt0.clone() + (v * w as usize) as i64, w))).collect();
                for (r, qr) in qrow.iter().enumerate() {
                    let a = kb.let_("qa", Expr::splat(Expr::load(self.q, qr.clone() + d.clone()), w));
                    for (v, b) in bvec.iter().enumerate() {
                        let c = self.acc[r][v];
                        kb.set(c, Expr::fma(a.clone(), b.clone(), Expr::var(c)));
                    }
                }
            });
            for r in 0..rows {
                for v in 0..nv {
                    let at = hd.s_b.clone() + (r as i64) * tkp + j0.clone() + (v * w as usize) as i64;
                    kb.store(self.s, at, Expr::var(self.acc[r][v]) * Expr::splat(Expr::f(self.scale), w));
                }
            }
        });
        // 2. Softmax of each row (unnormalized; 1/Σp kept for the output).
        for r in 0..rows {
            let row = kb.let_("srow", hd.s_b.clone() + (r as i64) * tkp);
            let i = i0.clone() + r as i64;
            if let Some((mb, st)) = &self.mask {
                let (mb, st) = (*mb, st.clone());
                let m0 = kb.let_("m0", hd.bi.clone() * st[0] + hd.hi.clone() * st[1] + i.clone() * st[2]);
                kb.for_("j", Expr::i(0), Expr::i(tk), LoopKind::Vectorized(w), |kb, j| {
                    let x = Expr::load(self.s, row.clone() + j.clone()) + Expr::load(mb, m0.clone() + j.clone() * st[3]);
                    kb.store(self.s, row.clone() + j, x);
                });
            }
            if self.causal {
                // Columns past the diagonal (offset Tk − Tq) are −inf.
                let from = Expr::bin(BinOp::Max, Expr::bin(BinOp::Min, i.clone() + (tk - self.tq as i64 + 1), Expr::i(tk)), Expr::i(0));
                let from = kb.let_("masked", from);
                kb.for_("j", from, Expr::i(tk), LoopKind::Vectorized(w), |kb, j| {
                    kb.store(self.s, row.clone() + j, Expr::f(f32::NEG_INFINITY));
                });
            }
            let mx = reduce_row(kb, self.s, &row, self.tk, w, RowOp::Max, &|_, x, _| x);
            let mx = kb.let_("max", mx);
            let main = self.tk / w as usize * w as usize;
            let sum = kb.var("sum", Ty::F32);
            if main > 0 {
                let sv = kb.var("sumv", Ty::vec(Scalar::F32, w));
                kb.set(sv, Expr::splat(Expr::f(0.0), w));
                let mxv = kb.let_("maxv", Expr::splat(mx.clone(), w));
                kb.for_step("j", Expr::i(0), Expr::i(main as i64), w as u64, LoopKind::Serial, |kb, j| {
                    let p = kb.let_("p", Expr::call(Intrinsic::Exp, vec![Expr::loadv(self.s, row.clone() + j.clone(), w) - mxv.clone()]));
                    kb.store(self.s, row.clone() + j, p.clone());
                    kb.set(sv, Expr::var(sv) + p);
                });
                kb.set(sum, Expr::hreduce(HOp::Add, Expr::var(sv)));
            } else {
                kb.set(sum, Expr::f(0.0));
            }
            if main < self.tk {
                kb.for_("j", Expr::i(main as i64), Expr::i(tk), LoopKind::Serial, |kb, j| {
                    let p = kb.let_("p", Expr::call(Intrinsic::Exp, vec![Expr::load(self.s, row.clone() + j.clone()) - mx.clone()]));
                    kb.store(self.s, row.clone() + j, p.clone());
                    kb.set(sum, Expr::var(sum) + p);
                });
            }
            kb.set(self.inv[r], Expr::f(1.0) / Expr::var(sum));
        }
        // 3. P·V: NR columns at a time, then single vectors, then scalars.
        let orow: Vec<Expr> =
            (0..rows).map(|r| kb.let_("or", (hd.bi.clone() * self.tq as i64 + i0.clone() + r as i64) * ev + hd.hi.clone() * self.dv as i64)).collect();
        let full = self.dv / self.nr * self.nr;
        if full > 0 {
            kb.for_step("c0", Expr::i(0), Expr::i(full as i64), self.nr as u64, LoopKind::Serial, |kb, c0| {
                self.pv_tile(kb, hd, &orow, &c0, rows, nv, w);
            });
        }
        let mut c = full;
        while c + w as usize <= self.dv {
            self.pv_tile(kb, hd, &orow, &Expr::i(c as i64), rows, 1, w);
            c += w as usize;
        }
        while c < self.dv {
            self.pv_tile(kb, hd, &orow, &Expr::i(c as i64), rows, 1, 1);
            c += 1;
        }
    }

    /// One tile of `P·V`: `rows` rows, `nv` vectors of `lanes` columns from `c0`.
    #[allow(clippy::too_many_arguments)]
    fn pv_tile(&self, kb: &mut KernelBuilder, hd: &Head, orow: &[Expr], c0: &Expr, rows: usize, nv: usize, lanes: u32) {
        let (ev, tkp) = (self.ev as i64, self.tkp as i64);
        for r in 0..rows {
            for v in 0..nv {
                kb.set(self.acc(r, v, lanes), splat(Expr::f(0.0), lanes));
            }
        }
        let v0 = kb.let_("v0", hd.bi.clone() * (self.tk as i64 * ev) + hd.hi.clone() * self.dv as i64 + c0.clone());
        kb.for_n("j", self.tk as u64, |kb, j| {
            let vj = kb.let_("vj", v0.clone() + j.clone() * ev);
            let vvec: Vec<Expr> = (0..nv).map(|v| kb.let_("vv", load(self.v, vj.clone() + (v * lanes as usize) as i64, lanes))).collect();
            for r in 0..rows {
                let p = kb.let_("pa", splat(Expr::load(self.s, hd.s_b.clone() + (r as i64) * tkp + j.clone()), lanes));
                for (v, b) in vvec.iter().enumerate() {
                    let c = self.acc(r, v, lanes);
                    kb.set(c, Expr::fma(p.clone(), b.clone(), Expr::var(c)));
                }
            }
        });
        for (r, or) in orow.iter().enumerate() {
            for v in 0..nv {
                let at = or.clone() + c0.clone() + (v * lanes as usize) as i64;
                kb.store(self.out, at, Expr::var(self.acc(r, v, lanes)) * splat(Expr::var(self.inv[r]), lanes));
            }
        }
    }
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
    if l.target.is_gpu() {
        let d = super::attention_gpu::Dims { b, tq, tk, e, ev, heads: h, scale, causal: a.causal };
        super::attention_gpu::lower(l, node, &d, ins, out)?;
        return Ok(true);
    }
    let t = l.target.clone();
    let w = t.vector_width;
    let (mr, nr) = (t.own_tile().0.max(1), t.own_tile().1.max(w as usize));
    let tkp = tk.div_ceil(nr) * nr;
    let bh = b * h;
    let kt_len = (bh * dh * tkp).max(1) as u64;
    let s_len = (bh * mr * tkp) as u64;
    let kt_scratch = l.temp(&format!("{node}.kt"), Scalar::F32, kt_len);
    let s_scratch = l.temp(&format!("{node}.scores"), Scalar::F32, s_len);
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let qb = kb.buffer("q", Scalar::F32, q.len(), Access::Read);
    let kbf = kb.buffer("k", Scalar::F32, k.len(), Access::Read);
    let vb = kb.buffer("v", Scalar::F32, v.len(), Access::Read);
    let mask = ins.get(3).map(|m| (kb.buffer("mask", Scalar::F32, m.len(), Access::Read), broadcast_strides(&m.shape, &[b, h, tq, tk])));
    let yb = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let ktb = kb.buffer("kt", Scalar::F32, kt_len, Access::ReadWrite);
    let sb = kb.buffer("scores", Scalar::F32, s_len, Access::ReadWrite);
    let nv = nr / w as usize;
    let acc = (0..mr).map(|r| (0..nv).map(|v| kb.var(&format!("c{r}{v}"), Ty::vec(Scalar::F32, w))).collect()).collect();
    let acc1 = (0..mr).map(|r| kb.var(&format!("t{r}"), Ty::F32)).collect();
    let inv = (0..mr).map(|r| kb.var(&format!("inv{r}"), Ty::F32)).collect();
    let cx = Cx {
        q: qb,
        k: kbf,
        v: vb,
        out: yb,
        kt: ktb,
        s: sb,
        mask,
        tq,
        tk,
        tkp,
        e,
        ev,
        dh,
        dv,
        scale,
        causal: a.causal,
        nr,
        w,
        acc,
        acc1,
        inv,
    };
    let work = (bh * tq * tk * (dh + dv)) as u64;
    let kind = if work >= t.parallel_min_elems && bh > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    kb.for_("bh", Expr::i(0), Expr::i(bh as i64), kind, |kb, bhv| {
        let bi = kb.let_("bi", bhv.clone() / Expr::i(h as i64));
        let hi = kb.let_("hi", bhv.clone() % Expr::i(h as i64));
        let kt_b = kb.let_("kt_b", bhv.clone() * (dh * tkp) as i64);
        let s_b = kb.let_("s_b", bhv * (mr * tkp) as i64);
        // Kᵀ of this head, zero past Tk.
        kb.for_n("j", tk as u64, |kb, j| {
            let k0 = kb.let_("k0", (bi.clone() * tk as i64 + j.clone()) * e as i64 + hi.clone() * dh as i64);
            kb.for_n("d", dh as u64, |kb, d| {
                kb.store(cx.kt, kt_b.clone() + d.clone() * tkp as i64 + j.clone(), Expr::load(cx.k, k0.clone() + d));
            });
        });
        if tkp > tk {
            kb.for_n("d", dh as u64, |kb, d| {
                kb.for_("j", Expr::i(tk as i64), Expr::i(tkp as i64), LoopKind::Unrolled, |kb, j| {
                    kb.store(cx.kt, kt_b.clone() + d.clone() * tkp as i64 + j, Expr::f(0.0));
                });
            });
        }
        let hd = Head { bi, hi, kt_b, s_b };
        let blocks = tq / mr;
        if blocks > 0 {
            kb.for_step("i0", Expr::i(0), Expr::i((blocks * mr) as i64), mr as u64, LoopKind::Serial, |kb, i0| cx.block(kb, &hd, &i0, mr));
        }
        if tq % mr > 0 {
            cx.block(kb, &hd, &Expr::i((blocks * mr) as i64), tq % mr);
        }
    });
    let mut args = vec![q.buf, k.buf, v.buf];
    if let Some(m) = ins.get(3) {
        args.push(m.buf);
    }
    args.push(out.buf);
    args.push(kt_scratch);
    args.push(s_scratch);
    l.step(node, kb.finish(), args);
    Ok(true)
}
