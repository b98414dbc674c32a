//! Convolutions with the output positions as the GEMM's rows: per (image, group),
//! `outᵀ[p, m] = Σ_k X_col[p, k]·W[m, k]`, an `MR × NR` register tile being `MR`
//! output positions by `NR` output channels.
//!
//! `X_col` is never built, nor packed: row `p` of a tile reads the input in place
//! at `x[base[p] + koff(k)]` — `base[p]` the corner of position `p`'s window (a
//! constant table, strides included), `koff(k) = c·pitch + kz·dd·Hp·Wp +
//! ki·dh·Wp + kj·dw` the tap's offset, which the depth loop (channels, then the
//! taps unrolled) computes as it goes — and broadcasts it; the weights are packed
//! into `NR`-channel panels (at compile time when they are params) and loaded as
//! vectors. With padding, the input is first copied into zero-bordered planes
//! (`conv::pad_input`). Every tile row is a real output position, whatever the
//! stride or the row length (the column-oriented in-place GEMM of `conv/mod.rs` also
//! computes the padded positions between rows, and strided convs there need an
//! im2col). The tile is written transposed into the `[n, m, positions]` output
//! through a per-block scratch tile, with the epilogue (bias, residual,
//! activation): no crop pass.

use super::{Direct, Geo, pad_input};
use crate::lower::Lowerer;
use crate::lower::expr::region;
use crate::lower::gemm::{PackSrc, pack};
use crate::lower::util::Operand;
use crate::kernel::{Access, BinOp, BufId, Expr, KernelBuilder, LoopKind, Scalar, Ty, VarId};
use crate::Error;
use smelt_ir::Expr as IrExpr;

/// Whether the conv runs on this path: the target asks for it, each group has
/// at least a whole panel of output channels (fewer would waste lanes), and the
/// conv is 2-d or 3-d, with a window larger than 1×1 unless the target asks for
/// those too (`Target::conv_rows_pointwise`). 1-d convs keep the column path: on WaveNet (dilated
/// 1-d convs of 64 channels over 4096 positions) this path was slower, 50.9–51.3
/// against 47.6–48.6 ms CPU time at 1 thread, and took 16.9 s to compile with
/// LLVM against 1.8 s.
pub fn applies(l: &Lowerer, g: &Geo) -> bool {
    l.target.conv_rows
        && (l.target.conv_rows_pointwise || g.kd * g.kh * g.kw > 1)
        && g.m / g.groups >= l.target.nr
        && g.od * g.oh * g.ow > 0
        && (g.d > 1 || g.h > 1)
}

/// The input as the kernel reads it: the input itself when there is no
/// padding, else zero-bordered planes of the extent the windows reach.
fn layout(g: &Geo) -> Direct {
    if (g.pd, g.ph, g.pw) == (0, 0, 0) {
        return Direct { dp: g.d, hp: g.h, wp: g.w, pitch: g.d * g.h * g.w, copy: false };
    }
    let reach = |o: usize, s: usize, k: usize, d: usize| (o - 1) * s + (k - 1) * d + 1;
    let (dp, hp, wp) = (reach(g.od, g.sd, g.kd, g.dd), reach(g.oh, g.sh, g.kh, g.dh), reach(g.ow, g.sw, g.kw, g.dw));
    // An odd number of cache lines per plane, so that channels do not share L1 sets.
    let lines = (dp * hp * wp).div_ceil(16);
    Direct { dp, hp, wp, pitch: 16 * (lines + 1 - lines % 2), copy: true }
}

