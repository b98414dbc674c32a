//! The quantized GEMM shared by `qmatmul` and the qconvs: `C = bias + A'·B'` in
//! wrapping i32, where `A'`, `B'` are the 8-bit operands minus their zero points.
//!
//! Both operands are packed as *pairs*: one i32 word holds two consecutive depth
//! steps of one lane as i16 halves (`(v[2p] & 0xffff) | v[2p+1] << 16`, zero past
//! the depth), A in panels of `MR` rows, B in panels of `NR` columns, each panel
//! `⌈K/2⌉` words deep (constants packed at compile time, run-time operands by a
//! kernel; the conv's im2col is packed straight from the input). The micro-kernel
//! keeps an `MR × NR` tile of i32 accumulators in `w`-lane vectors and adds, per
//! pair step, `dot_pairs_i16(splat(A word), B words)` — `vpmaddwd` on LLVM with
//! AVX2, `pmaddwd` on Cranelift. This is exact: an 8-bit value minus an 8-bit
//! zero point lies in [−255, 255], so the halves hold it and a pair's sum fits i32;
//! callers check that the zero points keep the differences in i16 and otherwise
//! keep their plain loops. Wrapping i32 addition is associative, so the blocked
//! order matches the reference's running sum bit for bit.
//!
//! On hosts with AMX-INT8 (`Target::quant_amx`) the quads run on tiles instead:
//! 32-lane panels with the depth padded to blocks of 64, A blocked for tile loads
//! ([`Layout::AmxA`]), and one call of `crate::amx`'s 32×32 tile per tile of C
//! over the whole depth, its accumulators starting from the bias.

use super::{BufIdx, BufKind, Lowerer};
use crate::kernel::{Access, AmxTile, At, BinOp, BufId, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar, Stmt, Ty, VarId};
use crate::Error;

/// Whether `v − zp` stays in i16 for every `v` of the 8-bit `scalar` and every
/// zero point in `zps`.
pub fn fits_i16(scalar: Scalar, zps: &[i64]) -> bool {
    let (lo, hi) = scalar.int_range().unwrap_or((0, 0));
    let r = i16::MIN as i64..=i16::MAX as i64;
    zps.iter().all(|&z| r.contains(&(lo - z)) && r.contains(&(hi - z)))
}

/// How 8-bit values are packed into i32 words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    /// Two i16 halves of `v − zp` (for `dot_pairs_i16`).
    Pairs,
    /// Four unsigned bytes `v + off` (`off` = 128 flips i8 to u8; the zero
    /// point is corrected through the bias): the u8 side of `dot_quads_u8i8`.
    QuadsU8 { off: i64 },
    /// Four signed bytes `v − zp`: the s8 side of `dot_quads_u8i8`.
    QuadsS8,
}

impl Enc {
    /// Depth steps per word.
    pub fn per(self) -> usize {
        if self == Enc::Pairs { 2 } else { 4 }
    }

    /// One packed element from `v` as i32 (`zp` its zero point).
    fn el(self, v: Expr, zp: Expr) -> Expr {
        match self {
            Enc::Pairs | Enc::QuadsS8 => v - zp,
            Enc::QuadsU8 { off } => v + Expr::int(off, Scalar::I32),
        }
    }

    /// The elements of one word (`per` or fewer; the rest are zero) as the word.
    pub fn word(self, els: &[Expr]) -> Expr {
        let i32c = |v: i64| Expr::int(v, Scalar::I32);
        if self == Enc::Pairs {
            return pair(els[0].clone(), els.get(1).cloned().unwrap_or(i32c(0)));
        }
        let mut w = Expr::bin(BinOp::And, els[0].clone(), i32c(0xff));
        for (j, e) in els.iter().enumerate().skip(1) {
            let b = Expr::bin(BinOp::And, e.clone(), i32c(0xff));
            w = Expr::bin(BinOp::Or, w, Expr::bin(BinOp::Shl, b, i32c(8 * j as i64)));
        }
        w
    }

    /// The same on the host.
    fn word_host(self, els: &[i64]) -> i32 {
        if self == Enc::Pairs {
            return ((els[0] & 0xffff) | (els.get(1).copied().unwrap_or(0) << 16)) as i32;
        }
        els.iter().enumerate().fold(0u32, |w, (j, &e)| w | (((e & 0xff) as u32) << (8 * j))) as i32
    }
}

/// Whether every `v − zp` of the 8-bit `scalar` fits i8 (the s8 side of quads).
pub fn fits_i8(scalar: Scalar, zps: &[i64]) -> bool {
    let (lo, hi) = scalar.int_range().unwrap_or((0, 0));
    let r = i8::MIN as i64..=i8::MAX as i64;
    zps.iter().all(|&z| r.contains(&(lo - z)) && r.contains(&(hi - z)))
}

