//! The GEMM schedule shared by matmul, gemm, fused_matmul and convolution:
//! operands packed into panels (`MR` rows of A, `NR` columns of B, each panel
//! `K` deep and contiguous; constants packed at compile time), then a kernel that
//! runs a register-tiled `MR × NR` micro-kernel of `w`-lane fused multiply-adds over
//! cache blocks (`KC` deep, `MC` rows, `NC` columns) and applies the elementwise
//! epilogue to each tile as it stores it. The parallel loop is over (batch,
//! row block, column block); each iteration owns its block of C. A tile that
//! sticks out of C goes through a per-block scratch tile and one element loop,
//! not MR·NR unrolled stores: with the AVX-512 8×32 tile, the unrolled edges made
//! LLVM take 15 s over ResNet-18 (2.5 s now).

use super::expr::region;
use super::{BufIdx, Lowerer};
use crate::kernel::{Access, At, BinOp, BufId, Expr, KernelBuilder, LoopKind, Scalar, Stmt, TileGemm, Ty, VarId};
use crate::Error;

/// `s` decomposed as a flat index over `dims` and dotted with `strides`.
pub fn batch_offset(bi: &Expr, dims: &[usize], strides: &[i64]) -> Expr {
    let mut off = Expr::i(0);
    let mut inner: i64 = 1;
    for d in (0..dims.len()).rev() {
        if strides[d] != 0 && dims[d] > 1 {
            let idx = if d == 0 { bi.clone() / Expr::i(inner) } else { bi.clone() / Expr::i(inner) % Expr::i(dims[d] as i64) };
            off = off + idx * strides[d];
        }
        inner *= dims[d] as i64;
    }
    off
}

/// Where the matrices to pack come from: `batches` matrices `bstride` apart;
/// element (lane `i`, depth `d`) at `i·s_lane + d·s_depth`.
#[derive(Debug, Clone)]
pub struct PackSrc {
    pub buf: BufIdx,
    pub batches: usize,
    pub bstride: i64,
    pub count: usize,
    pub depth: usize,
    pub s_lane: i64,
    pub s_depth: i64,
}

/// Elements of a packed operand: `batches × ⌈count/r⌉ × depth × r`.
pub fn packed_len(s: &PackSrc, r: usize) -> u64 {
    (s.batches * s.count.div_ceil(r) * s.depth * r) as u64
}

/// Packs on the host (for constants): `out[b][p][d][i] = src(b, p·r + i, d)`, zero
/// past `count`.
pub fn pack_host(src: &[f32], s: &PackSrc, r: usize) -> Vec<f32> {
    let panels = s.count.div_ceil(r);
    let mut out = vec![0f32; packed_len(s, r) as usize];
    for b in 0..s.batches {
        for p in 0..panels {
            for d in 0..s.depth {
                for i in 0..r {
                    let lane = p * r + i;
                    if lane < s.count {
                        let at = b as i64 * s.bstride + lane as i64 * s.s_lane + d as i64 * s.s_depth;
                        out[((b * panels + p) * s.depth + d) * r + i] = src[at as usize];
                    }
                }
            }
        }
    }
    out
}