pub fn lower(l: &mut Lowerer, node: &str, g: &Geo, e: &IrExpr, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let t = l.target.clone();
    let (nr, w) = (t.nr, t.vector_width as usize);
    let nv = nr / w;
    let (x, wt) = (&ins[0], &ins[1]);
    let (cg, mg) = (g.c / g.groups, g.m / g.groups);
    let (kd, kh, kw) = (g.kd, g.kh, g.kw);
    let taps = kd * kh * kw;
    let depth = cg * taps;
    let p = g.od * g.oh * g.ow;
    // Rows per tile: the target's MR, or one or two fewer when that costs less; a
    // tile of fewer rows is ~4% slower per row (measured), and the last tile has
    // only the rows left but costs at least three (one or two rows wait on the
    // FMA latency): 361 positions run as 45 tiles of 8 and one of 1, 49 as 7
    // tiles of 7 (6 of 8 and one of 1 was slower).
    let cost = |r: usize| (p - p % r + if p.is_multiple_of(r) { 0 } else { (p % r).max(3) }) * (100 + 4 * (t.mr - r));
    let mr = (t.mr.saturating_sub(2).max(1)..=t.mr).rev().min_by_key(|&r| cost(r)).unwrap_or(t.mr);
    let (full_mr, nfull, rem) = (mr, p / mr, p % mr);
    let d = layout(g);
    let xp = if d.copy { pad_input(l, node, x, g, &d, nr) } else { x.buf };
    let (hp, wp, pitch) = (d.hp, d.wp, d.pitch);
    // The weights in panels of NR output channels: `[group][panel][k][NR]`.
    let sw = PackSrc { buf: wt.buf, batches: g.groups, bstride: (mg * depth) as i64, count: mg, depth, s_lane: depth as i64, s_depth: 1 };
    let pw = pack(l, node, "w", &sw, nr)?;
    let njp = mg.div_ceil(nr);
    let nip = p.div_ceil(mr);
    // Each position's window corner in the read layout (rows past the last
    // position, which no tile reads, repeat it).
    let mut base = Vec::with_capacity(nip * mr);
    for q in 0..nip * mr {
        let q = q.min(p - 1);
        let (oz, oy, ox) = (q / (g.oh * g.ow), q / g.ow % g.oh, q % g.ow);
        base.push((((oz * g.sd) * hp + oy * g.sh) * wp + ox * g.sw) as i64);
    }
    let tab = l.constant(&format!("{node}.rows"), Scalar::I64, base.iter().flat_map(|v| v.to_le_bytes()).collect());
    // Blocks of (image·group, channel panel, run of position tiles); the runs of
    // one panel are consecutive, so its weights stay in cache.
    let ipc = (t.mc / mr).max(1);
    let nic = nip.div_ceil(ipc);
    // Runs of equal length, give or take a tile.
    let ipc = nip.div_ceil(nic);
    let nb = g.n * g.groups;
    let blocks = nb * njp * nic;
    let flops = 2 * nb * mg * p * depth;
    let kind = if blocks > 1 && flops as u64 > t.parallel_min_elems * 64 { LoopKind::Parallel } else { LoopKind::Serial };
    let scratch = l.temp(&format!("{node}.tiles"), Scalar::F32, (blocks * mr * nr) as u64);
    let name = l.kernel_name(node, "rows");
    let mut kb = KernelBuilder::new(name);
    let len = |l: &Lowerer, b| l.prog.buffer(b).len;
    let xb_ = kb.buffer("x", Scalar::F32, len(l, xp), Access::Read);
    let tb = kb.buffer("rows", Scalar::I64, len(l, tab), Access::Read);
    let wb_ = kb.buffer("w", Scalar::F32, len(l, pw), Access::Read);
    let bias = ins.get(2).map(|b| kb.buffer("bias", Scalar::F32, b.len(), Access::Read));
    let res: Vec<BufId> = ins.iter().skip(3).map(|r| kb.buffer("residual", Scalar::F32, r.len(), Access::Read)).collect();
    let ob = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let sb = kb.buffer("tiles", Scalar::F32, len(l, scratch), Access::ReadWrite);
    let acc: Vec<Vec<VarId>> =
        (0..mr).map(|r| (0..nv).map(|v| kb.var(&format!("c{r}{v}"), Ty::vec(Scalar::F32, w as u32))).collect()).collect();
    let rows: Vec<VarId> = (0..mr).map(|r| kb.var(&format!("b{r}"), Ty::I64)).collect();
    let g = *g;
    kb.for_("blk", Expr::i(0), Expr::i(blocks as i64), kind, |kb, blk| {
        let ic = kb.let_("ic", blk.clone() % Expr::i(nic as i64));
        let bj = kb.let_("bj", blk.clone() / Expr::i(nic as i64));
        let jp = kb.let_("jp", bj.clone() % Expr::i(njp as i64));
        let bi = kb.let_("bi", bj / Expr::i(njp as i64));
        let grp = kb.let_("grp", bi.clone() % Expr::i(g.groups as i64));
        let n = kb.let_("n", bi.clone() / Expr::i(g.groups as i64));
        // Input channels of the group, the panel's weights, the group's first
        // output channel.
        let xb = kb.let_("xb", (n.clone() * g.c as i64 + grp.clone() * cg as i64) * pitch as i64);
        let wb = kb.let_("wb", (bi.clone() % Expr::i(g.groups as i64) * njp as i64 + jp.clone()) * (depth * nr) as i64);
        let j0 = kb.let_("j0", jp * nr as i64);
        let m0 = kb.let_("m0", grp * mg as i64 + j0.clone());
        let orow = kb.let_("orow", (n * g.m as i64 + m0.clone()) * p as i64);
        let sbase = kb.let_("sbase", blk * (mr * nr) as i64);
        let cols = kb.let_("cols", Expr::bin(BinOp::Min, Expr::i(nr as i64), Expr::i(mg as i64) - j0.clone()));
        let ip_lo = kb.let_("ip_lo", ic.clone() * ipc as i64);
        let ip_hi = Expr::bin(BinOp::Min, ip_lo.clone() + ipc as i64, Expr::i(nfull as i64));
        // Tile `ip` of `mr` rows (the last, of `rem` rows, if the positions do
        // not fill it: no row computed in vain).
        let tile = |kb: &mut KernelBuilder, ip: Expr, mr: usize| {
            let (acc, rows) = (&acc[..mr], &rows[..mr]);
            let cx = Tile { mr, nr, w, p, acc, out: ob, scratch: sb, sbase: sbase.clone(), bias, res: &res, m0: m0.clone(), orow: orow.clone(), cols: cols.clone(), e };
            for (r, &b) in rows.iter().enumerate() {
                kb.set(b, xb.clone() + Expr::load(tb, ip.clone() * full_mr as i64 + r as i64));
            }
            for row in acc {
                for &v in row {
                    kb.set(v, Expr::splat(Expr::f(0.0), w as u32));
                }
            }
            let kp = kb.var("kp", Ty::I64);
            kb.set(kp, wb.clone());
            // One rank-1 update: the tap at offset `off` of every row, broadcast,
            // times the next NR weights.
            let step = |kb: &mut KernelBuilder, off: Expr| {
                let bvec: Vec<Expr> = (0..nv).map(|v| kb.let_("wv", Expr::loadv(wb_, Expr::var(kp) + (v * w) as i64, w as u32))).collect();
                for (r, row) in acc.iter().enumerate() {
                    let a = kb.let_("a", Expr::splat(Expr::load(xb_, Expr::var(rows[r]) + off.clone()), w as u32));
                    for (v, &cv) in row.iter().enumerate() {
                        kb.set(cv, Expr::fma(a.clone(), bvec[v].clone(), Expr::var(cv)));
                    }
                }
                kb.set(kp, Expr::var(kp) + nr as i64);
            };
            // The taps of one (channel, kz): all unrolled when few, else a loop
            // over ki with kj unrolled.
            let plane_taps = |kb: &mut KernelBuilder, co: Expr| {
                if kh * kw <= 16 {
                    for ki in 0..kh {
                        for kj in 0..kw {
                            step(kb, co.clone() + (ki * g.dh * wp + kj * g.dw) as i64);
                        }
                    }
                } else {
                    kb.for_n("ki", kh as u64, |kb, ki| {
                        let ko = kb.let_("ko", co.clone() + ki * (g.dh * wp) as i64);
                        for kj in 0..kw {
                            step(kb, ko.clone() + (kj * g.dw) as i64);
                        }
                    });
                }
            };
            // Pointwise convs unroll the channel loop instead.
            let uc = if taps == 1 { [4, 2, 1].into_iter().find(|u| cg.is_multiple_of(*u)).unwrap_or(1) } else { 1 };
            kb.for_step("c", Expr::i(0), Expr::i(cg as i64), uc as u64, LoopKind::Serial, |kb, c| {
                let co = kb.let_("co", c * pitch as i64);
                for u in 0..uc {
                    let cu = co.clone() + (u * pitch) as i64;
                    if g.deep {
                        kb.for_n("kz", kd as u64, |kb, kz| {
                            let zo = kb.let_("zo", cu.clone() + kz * (g.dd * hp * wp) as i64);
                            plane_taps(kb, zo);
                        });
                    } else {
                        plane_taps(kb, cu);
                    }
                }
            });
            let p0 = kb.let_("p0", ip * full_mr as i64);
            if mg.is_multiple_of(nr) {
                store_full(kb, &cx, &p0);
            } else {
                let full = (j0.clone() + nr as i64).le(Expr::i(mg as i64));
                kb.if_else(full, |kb| store_full(kb, &cx, &p0), |kb| store_edge(kb, &cx, &p0));
            }
        };
        kb.for_("ip", ip_lo, ip_hi, LoopKind::Serial, |kb, ip| tile(kb, ip, mr));
        if rem > 0 {
            kb.if_(ic.eq_(Expr::i(nic as i64 - 1)), |kb| tile(kb, Expr::i(nfull as i64), rem));
        }
    });
    let mut args = vec![xp, tab, pw];
    args.extend(ins.iter().skip(2).map(|b| b.buf));
    args.push(out.buf);
    args.push(scratch);
    l.step(node, kb.finish(), args);
    Ok(true)
}