/// A strided 8-bit operand to pack: `groups` matrices `gstride` apart; element
/// (lane `i`, depth `d`) of group `g` at `g·gstride + i·s_lane + d·s_depth`, minus
/// `zp[g·count + i]` (or `zp[0]` when `zp` has one entry), encoded by `enc`.
#[derive(Debug, Clone)]
pub struct PairSrc {
    pub buf: BufIdx,
    pub scalar: Scalar,
    pub groups: usize,
    pub gstride: i64,
    pub count: usize,
    pub depth: usize,
    pub s_lane: i64,
    pub s_depth: i64,
    pub zp: Vec<i64>,
    pub enc: Enc,
    pub layout: Layout,
}

/// How the words of a packed operand are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[group][panel][q][lane]`, `⌈depth / per⌉` words `q` deep: the register
    /// tile's operands.
    Panels,
    /// A of the AMX tile (`crate::amx`): the depth padded with zero words to
    /// blocks of 16, each block of a panel `[lane][16]` (one tile load).
    AmxA,
    /// B of the AMX tile: `Panels`, the depth padded to blocks of 16 words.
    AmxB,
}

impl Layout {
    /// Words per lane of a panel for `depth` steps, `per` a word.
    pub fn depth_words(self, depth: usize, per: usize) -> usize {
        let kp = depth.div_ceil(per);
        if self == Layout::Panels { kp } else { kp.next_multiple_of(crate::amx::BLOCK_WORDS) }
    }

    /// Where word `q` of lane `lane` lies within its panel of `r` lanes.
    fn at(self, q: usize, lane: usize, r: usize) -> usize {
        match self {
            Layout::AmxA => (q / 16) * 16 * r + lane * 16 + q % 16,
            _ => q * r + lane,
        }
    }

    /// The same in a kernel, from the panel's first word `base`.
    fn slot(self, base: &Expr, q: &Expr, lane: &Expr, r: usize) -> Expr {
        match self {
            Layout::AmxA => base.clone() + (q.clone() / Expr::i(16) * (16 * r) as i64 + lane.clone() * 16 + q.clone() % Expr::i(16)),
            _ => base.clone() + q.clone() * r as i64 + lane.clone(),
        }
    }
}

/// Words of one group of a packed operand with `r`-lane panels `kpd` words
/// deep ([`Layout::depth_words`]).
pub fn packed_words(count: usize, kpd: usize, r: usize) -> usize {
    count.div_ceil(r) * kpd * r
}

/// Two i32 halves as one word: `(lo & 0xffff) | hi << 16`.
fn pair(lo: Expr, hi: Expr) -> Expr {
    let i32c = |v: i64| Expr::int(v, Scalar::I32);
    Expr::bin(BinOp::Or, Expr::bin(BinOp::And, lo, i32c(0xffff)), Expr::bin(BinOp::Shl, hi, i32c(16)))
}