/// Packs an operand: on the host when it is a constant, else with a kernel.
/// Returns the packed buffer.
pub fn pack(l: &mut Lowerer, node: &str, what: &str, s: &PackSrc, r: usize) -> Result<BufIdx, Error> {
    let len = packed_len(s, r);
    if let Some(vals) = l.const_f32(s.buf) {
        return Ok(l.constant_f32(&format!("{node}.{what}_packed"), &pack_host(&vals, s, r)));
    }
    let src_buf = l.prog.buffer(s.buf).clone();
    let out = l.temp(&format!("{node}.{what}_packed"), Scalar::F32, len);
    let name = l.kernel_name(node, &format!("pack_{what}"));
    let mut kb = KernelBuilder::new(name);
    let src = kb.buffer("src", Scalar::F32, src_buf.len, Access::Read);
    let dst = kb.buffer("dst", Scalar::F32, len, Access::Write);
    let panels = s.count.div_ceil(r);
    let full = s.count / r;
    let total = (s.batches * panels) as i64;
    let parallel = len >= l.target.parallel_min_elems;
    let kind = if parallel { LoopKind::Parallel } else { LoopKind::Serial };
    let s2 = s.clone();
    kb.for_("bp", Expr::i(0), Expr::i(total), kind, |kb, bp| {
        let b = bp.clone() / Expr::i(panels as i64);
        let p = bp.clone() % Expr::i(panels as i64);
        let src_base = kb.let_("base", b * s2.bstride + p.clone() * (r as i64 * s2.s_lane));
        let dst_base = kb.let_("out", bp.clone() * (s2.depth * r) as i64);
        let inner = if s2.s_lane == 1 { LoopKind::Vectorized(l.target.vector_width) } else { LoopKind::Unrolled };
        let body = |kb: &mut KernelBuilder, guarded: bool| {
            kb.for_n("d", s2.depth as u64, |kb, d| {
                kb.for_("i", Expr::i(0), Expr::i(r as i64), if guarded { LoopKind::Unrolled } else { inner }, |kb, i| {
                    let lane = p.clone() * r as i64 + i.clone();
                    let at = src_base.clone() + d.clone() * s2.s_depth + i.clone() * s2.s_lane;
                    let v = if guarded {
                        // Clamp the read into the matrix; lanes past `count` store 0.
                        let last = src_base.clone() + d.clone() * s2.s_depth + Expr::i((s2.count as i64 - 1) % r as i64) * s2.s_lane;
                        let at = Expr::select(lane.clone().lt(Expr::i(s2.count as i64)), at, last);
                        Expr::select(lane.lt(Expr::i(s2.count as i64)), Expr::load(src, at), Expr::f(0.0))
                    } else {
                        Expr::load(src, at)
                    };
                    kb.store(dst, dst_base.clone() + d * r as i64 + i, v);
                });
            });
        };
        super::util::by_panel(kb, &p, full, panels, body);
    });
    l.step(node, kb.finish(), vec![s.buf, out]);
    Ok(out)
}

/// An extra input of the epilogue, broadcast to the output `[batch.., M, N]`.
#[derive(Debug, Clone)]
pub struct Extra {
    pub buf: BufIdx,
    /// Element offset of (batch 0, row 0, col 0).
    pub off: i64,
    pub batch: Vec<i64>,
    pub rs: i64,
    pub cs: i64,
}

/// B read in place instead of from packed panels: element (depth `d`, column `j`)
/// of batch `b` is `x[x_b + koff[d] + j]` (`x_b` from `batch`), so each depth step
/// of a panel is `NR` consecutive elements. `x` must hold `NR` elements past the
/// last column of the last batch (see `conv/mod.rs`, which pads the input).
#[derive(Debug, Clone)]
pub struct DirectB {
    pub x: BufIdx,
    pub batch: Vec<i64>,
    /// `i64[k]`: the offset of each depth step.
    pub koff: BufIdx,
}

/// A read in place instead of from packed panels: element (row `i`, depth `d`) of
/// batch `b` is `a[a_b + i·rs + d]` (`a_b` from `batch`). Each micro-kernel step
/// broadcasts one element of each of its MR rows (MLAS reads A this way too), so
/// no kernel packs A before the product. Only for `M` a multiple of MR: there are
/// no edge rows to keep inside the matrix.
#[derive(Debug, Clone)]
pub struct DirectA {
    pub a: BufIdx,
    pub batch: Vec<i64>,
    pub rs: i64,
}

/// How the GEMM reads A.
#[derive(Debug, Clone)]
pub enum OperandA {
    /// From `MR`-row panels (`pack`), batch `b`'s at `pa[batch offset]`.
    Packed { pa: BufIdx, batch: Vec<i64> },
    /// In place ([`DirectA`]).
    InPlace(DirectA),
}

/// How the GEMM reads B.
#[derive(Debug, Clone)]
pub enum OperandB {
    /// From `NR`-column panels (`pack`), batch `b`'s at `pb[batch offset]`.
    Packed { pb: BufIdx, batch: Vec<i64> },
    /// In place ([`DirectB`]).
    InPlace(DirectB),
    /// A grouped GEMM (one batch): each `MR`-row panel `ip` of A multiplies its own
    /// packed B at `pb[table[ip] · stride]`; a panel whose `table` entry is
    /// negative is skipped, its rows of C left as they are (a mixture of experts'
    /// tokens sorted by expert).
    Grouped { pb: BufIdx, table: BufIdx, stride: i64 },
}