/// What storing a tile needs.
struct Tile<'a> {
    mr: usize,
    nr: usize,
    w: usize,
    /// Output positions per (image, channel).
    p: usize,
    acc: &'a [Vec<VarId>],
    out: BufId,
    scratch: BufId,
    sbase: Expr,
    bias: Option<BufId>,
    /// The residual, or a fused epilogue's extra inputs (laid out as the output).
    res: &'a [BufId],
    /// The panel's first output channel (of all groups), its output row, and
    /// its number of real channels.
    m0: Expr,
    orow: Expr,
    cols: Expr,
    e: &'a IrExpr,
}

/// A whole tile: each accumulator lane to its place. Without a residual the
/// epilogue runs on the accumulators (the bias a vector along the channels).
fn store_full(kb: &mut KernelBuilder, t: &Tile, p0: &Expr) {
    let lanes = t.w as u32;
    for v in 0..t.nr / t.w {
        let rows: Vec<Expr> = match t.res.first() {
            None => {
                let bv = t.bias.map(|b| kb.let_("bias", Expr::loadv(b, t.m0.clone() + (v * t.w) as i64, lanes)));
                (0..t.mr)
                    .map(|r| {
                        let mut vals = vec![Expr::var(t.acc[r][v])];
                        vals.extend(bv.clone());
                        let y = region(kb, t.e, &vals, lanes);
                        kb.let_("y", y)
                    })
                    .collect()
            }
            Some(_) => (0..t.mr).map(|r| Expr::var(t.acc[r][v])).collect(),
        };
        for ln in 0..t.w {
            let j = v * t.w + ln;
            let o = kb.let_("o", t.orow.clone() + (j * t.p) as i64 + p0.clone());
            let bias = match (t.res.first(), t.bias) {
                (Some(_), Some(b)) => Some(kb.let_("bias", Expr::load(b, t.m0.clone() + j as i64))),
                _ => None,
            };
            for (r, y) in rows.iter().enumerate() {
                let x = Expr::lane(y.clone(), ln as u32);
                let val = match t.res.first() {
                    None => x,
                    Some(_) => {
                        let mut vals = vec![x];
                        vals.extend(bias.clone());
                        vals.extend(t.res.iter().map(|&rb| Expr::load(rb, o.clone() + r as i64)));
                        region(kb, t.e, &vals, 1)
                    }
                };
                kb.store(t.out, o.clone() + r as i64, val);
            }
        }
    }
}