/// Packs `s` into `[group][panel][pair][r]` words: on the host when it is a
/// constant, else with a kernel. Returns the packed i32 buffer.
pub fn pack_pairs(l: &mut Lowerer, node: &str, what: &str, s: &PairSrc, r: usize) -> Result<BufIdx, Error> {
    let pw = s.enc.per();
    let (panels, kp, kpd) = (s.count.div_ceil(r), s.depth.div_ceil(pw), s.layout.depth_words(s.depth, pw));
    let per = packed_words(s.count, kpd, r);
    let len = s.groups * per;
    let zp = |g: usize, i: usize| if s.zp.len() == 1 { s.zp[0] } else { s.zp[g * s.count + i] };
    if let BufKind::Const(bytes) = &l.prog.buffer(s.buf).kind {
        let val = |at: i64| if s.scalar == Scalar::I8 { bytes[at as usize] as i8 as i64 } else { bytes[at as usize] as i64 };
        let mut out = vec![0i32; len];
        for g in 0..s.groups {
            for i in 0..s.count {
                let (p, lane) = (i / r, i % r);
                for q in 0..kpd {
                    let el = |d: usize| {
                        if d >= s.depth {
                            return 0;
                        }
                        let v = val(g as i64 * s.gstride + i as i64 * s.s_lane + d as i64 * s.s_depth);
                        match s.enc {
                            Enc::QuadsU8 { off } => v + off,
                            _ => v - zp(g, i),
                        }
                    };
                    let els: Vec<i64> = (0..pw).map(|j| el(pw * q + j)).collect();
                    out[g * per + p * kpd * r + s.layout.at(q, lane, r)] = s.enc.word_host(&els);
                }
            }
        }
        let bytes = out.iter().flat_map(|x| x.to_le_bytes()).collect();
        return Ok(l.constant(&format!("{node}.{what}_pairs"), Scalar::I32, bytes));
    }
    let src_len = l.prog.buffer(s.buf).len;
    let zb = l.constant(&format!("{node}.{what}_zero_point"), Scalar::I32, s.zp.iter().flat_map(|&z| (z as i32).to_le_bytes()).collect());
    let out = l.temp(&format!("{node}.{what}_pairs"), Scalar::I32, len as u64);
    let mut kb = KernelBuilder::new(l.kernel_name(node, &format!("pack_{what}")));
    let src = kb.buffer("src", s.scalar, src_len, Access::Read);
    let zk = kb.buffer("zero_point", Scalar::I32, s.zp.len() as u64, Access::Read);
    let dst = kb.buffer("dst", Scalar::I32, len as u64, Access::Write);
    let total = (s.groups * panels) as i64;
    let kind = if len as u64 >= l.target.parallel_min_elems && total > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let s2 = s.clone();
    kb.for_("gp", Expr::i(0), Expr::i(total), kind, |kb, gp| {
        let g = kb.let_("g", gp.clone() / Expr::i(panels as i64));
        let p = kb.let_("p", gp.clone() % Expr::i(panels as i64));
        let base = kb.let_("base", g.clone() * s2.gstride + p.clone() * (r as i64 * s2.s_lane));
        let out0 = kb.let_("out", gp.clone() * (kpd * r) as i64);
        let full = s2.count / r;
        let body = |kb: &mut KernelBuilder, guarded: bool| {
            // One word per lane (`odd_tail`: the last pair of an odd depth). Lanes
            // past `count` read lane 0 of the panel (always there) and store 0.
            let lanes = |kb: &mut KernelBuilder, q: &Expr, parts: usize| {
                kb.for_("i", Expr::i(0), Expr::i(r as i64), LoopKind::Serial, |kb, i| {
                    let lane = p.clone() * r as i64 + i.clone();
                    let inside = lane.clone().lt(Expr::i(s2.count as i64));
                    let slot = s2.layout.slot(&out0, q, &i, r);
                    let i = if guarded { kb.let_("ii", Expr::select(inside.clone(), i, Expr::i(0))) } else { i };
                    let z = if s2.zp.len() == 1 {
                        Expr::load(zk, Expr::i(0))
                    } else {
                        Expr::load(zk, g.clone() * s2.count as i64 + p.clone() * r as i64 + i.clone())
                    };
                    let z = kb.let_("z", z);
                    let el = |d: Expr| s2.enc.el(Expr::cast(Scalar::I32, Expr::load(src, base.clone() + i.clone() * s2.s_lane + d * s2.s_depth)), z.clone());
                    let els: Vec<Expr> = (0..parts).map(|j| el(q.clone() * pw as i64 + j as i64)).collect();
                    let w = s2.enc.word(&els);
                    let w = if guarded { Expr::select(inside, w, Expr::int(0, Scalar::I32)) } else { w };
                    kb.store(dst, slot, w);
                });
            };
            kb.for_n("q", (s2.depth / pw) as u64, |kb, q| lanes(kb, &q, pw));
            if !s2.depth.is_multiple_of(pw) {
                lanes(kb, &Expr::i(kp as i64 - 1), s2.depth % pw);
            }
            zero_words(kb, dst, &out0, s2.layout, (kp, kpd), r);
        };
        super::util::by_panel(kb, &p, full, panels, body);
    });
    l.step(node, kb.finish(), vec![s.buf, zb, out]);
    Ok(out)
}

/// Stores zero in the words `kp..kpd` of every lane of the panel at `out0`
/// (the depth padding of the AMX layouts).
pub fn zero_words(kb: &mut KernelBuilder, dst: BufId, out0: &Expr, layout: Layout, (kp, kpd): (usize, usize), r: usize) {
    if kpd == kp {
        return;
    }
    kb.for_("q", Expr::i(kp as i64), Expr::i(kpd as i64), LoopKind::Serial, |kb, q| {
        kb.for_("i", Expr::i(0), Expr::i(r as i64), LoopKind::Serial, |kb, i| {
            kb.store(dst, layout.slot(out0, &q, &i, r), Expr::int(0, Scalar::I32));
        });
    });
}

/// The quads form of a GEMM whose s8 side is a constant.
#[derive(Debug, Clone, Copy)]
pub struct Quads {
    /// The bias with the u8 side's zero point taken out: `bias[c] − zu·Σ_d (v − zp[c])`.
    pub bias: BufIdx,
    /// `dot_quads_u8i8_narrow` (no VNNI; every `v − zp` within ±64).
    pub narrow: bool,
}