impl OperandA {
    /// A read in place, if it is.
    pub fn direct(&self) -> Option<&DirectA> {
        match self {
            OperandA::InPlace(d) => Some(d),
            OperandA::Packed { .. } => None,
        }
    }

    /// The buffer A is read from.
    pub fn buf(&self) -> BufIdx {
        match self {
            OperandA::InPlace(d) => d.a,
            OperandA::Packed { pa, .. } => *pa,
        }
    }

    /// Each batch dim's stride into that buffer.
    pub fn batch(&self) -> &[i64] {
        match self {
            OperandA::InPlace(d) => &d.batch,
            OperandA::Packed { batch, .. } => batch,
        }
    }
}

impl OperandB {
    /// B read in place, if it is.
    pub fn direct(&self) -> Option<&DirectB> {
        match self {
            OperandB::InPlace(d) => Some(d),
            OperandB::Packed { .. } | OperandB::Grouped { .. } => None,
        }
    }

    /// The buffer B is read from.
    pub fn buf(&self) -> BufIdx {
        match self {
            OperandB::InPlace(d) => d.x,
            OperandB::Packed { pb, .. } | OperandB::Grouped { pb, .. } => *pb,
        }
    }

    /// Each batch dim's stride into that buffer.
    pub fn batch(&self) -> &[i64] {
        match self {
            OperandB::InPlace(d) => &d.batch,
            OperandB::Packed { batch, .. } => batch,
            OperandB::Grouped { .. } => &[],
        }
    }
}

/// One GEMM: `C[b] = epilogue(A[b]·B[b], extras)`, A and B packed or read in
/// place.
#[derive(Debug, Clone)]
pub struct GemmSpec {
    pub batch: Vec<usize>,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: OperandA,
    pub b: OperandB,
    pub c: BufIdx,
    pub extras: Vec<Extra>,
    /// `$0` is the product, `$1…` the extras.
    pub epilogue: smelt_ir::Expr,
}

/// Emits the GEMM kernel. With `Target::split_heavy_epilogue` (Cranelift), a
/// heavy epilogue runs as a second kernel over C: in the micro-kernel's function
/// Cranelift keeps the epilogue's constants in registers through the K loop and
/// spills an accumulator on every step (a gelu epilogue made a 128×256×1024
/// product 2.5× slower).
pub fn gemm(l: &mut Lowerer, node: &str, s: &GemmSpec) -> Result<(), Error> {
    if l.target.split_heavy_epilogue && s.epilogue.is_transcendental() {
        let plain = GemmSpec { extras: vec![], epilogue: smelt_ir::Expr::Input(0), ..s.clone() };
        gemm_kernel(l, node, &plain)?;
        epilogue_pass(l, node, s);
        return Ok(());
    }
    gemm_kernel(l, node, s)
}

/// `C = epilogue(C, extras)` in place, rows in parallel, columns vectorized.
fn epilogue_pass(l: &mut Lowerer, node: &str, s: &GemmSpec) {
    let nb: usize = s.batch.iter().product();
    let (m, n) = (s.m, s.n);
    let rows = nb * m;
    let name = l.kernel_name(node, "epilogue");
    let mut kb = KernelBuilder::new(name);
    let len = |l: &Lowerer, b: BufIdx| l.prog.buffer(b).len;
    let c = kb.buffer("c", Scalar::F32, len(l, s.c), Access::ReadWrite);
    let ex: Vec<BufId> =
        s.extras.iter().enumerate().map(|(i, e)| kb.buffer(&format!("e{i}"), Scalar::F32, len(l, e.buf), Access::Read)).collect();
    let kind = if (rows * n) as u64 >= l.target.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let vw = LoopKind::Vectorized(l.target.vector_width);
    kb.for_("r", Expr::i(0), Expr::i(rows as i64), kind, |kb, r| {
        let bi = kb.let_("bi", r.clone() / Expr::i(m as i64));
        let i = kb.let_("i", r.clone() % Expr::i(m as i64));
        let row = kb.let_("row", r.clone() * n as i64);
        let bases: Vec<Expr> = s
            .extras
            .iter()
            .enumerate()
            .map(|(k, e)| kb.let_(&format!("e{k}_b"), batch_offset(&bi, &s.batch, &e.batch) + e.off + i.clone() * e.rs))
            .collect();
        kb.for_("j", Expr::i(0), Expr::i(n as i64), vw, |kb, j| {
            let mut ins = vec![Expr::load(c, row.clone() + j.clone())];
            for ((e, &buf), b) in s.extras.iter().zip(&ex).zip(&bases) {
                ins.push(Expr::load(buf, b.clone() + j.clone() * e.cs));
            }
            let y = region(kb, &s.epilogue, &ins, 1);
            kb.store(c, row.clone() + j, y);
        });
    });
    let mut args = vec![s.c];
    args.extend(s.extras.iter().map(|e| e.buf));
    l.step(node, kb.finish(), args);
}