/// A tile that sticks out of the output (last positions, last channels): its
/// vectors into the block's scratch tile, then element by element.
fn store_edge(kb: &mut KernelBuilder, t: &Tile, p0: &Expr) {
    for (r, row) in t.acc.iter().enumerate() {
        for (v, &cv) in row.iter().enumerate() {
            kb.store(t.scratch, t.sbase.clone() + (r * t.nr + v * t.w) as i64, Expr::var(cv));
        }
    }
    let nrows = Expr::bin(BinOp::Min, Expr::i(t.mr as i64), Expr::i(t.p as i64) - p0.clone());
    kb.for_("j", Expr::i(0), t.cols.clone(), LoopKind::Serial, |kb, j| {
        let bv = t.bias.map(|b| kb.let_("bias", Expr::load(b, t.m0.clone() + j.clone())));
        let o = kb.let_("o", t.orow.clone() + j.clone() * t.p as i64 + p0.clone());
        kb.for_("r", Expr::i(0), nrows, LoopKind::Serial, |kb, r| {
            let mut vals = vec![Expr::load(t.scratch, t.sbase.clone() + r.clone() * t.nr as i64 + j.clone())];
            vals.extend(bv.clone());
            vals.extend(t.res.iter().map(|&rb| Expr::load(rb, o.clone() + r.clone())));
            let y = region(kb, t.e, &vals, 1);
            kb.store(t.out, o.clone() + r, y);
        });
    });
}