/// Whether and how the GEMM runs on quads, its s8 side the constant `buf`
/// (`count` channels of `depth` values, channel `c`'s zero point `zp[c]`; value
/// `(c, d)` at `d·count + c` when `transposed`, else `c·depth + d`), its bias
/// `bias` (a constant, or none) and its u8 side's zero point `zu`. With VNNI
/// whenever every `v − zp` fits i8; without, on hosts with `pmaddubsw`, when
/// every `v − zp` is within ±64, so that no pair of products saturates i16.
/// `None`: pairs.
#[allow(clippy::too_many_arguments)]
pub fn quads(
    l: &mut Lowerer,
    node: &str,
    buf: BufIdx,
    scalar: Scalar,
    (count, depth, transposed): (usize, usize, bool),
    zp: &[i64],
    bias: Option<BufIdx>,
    zu: i64,
) -> Option<Quads> {
    let t = &l.target;
    if !(t.quant_quads || t.quant_quads_narrow || t.quant_amx) || !fits_i8(scalar, zp) {
        return None;
    }
    let narrow = !t.quant_quads && !t.quant_amx;
    let BufKind::Const(bytes) = &l.prog.buffer(buf).kind else { return None };
    if bytes.len() < count * depth {
        return None;
    }
    let val = |at: usize| if scalar == Scalar::I8 { bytes[at] as i8 as i64 } else { bytes[at] as i64 };
    let z = |c: usize| zp[c.min(zp.len().saturating_sub(1))];
    let (mut sums, mut widest) = (vec![0i64; count], 0);
    for (c, sum) in sums.iter_mut().enumerate() {
        for d in 0..depth {
            let v = val(if transposed { d * count + c } else { c * depth + d }) - z(c);
            *sum += v;
            widest = widest.max(v.abs());
        }
    }
    if narrow && widest > 64 {
        return None;
    }
    let b: Vec<i64> = match bias {
        None => vec![0; count],
        Some(buf) => match &l.prog.buffer(buf).kind {
            BufKind::Const(bytes) => bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect(),
            _ => return None,
        },
    };
    if b.len() != count {
        return None;
    }
    let v: Vec<u8> = b.iter().zip(&sums).flat_map(|(b, s)| (b.wrapping_sub(zu.wrapping_mul(*s)) as i32).to_le_bytes()).collect();
    Some(Quads { bias: l.constant(&format!("{node}.quad_bias"), Scalar::I32, v), narrow })
}

/// Where the bias of the product comes from.
#[derive(Debug, Clone, Copy)]
pub enum Bias {
    /// `bias[j]` for column `j` (qmatmul).
    Col(BufIdx),
    /// `bias[g·m + i]` for row `i` of group `g` (qconv: one per output channel).
    Row(BufIdx),
}

/// One quantized GEMM over pair-packed operands: for `bi < batches` (group
/// `g = bi % groups`), `C[bi·m·n + i·n + j] = bias + Σ_p A'[g](i, p)·B'[bi](p, j)`.
#[derive(Debug, Clone)]
pub struct QGemmSpec {
    pub batches: usize,
    pub groups: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Packed A (`MR` panels), one group every `packed_words(m, kpd, MR)` words.
    pub pa: BufIdx,
    /// Packed B (`NR` panels), one batch every `packed_words(n, kpd, NR)` words.
    pub pb: BufIdx,
    pub c: BufIdx,
    pub bias: Option<Bias>,
    /// Quads (`dot_quads_u8i8`, A and B packed with [`Enc::per`] = 4): whether A
    /// is the u8 side (else B is). `None`: pairs.
    pub quads: Option<bool>,
    /// Quads with `dot_quads_u8i8_narrow` ([`Quads::narrow`]).
    pub narrow: bool,
    /// Quads on the AMX tile (`crate::amx`): 32-lane panels, A in
    /// [`Layout::AmxA`], B in [`Layout::AmxB`], the bias a constant.
    pub amx: bool,
    /// With `amx`: `pa` is the u8 A itself, row-major, read in place (`m` a
    /// multiple of 32 and `k` of 64, no offset: [`amx_direct_a`]).
    pub amx_direct_a: bool,
}

/// Whether the AMX GEMM reads the u8 side A (`m × k`, row-major, `enc` its
/// quads encoding) in place: it is already the tile's layout when it needs no
/// offset, no padding rows and no padding depth.
pub fn amx_direct_a(scalar: Scalar, enc: Enc, m: usize, k: usize) -> bool {
    scalar == Scalar::U8 && enc == (Enc::QuadsU8 { off: 0 }) && m.is_multiple_of(crate::amx::TILE) && k.is_multiple_of(64) && k > 0
}