/// The GEMM kernel itself (see the module doc).
fn gemm_kernel(l: &mut Lowerer, node: &str, s: &GemmSpec) -> Result<(), Error> {
    let t = l.target.clone();
    let (mr, nr, w) = (t.mr, t.nr, t.vector_width as usize);
    let (m, n, k) = (s.m, s.n, s.k);
    let nv = nr / w;
    let (mp, np) = (m.div_ceil(mr), n.div_ceil(nr));
    let mcp = (t.mc / mr).max(1);
    let kc = t.kc.max(1);
    let nb: usize = s.batch.iter().product();
    let (nic, mut ncp) = (mp.div_ceil(mcp), (t.nc / nr).max(1));
    // Enough parallel blocks for the threads (split columns when rows are few),
    // unless the whole product is too small to be worth a thread.
    let small = (2 * nb * m * n * k) as u64 <= t.parallel_min_elems * 64;
    while !small && nb * nic * np.div_ceil(ncp) < 8 && ncp > 1 {
        ncp = ncp.div_ceil(2);
    }
    let njc = np.div_ceil(ncp);
    // Blocks of equal size, give or take a panel (64 row panels in blocks of 12
    // left one of 4, and threads with unequal shares).
    let (mcp, ncp) = (mp.div_ceil(nic), np.div_ceil(njc));
    let blocks = (nb * nic * njc) as i64;
    let multi_k = k > kc;
    // Edge tiles go through a per-block scratch tile, so that their element-wise
    // stores and epilogue are one loop nest instead of MR·NR unrolled copies.
    let edges = !m.is_multiple_of(mr) || !n.is_multiple_of(nr);
    // With a micro-kernel, every tile is computed into the block's scratch tile.
    let ukernel = t.ukernels;
    let scratch = (edges || ukernel).then(|| l.temp(&format!("{node}.edge_tiles"), Scalar::F32, (blocks as usize * mr * nr) as u64));
    let name = l.kernel_name(node, "gemm");
    let mut kb = KernelBuilder::new(name);
    let len = |l: &Lowerer, b: BufIdx| l.prog.buffer(b).len;
    if s.a.direct().is_some() && !m.is_multiple_of(mr) {
        return Err(super::internal(node, "A is read in place only when M is a multiple of MR"));
    }
    let pa = match s.a.direct() {
        Some(d) => kb.buffer("a", Scalar::F32, len(l, d.a), Access::Read),
        None => kb.buffer("pa", Scalar::F32, len(l, s.a.buf()), Access::Read),
    };
    let direct = s.b.direct().map(|d| {
        (kb.buffer("x", Scalar::F32, len(l, d.x), Access::Read), kb.buffer("koff", Scalar::I64, len(l, d.koff), Access::Read))
    });
    let pb = match direct {
        Some((x, _)) => x,
        None => kb.buffer("pb", Scalar::F32, len(l, s.b.buf()), Access::Read),
    };
    let groups = match &s.b {
        OperandB::Grouped { table, stride, .. } => {
            if !s.batch.is_empty() {
                return Err(super::internal(node, "a grouped GEMM has no batch dims"));
            }
            Some((kb.buffer("groups", Scalar::I64, len(l, *table), Access::Read), *stride))
        }
        _ => None,
    };
    let c = kb.buffer("c", Scalar::F32, len(l, s.c), if multi_k { Access::ReadWrite } else { Access::Write });
    let ex: Vec<BufId> =
        s.extras.iter().enumerate().map(|(i, e)| kb.buffer(&format!("e{i}"), Scalar::F32, len(l, e.buf), Access::Read)).collect();
    let tile = scratch.map(|b| kb.buffer("edge", Scalar::F32, len(l, b), Access::ReadWrite));
    let acc: Vec<Vec<VarId>> = if ukernel {
        vec![]
    } else {
        (0..mr).map(|r| (0..nv).map(|v| kb.var(&format!("c{r}{v}"), Ty::vec(Scalar::F32, w as u32))).collect()).collect()
    };
    let kind = if blocks > 1 && !small { LoopKind::Parallel } else { LoopKind::Serial };
    kb.for_("blk", Expr::i(0), Expr::i(blocks), kind, |kb, blk| {
        let per_b = (nic * njc) as i64;
        let bi = kb.let_("bi", blk.clone() / Expr::i(per_b));
        let rest = kb.let_("rest", blk.clone() % Expr::i(per_b));
        let ic = rest.clone() / Expr::i(njc as i64);
        let jc = rest % Expr::i(njc as i64);
        let pa_b = match s.a.direct() {
            Some(d) => kb.let_("a_b", batch_offset(&bi, &s.batch, &d.batch)),
            None => kb.let_("pa_b", batch_offset(&bi, &s.batch, s.a.batch())),
        };
        let pb_b = match s.b.direct() {
            Some(d) => kb.let_("x_b", batch_offset(&bi, &s.batch, &d.batch)),
            None => kb.let_("pb_b", batch_offset(&bi, &s.batch, s.b.batch())),
        };
        let c_b = kb.let_("c_b", bi.clone() * (m * n) as i64);
        let e_b: Vec<Expr> =
            s.extras.iter().enumerate().map(|(i, e)| kb.let_(&format!("e{i}_b"), batch_offset(&bi, &s.batch, &e.batch) + e.off)).collect();
        let ip_lo = kb.let_("ip_lo", ic * mcp as i64);
        let ip_hi = Expr::bin(BinOp::Min, ip_lo.clone() + mcp as i64, Expr::i(mp as i64));
        let jp_lo = kb.let_("jp_lo", jc * ncp as i64);
        let jp_hi = Expr::bin(BinOp::Min, jp_lo.clone() + ncp as i64, Expr::i(np as i64));
        let edge = tile.map(|t| (t, kb.let_("edge_b", blk.clone() * (mr * nr) as i64)));
        let cx = TileCx { s, mr, nr, w, c, ex: &ex, e_b: &e_b, c_b: &c_b, acc: &acc, edge, ukernel };
        let tiles = |kb: &mut KernelBuilder, pc: Expr, kcv: Expr, first: Option<Expr>, last: Option<Expr>| {
            kb.for_("jp", jp_lo.clone(), jp_hi.clone(), LoopKind::Serial, |kb, jp| {
                kb.for_("ip", ip_lo.clone(), ip_hi.clone(), LoopKind::Serial, |kb, ip| {
                    // A grouped GEMM's panel multiplies its group's B, or is skipped.
                    let group = groups.map(|(table, stride)| {
                        let g = kb.let_("group", Expr::load(table, ip.clone()));
                        (g.clone(), kb.let_("pb_g", g * stride))
                    });
                    let pb_b = match &group {
                        Some((_, pb_g)) => pb_g.clone(),
                        None => pb_b.clone(),
                    };
                    let panel = |kb: &mut KernelBuilder| {
                        if let (true, Some((tb, tile_at))) = (ukernel, &cx.edge) {
                            let (a, a_rs) = match s.a.direct() {
                                Some(d) => (pa_b.clone() + ip.clone() * (mr as i64 * d.rs) + pc.clone(), Some(Expr::i(d.rs))),
                                None => (pa_b.clone() + (ip.clone() * k as i64 + pc.clone()) * mr as i64, None),
                            };
                            let (b, koff) = match direct {
                                Some((_, koff)) => (pb_b.clone() + jp.clone() * nr as i64, Some(At { buf: koff, index: pc.clone() })),
                                None => (pb_b.clone() + (jp.clone() * k as i64 + pc.clone()) * nr as i64, None),
                            };
                            kb.push(Stmt::TileGemm(TileGemm {
                                mr: mr as u32,
                                nr: nr as u32,
                                a: At { buf: pa, index: a },
                                b: At { buf: pb, index: b },
                                koff,
                                tile: At { buf: *tb, index: tile_at.clone() },
                                kc: kcv.clone(),
                                a_rs,
                            }));
                            cx.store_tile(kb, ip * mr as i64, jp * nr as i64, first.clone(), last.clone());
                            return;
                        }
                        // The micro-kernel: MR×NR accumulators, one rank-1 update per step.
                        for row in &acc {
                            for &v in row {
                                kb.set(v, Expr::splat(Expr::f(0.0), w as u32));
                            }
                        }
                        // `q` walks A: `qs` elements per depth step (a packed panel's
                        // MR; 1 in place, where row `r` is `r·rs` further on).
                        let (a0, qs, a_rs) = match s.a.direct() {
                            Some(d) => (pa_b.clone() + ip.clone() * (mr as i64 * d.rs) + pc.clone(), 1usize, d.rs),
                            None => (pa_b.clone() + (ip.clone() * k as i64 + pc.clone()) * mr as i64, mr, 1),
                        };
                        let b0 = match direct {
                            Some(_) => pb_b.clone() + jp.clone() * nr as i64,
                            None => pb_b.clone() + (jp.clone() * k as i64 + pc.clone()) * nr as i64,
                        };
                        // One induction variable: `q` walks the A panel; B is at
                        // `bq + q·(NR/MR)` when NR is a multiple of MR. In place, B
                        // is at `bq + koff[kp]`, `kp` the depth step.
                        let ratio = if nr % qs == 0 && direct.is_none() { Some((nr / qs) as i64) } else { None };
                        let kp = direct.map(|_| {
                            let kp = kb.var("kp", Ty::I64);
                            kb.set(kp, pc.clone());
                            kp
                        });
                        let q0 = kb.let_("q0", a0);
                        let bq = match ratio {
                            Some(rt) => kb.let_("bq", b0 - q0.clone() * rt),
                            None => kb.let_("bq", b0),
                        };
                        let pb_p = kb.var("pb_p", Ty::I64);
                        if ratio.is_none() && kp.is_none() {
                            kb.set(pb_p, bq.clone());
                        }
                        // One rank-1 update per depth step, `ku` steps per iteration.
                        let step = |kb: &mut KernelBuilder, q: &Expr, u: usize| {
                            let (bat, bu) = match (ratio, direct, kp) {
                                (_, Some((_, koff)), Some(kp)) => {
                                    (kb.let_("bat", bq.clone() + Expr::load(koff, Expr::var(kp) + u as i64)), 0)
                                }
                                (Some(rt), _, _) => (bq.clone() + q.clone() * rt, u * nr),
                                _ => (Expr::var(pb_p), 0),
                            };
                            let bvec: Vec<Expr> =
                                (0..nv).map(|v| kb.let_("b", Expr::loadv(pb, bat.clone() + (bu + v * w) as i64, w as u32))).collect();
                            // A in vectors of `w` rows, each row broadcast from its lane;
                            // when MR is not a multiple of `w` (a vector would read past
                            // the panel), each row is a broadcast scalar load.
                            let avec: Vec<Expr> = if mr.is_multiple_of(w) && qs == mr {
                                (0..mr / w).map(|j| kb.let_("av", Expr::loadv(pa, q.clone() + (u * mr + j * w) as i64, w as u32))).collect()
                            } else {
                                vec![]
                            };
                            for (r, row) in acc.iter().enumerate() {
                                let lane = match avec.get(r / w) {
                                    Some(av) => Expr::lane(av.clone(), (r % w) as u32),
                                    None => Expr::load(pa, q.clone() + ((u * qs) as i64 + r as i64 * a_rs)),
                                };
                                let a = kb.let_("a", Expr::splat(lane, w as u32));
                                for (v, &cv) in row.iter().enumerate() {
                                    kb.set(cv, Expr::fma(a.clone(), bvec[v].clone(), Expr::var(cv)));
                                }
                            }
                            if ratio.is_none() && kp.is_none() {
                                kb.set(pb_p, Expr::var(pb_p) + nr as i64);
                            }
                        };
                        let advance = |kb: &mut KernelBuilder, by: i64| {
                            if let Some(kp) = kp {
                                kb.set(kp, Expr::var(kp) + by);
                            }
                        };
                        let ku = t.k_unroll.max(1) as i64;
                        let qend = kb.let_("qend", q0.clone() + kcv.clone() * qs as i64);
                        let qmain = kb.let_("qmain", q0.clone() + kcv.clone() / Expr::i(ku) * (ku * qs as i64));
                        kb.for_step("q", q0.clone(), qmain.clone(), ku as u64 * qs as u64, LoopKind::Serial, |kb, q| {
                            for u in 0..ku as usize {
                                step(kb, &q, u);
                            }
                            advance(kb, ku);
                        });
                        if ku > 1 {
                            kb.for_step("q", qmain, qend, qs as u64, LoopKind::Serial, |kb, q| {
                                step(kb, &q, 0);
                                advance(kb, 1);
                            });
                        }
                        cx.store_tile(kb, ip * mr as i64, jp * nr as i64, first.clone(), last.clone());
                    };
                    match group {
                        Some((g, _)) => kb.if_(g.ge(Expr::i(0)), panel),
                        None => panel(kb),
                    }
                });
            });
        };
        if multi_k {
            kb.for_step("pc", Expr::i(0), Expr::i(k as i64), kc as u64, LoopKind::Serial, |kb, pc| {
                let kcv = kb.let_("kc", Expr::bin(BinOp::Min, Expr::i(kc as i64), Expr::i(k as i64) - pc.clone()));
                let first = kb.let_("first", pc.clone().eq_(Expr::i(0)));
                let last = kb.let_("last", (pc.clone() + kc as i64).ge(Expr::i(k as i64)));
                tiles(kb, pc, kcv, Some(first), Some(last));
            });
        } else {
            tiles(kb, Expr::i(0), Expr::i(k as i64), None, None);
        }
    });
    let a_arg = s.a.buf();
    let mut args = match &s.b {
        OperandB::InPlace(d) => vec![a_arg, d.x, d.koff, s.c],
        OperandB::Grouped { pb, table, .. } => vec![a_arg, *pb, *table, s.c],
        OperandB::Packed { pb, .. } => vec![a_arg, *pb, s.c],
    };
    args.extend(s.extras.iter().map(|e| e.buf));
    args.extend(scratch);
    l.step(node, kb.finish(), args);
    Ok(())
}