/// Emits the GEMM kernel.
pub fn qgemm(l: &mut Lowerer, node: &str, s: &QGemmSpec) -> Result<(), Error> {
    if s.amx {
        return qgemm_amx(l, node, s);
    }
    let t = l.target.clone();
    let ((mr, nr), w) = (t.own_tile(), t.vector_width as usize);
    let pw = if s.quads.is_some() { 4 } else { 2 };
    let quad = if s.narrow { Intrinsic::DotQuadsU8I8Narrow } else { Intrinsic::DotQuadsU8I8 };
    let (m, n, kp) = (s.m, s.n, s.k.div_ceil(pw));
    let nv = nr / w;
    let (mp, np) = (m.div_ceil(mr), n.div_ceil(nr));
    let (pa_g, pb_b) = (packed_words(m, kp, mr) as i64, packed_words(n, kp, nr) as i64);
    let bl = Blocking::new(&t, s, (mp, np), (t.mc / mr).max(1), (t.nc / nr).max(1));
    // A B panel `KC` pairs deep holds as many depth steps as the f32 GEMM's in
    // half the bytes; the depth blocks take `KC` pairs.
    let kcp = t.kc.max(1);
    let multi_k = kp > kcp;
    let mut kb = KernelBuilder::new(l.kernel_name(node, "qgemm"));
    let len = |b: BufIdx| l.prog.buffer(b).len;
    let pa = kb.buffer("pa", Scalar::I32, len(s.pa), Access::Read);
    let pb = kb.buffer("pb", Scalar::I32, len(s.pb), Access::Read);
    let bias = s.bias.map(|b| match b {
        Bias::Col(x) | Bias::Row(x) => kb.buffer("bias", Scalar::I32, len(x), Access::Read),
    });
    let c = kb.buffer("c", Scalar::I32, len(s.c), if multi_k { Access::ReadWrite } else { Access::Write });
    let acc: Vec<Vec<VarId>> =
        (0..mr).map(|r| (0..nv).map(|v| kb.var(&format!("c{r}{v}"), Ty::vec(Scalar::I32, w as u32))).collect()).collect();
    kb.for_("blk", Expr::i(0), Expr::i(bl.blocks as i64), bl.kind(), |kb, blk| {
        let Block { g, pa_b, pb_base, c_b, ip: (ip_lo, ip_hi), jp: (jp_lo, jp_hi) } = bl.block(kb, &blk, s, pa_g, pb_b);
        let cx = Tile { s, mr, w, c, bias, g: &g, c_b: &c_b, acc: &acc };
        let tiles = |kb: &mut KernelBuilder, pc: Expr, kcv: Expr, first: Option<Expr>| {
            kb.for_("jp", jp_lo.clone(), jp_hi.clone(), LoopKind::Serial, |kb, jp| {
                kb.for_("ip", ip_lo.clone(), ip_hi.clone(), LoopKind::Serial, |kb, ip| {
                    for row in &acc {
                        for &v in row {
                            kb.set(v, Expr::splat(Expr::int(0, Scalar::I32), w as u32));
                        }
                    }
                    let q0 = kb.let_("q0", pa_b.clone() + (ip.clone() * kp as i64 + pc.clone()) * mr as i64);
                    let pb_p = kb.var("pb_p", Ty::I64);
                    kb.set(pb_p, pb_base.clone() + (jp.clone() * kp as i64 + pc.clone()) * nr as i64);
                    let qend = kb.let_("qend", q0.clone() + kcv.clone() * mr as i64);
                    // One pair step: NR/w B vectors, each A word broadcast to all lanes.
                    kb.for_step("q", q0, qend, mr as u64, LoopKind::Serial, |kb, q| {
                        let bvec: Vec<Expr> =
                            (0..nv).map(|v| kb.let_("b", Expr::loadv(pb, Expr::var(pb_p) + (v * w) as i64, w as u32))).collect();
                        for (r, row) in acc.iter().enumerate() {
                            let a = kb.let_("a", Expr::splat(Expr::load(pa, q.clone() + r as i64), w as u32));
                            for (v, &cv) in row.iter().enumerate() {
                                let acc = match s.quads {
                                    None => Expr::var(cv) + Expr::call(Intrinsic::DotPairsI16, vec![a.clone(), bvec[v].clone()]),
                                    Some(true) => Expr::call(quad, vec![Expr::var(cv), a.clone(), bvec[v].clone()]),
                                    Some(false) => Expr::call(quad, vec![Expr::var(cv), bvec[v].clone(), a.clone()]),
                                };
                                kb.set(cv, acc);
                            }
                        }
                        kb.set(pb_p, Expr::var(pb_p) + nr as i64);
                    });
                    cx.store(kb, ip * mr as i64, jp * nr as i64, first.clone(), nr);
                });
            });
        };
        if multi_k {
            kb.for_step("pc", Expr::i(0), Expr::i(kp as i64), kcp as u64, LoopKind::Serial, |kb, pc| {
                let kcv = kb.let_("kc", Expr::bin(BinOp::Min, Expr::i(kcp as i64), Expr::i(kp as i64) - pc.clone()));
                let first = kb.let_("first", pc.clone().eq_(Expr::i(0)));
                tiles(kb, pc, kcv, Some(first));
            });
        } else {
            tiles(kb, Expr::i(0), Expr::i(kp as i64), None);
        }
    });
    let mut args = vec![s.pa, s.pb];
    if let Some(Bias::Col(b) | Bias::Row(b)) = s.bias {
        args.push(b);
    }
    args.push(s.c);
    l.step(node, kb.finish(), args);
    Ok(())
}

/// The GEMM on AMX tiles: per 32×32 tile of C one call of `crate::amx`'s tile
/// over the whole depth, the bias loaded into its accumulators; tiles inside C are
/// stored in place, those at its edges into a scratch tile and copied.
fn qgemm_amx(l: &mut Lowerer, node: &str, s: &QGemmSpec) -> Result<(), Error> {
    const T: usize = crate::amx::TILE;
    let t = l.target.clone();
    let (m, n, kpd) = (s.m, s.n, Layout::AmxA.depth_words(s.k, 4));
    let (mp, np) = (m.div_ceil(T), n.div_ceil(T));
    let (pa_g, pb_b) = (packed_words(m, kpd, T) as i64, packed_words(n, kpd, T) as i64);
    // The bias as the tile loads it: columns padded to whole tiles, or each row's
    // value 16 times, rows padded to whole tiles per group.
    let consts = |l: &Lowerer, b: BufIdx| -> Result<Vec<i32>, Error> {
        match &l.prog.buffer(b).kind {
            BufKind::Const(bytes) => Ok(bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
            _ => Err(super::internal(node, "the AMX GEMM needs a constant bias")),
        }
    };
    let bytes = |v: Vec<i32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let bias = match s.bias {
        None => None,
        Some(Bias::Col(b)) => {
            let mut v = consts(l, b)?;
            v.resize(np * T, 0);
            Some((l.constant(&format!("{node}.amx_bias"), Scalar::I32, bytes(v)), false))
        }
        Some(Bias::Row(b)) => {
            let v = consts(l, b)?;
            let mut rows = vec![0i32; s.groups * mp * T * 16];
            for g in 0..s.groups {
                for i in 0..m {
                    let x = v.get(g * m + i).copied().unwrap_or(0);
                    rows[(g * mp * T + i) * 16..][..16].fill(x);
                }
            }
            Some((l.constant(&format!("{node}.amx_bias_rows"), Scalar::I32, bytes(rows)), true))
        }
    };
    // Blocks of C as the register-tile GEMM makes them, at least 4 A panels a
    // block (kept in L2 while B panels pass).
    let bl = Blocking::new(&t, s, (mp, np), (t.mc / T).max(4), (t.nc / T).max(1));
    let blocks = bl.blocks;
    let edges = !(m.is_multiple_of(T) && n.is_multiple_of(T));
    let scratch = edges.then(|| l.temp(&format!("{node}.amx_edge"), Scalar::I32, (blocks * T * T) as u64));
    let mut kb = KernelBuilder::new(l.kernel_name(node, "qgemm_amx"));
    let len = |b: BufIdx| l.prog.buffer(b).len;
    let a_scalar = if s.amx_direct_a { l.prog.buffer(s.pa).scalar } else { Scalar::I32 };
    let pa = kb.buffer("pa", a_scalar, len(s.pa), Access::Read);
    let pb = kb.buffer("pb", Scalar::I32, len(s.pb), Access::Read);
    // A's panel `ip` starts `a_panel·ip` elements in (packed: words; in place: bytes).
    let (a_panel, a_rs) = if s.amx_direct_a { (T * s.k, Some(Expr::i(s.k as i64))) } else { (kpd * T, None) };
    let bk = bias.map(|(b, _)| kb.buffer("bias", Scalar::I32, len(b), Access::Read));
    let c = kb.buffer("c", Scalar::I32, len(s.c), Access::Write);
    let ek = scratch.map(|e| kb.buffer("edge", Scalar::I32, len(e), Access::ReadWrite));
    let bias_rows = bias.is_some_and(|(_, rows)| rows);
    kb.for_("blk", Expr::i(0), Expr::i(blocks as i64), bl.kind(), |kb, blk| {
        let Block { g, pa_b, pb_base, c_b, ip: (ip_lo, ip_hi), jp: (jp_lo, jp_hi) } = bl.block(kb, &blk, s, pa_g, pb_b);
        let edge_b = kb.let_("edge_b", blk.clone() * (T * T) as i64);
        kb.for_("jp", jp_lo, jp_hi, LoopKind::Serial, |kb, jp| {
            kb.for_("ip", ip_lo.clone(), ip_hi.clone(), LoopKind::Serial, |kb, ip| {
                let i0 = kb.let_("i0", ip.clone() * T as i64);
                let j0 = kb.let_("j0", jp.clone() * T as i64);
                let call = |c: At, ldc: i64| {
                    Stmt::AmxTile(AmxTile {
                        a: At { buf: pa, index: pa_b.clone() + ip.clone() * a_panel as i64 },
                        a_rs: a_rs.clone(),
                        b: At { buf: pb, index: pb_base.clone() + jp.clone() * (kpd * T) as i64 },
                        c,
                        ldc: Expr::i(ldc),
                        bias: bk.map(|b| At {
                            buf: b,
                            index: if bias_rows { (g.clone() * (mp * T) as i64 + i0.clone()) * 16 } else { j0.clone() },
                        }),
                        bias_rows,
                        kblocks: Expr::i((kpd / crate::amx::BLOCK_WORDS) as i64),
                        signed_a: s.quads == Some(false),
                    })
                };
                let inside = |kb: &mut KernelBuilder| kb.push(call(At { buf: c, index: c_b.clone() + i0.clone() * n as i64 + j0.clone() }, n as i64));
                let Some(e) = ek else { return inside(kb) };
                let cond = (i0.clone() + T as i64).le(Expr::i(m as i64)).and((j0.clone() + T as i64).le(Expr::i(n as i64)));
                kb.if_else(cond, inside, |kb| {
                    kb.push(call(At { buf: e, index: edge_b.clone() }, T as i64));
                    let rows = Expr::bin(BinOp::Min, Expr::i(T as i64), Expr::i(m as i64) - i0.clone());
                    let cols = Expr::bin(BinOp::Min, Expr::i(T as i64), Expr::i(n as i64) - j0.clone());
                    kb.for_("r", Expr::i(0), rows, LoopKind::Serial, |kb, r| {
                        kb.for_("j", Expr::i(0), cols.clone(), LoopKind::Serial, |kb, j| {
                            let v = Expr::load(e, edge_b.clone() + r.clone() * T as i64 + j.clone());
                            kb.store(c, c_b.clone() + (i0.clone() + r.clone()) * n as i64 + j0.clone() + j, v);
                        });
                    });
                });
            });
        });
    });
    let mut args = vec![s.pa, s.pb];
    args.extend(bias.map(|(b, _)| b));
    args.push(s.c);
    args.extend(scratch);
    l.step(node, kb.finish(), args);
    Ok(())
}

/// How the quantized GEMMs split C into blocks for the threads: per batch,
/// `mcp` A panels by `ncp` B panels, `ncp` halved until there are 8 blocks
/// (unless the product is too small to be worth threads).
struct Blocking {
    mcp: usize,
    ncp: usize,
    mp: usize,
    np: usize,
    nic: usize,
    njc: usize,
    blocks: usize,
    small: bool,
}

/// A block's place: its group, the starts of its packed A group, packed B batch
/// and C batch, and its ranges of A panels (`ip`) and B panels (`jp`).
struct Block {
    g: Expr,
    pa_b: Expr,
    pb_base: Expr,
    c_b: Expr,
    ip: (Expr, Expr),
    jp: (Expr, Expr),
}

impl Blocking {
    fn new(t: &crate::schedule::Target, s: &QGemmSpec, (mp, np): (usize, usize), mcp: usize, mut ncp: usize) -> Blocking {
        let nic = mp.div_ceil(mcp);
        let small = (2 * s.batches * s.m * s.n * s.k) as u64 <= t.parallel_min_elems * 64;
        while !small && s.batches * nic * np.div_ceil(ncp) < 8 && ncp > 1 {
            ncp = ncp.div_ceil(2);
        }
        let njc = np.div_ceil(ncp);
        Blocking { mcp, ncp, mp, np, nic, njc, blocks: s.batches * nic * njc, small }
    }

    fn kind(&self) -> LoopKind {
        if self.blocks > 1 && !self.small { LoopKind::Parallel } else { LoopKind::Serial }
    }

    /// Block `blk`'s values (`pa_g`, `pb_b`: words per A group, per B batch).
    fn block(&self, kb: &mut KernelBuilder, blk: &Expr, s: &QGemmSpec, pa_g: i64, pb_b: i64) -> Block {
        let per_b = (self.nic * self.njc) as i64;
        let bi = kb.let_("bi", blk.clone() / Expr::i(per_b));
        let rest = kb.let_("rest", blk.clone() % Expr::i(per_b));
        let g = kb.let_("g", bi.clone() % Expr::i(s.groups as i64));
        let pa_b = kb.let_("pa_b", g.clone() * pa_g);
        let pb_base = kb.let_("pb_b", bi.clone() * pb_b);
        let c_b = kb.let_("c_b", bi * (s.m * s.n) as i64);
        let ip_lo = kb.let_("ip_lo", rest.clone() / Expr::i(self.njc as i64) * self.mcp as i64);
        let ip_hi = Expr::bin(BinOp::Min, ip_lo.clone() + self.mcp as i64, Expr::i(self.mp as i64));
        let jp_lo = kb.let_("jp_lo", rest % Expr::i(self.njc as i64) * self.ncp as i64);
        let jp_hi = Expr::bin(BinOp::Min, jp_lo.clone() + self.ncp as i64, Expr::i(self.np as i64));
        Block { g, pa_b, pb_base, c_b, ip: (ip_lo, ip_hi), jp: (jp_lo, jp_hi) }
    }
}

/// What storing one register tile needs.
struct Tile<'a> {
    s: &'a QGemmSpec,
    mr: usize,
    w: usize,
    c: BufId,
    bias: Option<BufId>,
    g: &'a Expr,
    c_b: &'a Expr,
    acc: &'a [Vec<VarId>],
}