/// What storing one register tile needs.
struct TileCx<'a> {
    s: &'a GemmSpec,
    mr: usize,
    nr: usize,
    w: usize,
    c: BufId,
    ex: &'a [BufId],
    e_b: &'a [Expr],
    c_b: &'a Expr,
    acc: &'a [Vec<VarId>],
    /// The block's scratch tile (buffer, offset) for edge tiles, and for every
    /// tile with a micro-kernel.
    edge: Option<(BufId, Expr)>,
    /// The tile is in the scratch tile (the micro-kernel's output), not in `acc`.
    ukernel: bool,
}

impl TileCx<'_> {
    /// Stores the tile at (i0, j0): whole vectors when it lies inside C, element by
    /// element at the edges. With K blocks (`first`/`last` given), partial sums
    /// accumulate in C and the epilogue runs on the last block.
    fn store_tile(&self, kb: &mut KernelBuilder, i0: Expr, j0: Expr, first: Option<Expr>, last: Option<Expr>) {
        let (m, n) = (self.s.m as i64, self.s.n as i64);
        let i0 = kb.let_("i0", i0);
        let j0 = kb.let_("j0", j0);
        let full_rows = self.s.m.is_multiple_of(self.mr);
        let full_cols = self.s.n.is_multiple_of(self.nr);
        let fast = |kb: &mut KernelBuilder| self.store_vectors(kb, &i0, &j0, first.clone(), last.clone());
        let slow = |kb: &mut KernelBuilder| self.store_elements(kb, &i0, &j0, first.clone(), last.clone());
        if full_rows && full_cols {
            fast(kb);
        } else {
            let cond = (i0.clone() + self.mr as i64).le(Expr::i(m)).and((j0.clone() + self.nr as i64).le(Expr::i(n)));
            kb.if_else(cond, fast, slow);
        }
    }

    /// The epilogue on `acc` at row `i` (an expression) and columns from `j`;
    /// `lanes` 1 or the vector width.
    fn finish(&self, kb: &mut KernelBuilder, acc: Expr, i: &Expr, j: &Expr, lanes: u32) -> Expr {
        let mut ins = vec![acc];
        for ((e, &buf), b) in self.s.extras.iter().zip(self.ex).zip(self.e_b) {
            let at = b.clone() + i.clone() * e.rs + j.clone() * e.cs;
            let v = if lanes == 1 {
                Expr::load(buf, at)
            } else if e.cs == 0 {
                Expr::splat(Expr::load(buf, at), lanes)
            } else {
                Expr::loadv(buf, at, lanes)
            };
            ins.push(kb.let_("e", v));
        }
        region(kb, &self.s.epilogue, &ins, lanes)
    }

    #[allow(clippy::too_many_arguments)]
    fn store_value(&self, kb: &mut KernelBuilder, at: Expr, v: Expr, i: &Expr, j: &Expr, lanes: u32, first: &Option<Expr>, last: &Option<Expr>) {
        let prev = |kb: &mut KernelBuilder, v: Expr| match first {
            None => v,
            Some(f) => {
                let old = if lanes == 1 { Expr::load(self.c, at.clone()) } else { Expr::loadv(self.c, at.clone(), lanes) };
                let zero = if lanes == 1 { Expr::f(0.0) } else { Expr::splat(Expr::f(0.0), lanes) };
                let cond = if lanes == 1 { f.clone() } else { Expr::splat(f.clone(), lanes) };
                kb.let_("sum", v + Expr::select(cond, zero, old))
            }
        };
        let v = prev(kb, v);
        match last {
            None => {
                let y = self.finish(kb, v, i, j, lanes);
                kb.store(self.c, at, y);
            }
            Some(lst) => {
                let at2 = at.clone();
                let v2 = v.clone();
                kb.if_else(
                    lst.clone(),
                    |kb| {
                        let y = self.finish(kb, v2, i, j, lanes);
                        kb.store(self.c, at2, y);
                    },
                    |kb| kb.store(self.c, at, v),
                );
            }
        }
    }

    /// Vector `v` of row `r` of the tile.
    fn acc_vec(&self, r: usize, v: usize) -> Expr {
        match (&self.edge, self.ukernel) {
            (Some((t, base)), true) => Expr::loadv(*t, base.clone() + (r * self.nr + v * self.w) as i64, self.w as u32),
            _ => Expr::var(self.acc[r][v]),
        }
    }

    fn store_vectors(&self, kb: &mut KernelBuilder, i0: &Expr, j0: &Expr, first: Option<Expr>, last: Option<Expr>) {
        let n = self.s.n as i64;
        for r in 0..self.mr {
            let i = i0.clone() + r as i64;
            for v in 0..self.nr / self.w {
                let j = j0.clone() + (v * self.w) as i64;
                let at = self.c_b.clone() + i.clone() * n + j.clone();
                self.store_value(kb, at, self.acc_vec(r, v), &i, &j, self.w as u32, &first, &last);
            }
        }
    }

    /// An edge tile: its vectors into the block's scratch tile, then element by
    /// element out of it, inside C (one loop nest and one copy of the epilogue).
    fn store_elements(&self, kb: &mut KernelBuilder, i0: &Expr, j0: &Expr, first: Option<Expr>, last: Option<Expr>) {
        let (m, n) = (self.s.m as i64, self.s.n as i64);
        let Some((t, base)) = &self.edge else { unreachable!("a GEMM with edge tiles has a scratch tile") };
        // (The micro-kernel wrote the tile there already; `acc` is then empty.)
        for (r, row) in self.acc.iter().enumerate() {
            for (v, &cv) in row.iter().enumerate() {
                kb.store(*t, base.clone() + (r * self.nr + v * self.w) as i64, Expr::var(cv));
            }
        }
        let rows = Expr::bin(BinOp::Min, Expr::i(self.mr as i64), Expr::i(m) - i0.clone());
        let cols = Expr::bin(BinOp::Min, Expr::i(self.nr as i64), Expr::i(n) - j0.clone());
        kb.for_("r", Expr::i(0), rows, LoopKind::Serial, |kb, r| {
            let i = kb.let_("i", i0.clone() + r.clone());
            kb.for_("jj", Expr::i(0), cols.clone(), LoopKind::Serial, |kb, jj| {
                let j = kb.let_("j", j0.clone() + jj.clone());
                let x = Expr::load(*t, base.clone() + r.clone() * self.nr as i64 + jj);
                let at = self.c_b.clone() + i.clone() * n + j.clone();
                self.store_value(kb, at, x, &i, &j, 1, &first, &last);
            });
        });
    }
}