impl Tile<'_> {
    /// Stores the tile at (i0, j0): `C = acc + bias`, or with depth blocks
    /// (`first` given) `C = acc + (first ? bias : C)`; whole vectors inside C,
    /// element by element at its edges.
    fn store(&self, kb: &mut KernelBuilder, i0: Expr, j0: Expr, first: Option<Expr>, nr: usize) {
        let (m, n) = (self.s.m as i64, self.s.n as i64);
        let i0 = kb.let_("i0", i0);
        let j0 = kb.let_("j0", j0);
        let edges = !(self.s.m.is_multiple_of(self.mr) && self.s.n.is_multiple_of(nr));
        let cond = (i0.clone() + self.mr as i64).le(Expr::i(m)).and((j0.clone() + nr as i64).le(Expr::i(n)));
        let tile = |kb: &mut KernelBuilder, add_old: bool| {
            let fast = |kb: &mut KernelBuilder| self.part(kb, &i0, &j0, add_old, self.w as u32);
            let slow = |kb: &mut KernelBuilder| self.part(kb, &i0, &j0, add_old, 1);
            if edges { kb.if_else(cond.clone(), fast, slow) } else { fast(kb) }
        };
        match first {
            None => tile(kb, false),
            Some(f) => kb.if_else(f, |kb| tile(kb, false), |kb| tile(kb, true)),
        }
    }

    /// The bias at row `i`, columns from `j`, over `lanes` lanes.
    fn bias(&self, i: &Expr, j: &Expr, lanes: u32) -> Expr {
        let one = |e: Expr| if lanes == 1 { e } else { Expr::splat(e, lanes) };
        match (self.s.bias, self.bias) {
            (Some(Bias::Col(_)), Some(b)) => if lanes == 1 { Expr::load(b, j.clone()) } else { Expr::loadv(b, j.clone(), lanes) },
            (Some(Bias::Row(_)), Some(b)) => one(Expr::load(b, self.g.clone() * self.s.m as i64 + i.clone())),
            _ => one(Expr::int(0, Scalar::I32)),
        }
    }

    /// Stores every row's vectors (`lanes` = w), or every element inside C
    /// (`lanes` = 1): `acc` plus the bias, or plus C's partial sum (`add_old`).
    fn part(&self, kb: &mut KernelBuilder, i0: &Expr, j0: &Expr, add_old: bool, lanes: u32) {
        let (m, n) = (self.s.m as i64, self.s.n as i64);
        for (r, row) in self.acc.iter().enumerate() {
            let i = i0.clone() + r as i64;
            let each = |kb: &mut KernelBuilder| {
                for (v, &cv) in row.iter().enumerate() {
                    let put = |kb: &mut KernelBuilder, j: Expr, x: Expr| {
                        let at = self.c_b.clone() + i.clone() * n + j.clone();
                        let add = if !add_old {
                            self.bias(&i, &j, lanes)
                        } else if lanes == 1 {
                            Expr::load(self.c, at.clone())
                        } else {
                            Expr::loadv(self.c, at.clone(), lanes)
                        };
                        kb.store(self.c, at, x + add);
                    };
                    if lanes > 1 {
                        put(kb, j0.clone() + (v * self.w) as i64, Expr::var(cv));
                    } else {
                        for lane in 0..self.w {
                            let j = j0.clone() + (v * self.w + lane) as i64;
                            kb.if_(j.clone().lt(Expr::i(n)), |kb| put(kb, j, Expr::lane(Expr::var(cv), lane as u32)));
                        }
                    }
                }
            };
            if lanes > 1 { each(kb) } else { kb.if_(i.clone().lt(Expr::i(m)), each) }
        }
    }
}
