//! Lowering of `conv1d/2d/3d` and `fused_conv1d/2d/3d` as GEMMs: per (image, group),
//! `out[m, p] = Σ_k W[m, k]·X_col[k, p]` with `k = (c, kd, kh, kw)` and
//! `p = (od, oh, ow)` (a 2-d conv has depth 1, a 1-d conv height 1 too).
//! The weights are packed into A panels (at compile time when they are params);
//! `X_col` is never built: a kernel packs its B panels straight from the input,
//! with zeros for padding. Bias, residual and activation, or a fused conv's
//! epilogue expression and its extra inputs, are the GEMM's epilogue.

use crate::lower::expr::region;
use crate::lower::gemm::{DirectB, Extra, GemmSpec, OperandA, OperandB, PackSrc, gemm, pack};
use crate::lower::util::Operand;
use crate::lower::{BufIdx, Lowerer, internal};

mod rows;
mod winograd;
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar};
use crate::Error;
use smelt_ir::ops::Conv;
use smelt_ir::{BinaryOp, DType, Expr as IrExpr, Op, TensorType, UnaryOp};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    matches!(op, Op::Conv(_) | Op::FusedConv { .. }) && ins.iter().all(|t| t.dtype == DType::F32) && outs.iter().all(|t| t.dtype == DType::F32)
}

/// A conv in 3-d form: sizes, strides, pads (front, top, left), dilations. A 2-d
/// conv has depth 1, a 1-d conv height 1 too.
#[derive(Debug, Clone, Copy)]
pub struct Geo {
    pub n: usize,
    pub c: usize,
    pub d: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub kd: usize,
    pub kh: usize,
    pub kw: usize,
    pub od: usize,
    pub oh: usize,
    pub ow: usize,
    pub sd: usize,
    pub sh: usize,
    pub sw: usize,
    pub pd: usize,
    pub ph: usize,
    pub pw: usize,
    pub dd: usize,
    pub dh: usize,
    pub dw: usize,
    pub groups: usize,
    /// A real 3-d conv (the depth terms are emitted only then).
    pub deep: bool,
}

/// The 3-d geometry of a conv of spatial rank 1, 2 or 3.
pub fn geometry(c: &Conv, x: &[usize], w: &[usize], out: &[usize]) -> Option<Geo> {
    let r = c.rank();
    if x.len() != r + 2 || w.len() != r + 2 || out.len() != r + 2 || !(1..=3).contains(&r) {
        return None;
    }
    if c.stride.len() != r || c.pad.len() != 2 * r || c.dilation.len() != r {
        return None;
    }
    // Spatial values padded in front with `fill` to three.
    let lift = |v: &[usize], fill: usize| -> [usize; 3] {
        let mut a = [fill; 3];
        a[3 - v.len()..].copy_from_slice(v);
        a
    };
    let [d, h, wd] = lift(&x[2..], 1);
    let [kd, kh, kw] = lift(&w[2..], 1);
    let [od, oh, ow] = lift(&out[2..], 1);
    let [sd, sh, sw] = lift(&c.stride, 1);
    let [pd, ph, pw] = lift(&c.pad[..r], 0);
    let [dd, dh, dw] = lift(&c.dilation, 1);
    Some(Geo {
        n: x[0],
        c: x[1],
        d,
        h,
        w: wd,
        m: w[0],
        kd,
        kh,
        kw,
        od,
        oh,
        ow,
        sd,
        sh,
        sw,
        pd,
        ph,
        pw,
        dd,
        dh,
        dw,
        groups: c.groups.max(1),
        deep: r == 3,
    })
}

/// Packs the B panels of `X_col` for every (image, group): lane `p` (output
/// position), depth `k = (c, kd, kh, kw)`.
///
/// No division per element: a constant table gives each lane's input corner
/// (`oz·sd − pd`, `oy·sh − ph`, `ox·sw − pw`; far out of range past the last
/// position) and each panel a flag "its lanes are consecutive positions of one
/// output row". The kernel walks (panel, c, kz, ki, kj); a flagged panel whose
/// taps all land inside the input row is copied without checks (one vector per
/// `w` lanes with unit width stride, strided scalar loads otherwise), any other is
/// gathered lane by lane with bounds checks.
fn pack_im2col(l: &mut Lowerer, node: &str, x: &Operand, g: &Geo) -> BufIdx {
    let (nr, w) = (l.target.nr, l.target.vector_width as usize);
    let cg = g.c / g.groups;
    let taps = g.kd * g.kh * g.kw;
    let depth = cg * taps;
    let p = g.od * g.oh * g.ow;
    let plane = g.d * g.h * g.w;
    let panels = p.div_ceil(nr);
    let len = (g.n * g.groups * panels * depth * nr) as u64;
    // The table: 3 corners per lane, then one flag per panel.
    const FAR: i64 = -(1 << 40);
    let mut tab = Vec::with_capacity(panels * nr * 3 + panels);
    for q in 0..panels * nr {
        if q < p {
            let (oz, oy, ox) = (q / (g.oh * g.ow), q / g.ow % g.oh, q % g.ow);
            tab.push((oz * g.sd) as i64 - g.pd as i64);
            tab.push((oy * g.sh) as i64 - g.ph as i64);
            tab.push((ox * g.sw) as i64 - g.pw as i64);
        } else {
            tab.extend([FAR; 3]);
        }
    }
    for jp in 0..panels {
        let (q0, q1) = (jp * nr, jp * nr + nr - 1);
        let one_row = q1 < p && q0 / g.ow == q1 / g.ow;
        tab.push(i64::from(one_row));
    }
    let tab = l.constant(&format!("{node}.im2col_tab"), Scalar::I64, tab.iter().flat_map(|v| v.to_le_bytes()).collect());
    let out = l.temp(&format!("{node}.im2col"), Scalar::F32, len);
    let name = l.kernel_name(node, "im2col");
    let mut kb = KernelBuilder::new(name);
    let src = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let tb = kb.buffer("tab", Scalar::I64, (panels * nr * 3 + panels) as u64, Access::Read);
    let dst = kb.buffer("cols", Scalar::F32, len, Access::Write);
    let total = (g.n * g.groups * panels) as i64;
    let kind = if len >= l.target.parallel_min_elems && total > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let g = *g;
    let (hw, h, wd) = ((g.h * g.w) as i64, g.h as i64, g.w as i64);
    kb.for_("t", Expr::i(0), Expr::i(total), kind, |kb, t| {
        let ng = kb.let_("ng", t.clone() / Expr::i(panels as i64));
        let jp = kb.let_("jp", t.clone() % Expr::i(panels as i64));
        // Input channels of this group start at x[n, grp·cg].
        let xb = kb.let_("xb", ng * (cg * plane) as i64);
        let db = kb.let_("db", t * (depth * nr) as i64);
        let lt = kb.let_("lt", jp.clone() * (nr * 3) as i64);
        let flag = kb.let_("flag", Expr::load(tb, jp + (panels * nr * 3) as i64).eq_(Expr::i(1)));
        let z0 = kb.let_("z0", Expr::load(tb, lt.clone()));
        let y0 = kb.let_("y0", Expr::load(tb, lt.clone() + 1));
        let x0 = kb.let_("x0", Expr::load(tb, lt.clone() + 2));
        kb.for_n("c", cg as u64, |kb, c| {
            let cb = kb.let_("cb", xb.clone() + c.clone() * plane as i64);
            kb.for_n("kz", g.kd as u64, |kb, kz| {
                kb.for_n("ki", g.kh as u64, |kb, ki| {
                    kb.for_n("kj", g.kw as u64, |kb, kj| {
                        let k = ((c.clone() * g.kd as i64 + kz.clone()) * g.kh as i64 + ki.clone()) * g.kw as i64 + kj.clone();
                        let dk = kb.let_("dk", db.clone() + k * nr as i64);
                        let oz = g.deep.then(|| kb.let_("oz", kz.clone() * g.dd as i64));
                        let oy = kb.let_("oy", ki.clone() * g.dh as i64);
                        let ox = kb.let_("ox", kj.clone() * g.dw as i64);
                        let iz = oz.clone().map(|oz| kb.let_("iz", z0.clone() + oz));
                        let iy = kb.let_("iy", y0.clone() + oy.clone());
                        let ix = kb.let_("ix", x0.clone() + ox.clone());
                        let mut fast = flag
                            .clone()
                            .and(iy.clone().ge(Expr::i(0)))
                            .and(iy.clone().lt(Expr::i(h)))
                            .and(ix.clone().ge(Expr::i(0)))
                            .and((ix.clone() + ((nr - 1) * g.sw) as i64).lt(Expr::i(wd)));
                        let mut at0 = cb.clone() + iy * wd + ix;
                        if let Some(iz) = iz {
                            fast = fast.and(iz.clone().ge(Expr::i(0))).and(iz.clone().lt(Expr::i(g.d as i64)));
                            at0 = at0 + iz * hw;
                        }
                        kb.if_else(
                            fast,
                            |kb| {
                                let at0 = kb.let_("at0", at0);
                                if g.sw == 1 && nr.is_multiple_of(w) {
                                    for v in 0..nr / w {
                                        let o = (v * w) as i64;
                                        kb.store(dst, dk.clone() + o, Expr::loadv(src, at0.clone() + o, w as u32));
                                    }
                                } else {
                                    // Strided: lane `i` reads `sw·i` further along the row.
                                    for i in 0..nr {
                                        kb.store(dst, dk.clone() + i as i64, Expr::load(src, at0.clone() + (i * g.sw) as i64));
                                    }
                                }
                            },
                            |kb| {
                                for i in 0..nr {
                                    let li = lt.clone() + (3 * i) as i64;
                                    let iy = kb.let_("iy", Expr::load(tb, li.clone() + 1) + oy.clone());
                                    let ix = kb.let_("ix", Expr::load(tb, li.clone() + 2) + ox.clone());
                                    let mut inside = iy
                                        .clone()
                                        .ge(Expr::i(0))
                                        .and(iy.clone().lt(Expr::i(h)))
                                        .and(ix.clone().ge(Expr::i(0)))
                                        .and(ix.clone().lt(Expr::i(wd)));
                                    let mut at = cb.clone() + iy * wd + ix;
                                    if let Some(oz) = &oz {
                                        let iz = kb.let_("iz", Expr::load(tb, li) + oz.clone());
                                        inside = inside.and(iz.clone().ge(Expr::i(0))).and(iz.clone().lt(Expr::i(g.d as i64)));
                                        at = at + iz * hw;
                                    }
                                    let ok = kb.let_("ok", inside);
                                    let at = Expr::select(ok.clone(), at, Expr::i(0));
                                    let v = Expr::select(ok, Expr::load(src, at), Expr::f(0.0));
                                    kb.store(dst, dk.clone() + i as i64, v);
                                }
                            },
                        );
                    });
                });
            });
        });
    });
    l.step(node, kb.finish(), vec![x.buf, tab, out]);
    out
}

/// Whether `X_col` is the input itself, laid out `[n, c, positions]`: a 1×1 conv
/// with unit strides and no padding.
fn pointwise(g: &Geo) -> bool {
    g.kd * g.kh * g.kw == 1 && (g.sd, g.sh, g.sw) == (1, 1, 1) && (g.pd, g.ph, g.pw) == (0, 0, 0) && (g.od, g.oh, g.ow) == (g.d, g.h, g.w)
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let conv = match op {
        Op::Conv(c) | Op::FusedConv { conv: c, .. } => c,
        _ => return Ok(false),
    };
    let e = epilogue(op, ins);
    let out = &outs[0];
    let (x, w) = (&ins[0], &ins[1]);
    let g = geometry(conv, &x.shape, &w.shape, &out.shape).ok_or_else(|| internal(node, "conv shapes"))?;
    let (cg, mg) = (g.c / g.groups, g.m / g.groups);
    let depth = cg * g.kd * g.kh * g.kw;
    let p = g.od * g.oh * g.ow;
    if winograd::applies(l, &g, w) {
        return winograd::lower(l, node, &g, &e, ins, out);
    }
    if rows::applies(l, &g) {
        return rows::lower(l, node, &g, &e, ins, out);
    }
    let (mr, nr) = (l.target.mr, l.target.nr);
    let sa = PackSrc { buf: w.buf, batches: g.groups, bstride: (mg * depth) as i64, count: mg, depth, s_lane: depth as i64, s_depth: 1 };
    let pa = pack(l, node, "w", &sa, mr)?;
    if let Some(d) = direct_plan(&g, nr) {
        return direct(l, node, &g, &d, &e, pa, ins, out);
    }
    let pb = if pointwise(&g) {
        // B is the input: `groups·n` matrices, lane = position, depth = channel.
        let sb = PackSrc { buf: x.buf, batches: g.n * g.groups, bstride: (cg * p) as i64, count: p, depth: cg, s_lane: 1, s_depth: p as i64 };
        pack(l, node, "x", &sb, nr)?
    } else {
        pack_im2col(l, node, x, &g)
    };
    let per_a = (mg.div_ceil(mr) * depth * mr) as i64;
    let per_b = (p.div_ceil(nr) * depth * nr) as i64;
    let extras = extras(ins, &g);
    let spec = GemmSpec {
        batch: vec![g.n, g.groups],
        m: mg,
        n: p,
        k: depth,
        a: OperandA::Packed { pa, batch: vec![0, per_a] },
        b: OperandB::Packed { pb, batch: vec![g.groups as i64 * per_b, per_b] },
        c: out.buf,
        extras,
        epilogue: e,
    };
    gemm(l, node, &spec)?;
    Ok(true)
}

/// How a unit-stride conv reads its input in place ([`direct`]).
pub(super) struct Direct {
    /// The padded extent: the output's plus the kernel's reach.
    pub dp: usize,
    pub hp: usize,
    pub wp: usize,
    /// Elements from one channel's plane to the next: `dp·hp·wp`, or a little
    /// more so that the planes do not fall on the same cache sets.
    pub pitch: usize,
    /// Whether the input is copied into padded planes (else read as it is).
    pub copy: bool,
}

/// Whether and how the conv runs on its input in place: unit strides (then
/// consecutive output positions read consecutive inputs at every tap). The
/// input is read as it is when no padding, panel tail or plane pitch needs a
/// copy; a 1×1 conv that would need one packs its input instead (a copy costs
/// what packing does). Planes whose pitch is a multiple of 64 floats (4 KiB
/// strides and their multiples) would map every channel's row of a depth step
/// to the same L1 sets: copies get a pitch of an odd number of cache lines.
fn direct_plan(g: &Geo, nr: usize) -> Option<Direct> {
    if (g.sd, g.sh, g.sw) != (1, 1, 1) || g.od * g.oh * g.ow == 0 {
        return None;
    }
    let (dp, hp, wp) = (g.od + (g.kd - 1) * g.dd, g.oh + (g.kh - 1) * g.dh, g.ow + (g.kw - 1) * g.dw);
    let v = dp * hp * wp;
    let np = ((g.od - 1) * hp + g.oh - 1) * wp + g.ow;
    let copy = (g.pd, g.ph, g.pw) != (0, 0, 0) || (dp, hp, wp) != (g.d, g.h, g.w) || !np.is_multiple_of(nr) || v.is_multiple_of(64);
    if copy && g.kd * g.kh * g.kw == 1 {
        return None;
    }
    let pitch = if copy {
        let lines = v.div_ceil(16);
        16 * (lines + 1 - lines % 2)
    } else {
        v
    };
    Some(Direct { dp, hp, wp, pitch, copy })
}

/// The epilogue's inputs in the GEMM's `[n, groups, mg, positions]` layout: the
/// bias (per output channel), then the residual or the fused epilogue's extra
/// inputs (each laid out as the output), when given.
fn extras(ins: &[Operand], g: &Geo) -> Vec<Extra> {
    let (mg, p) = (g.m / g.groups, g.od * g.oh * g.ow);
    let mut v = vec![];
    if let Some(b) = ins.get(2) {
        v.push(Extra { buf: b.buf, off: 0, batch: vec![0, mg as i64], rs: 1, cs: 0 });
    }
    for r in ins.iter().skip(3) {
        v.push(Extra { buf: r.buf, off: 0, batch: vec![(g.m * p) as i64, (mg * p) as i64], rs: p as i64, cs: 1 });
    }
    v
}

/// The epilogue of a conv over `$0` the product, `$1` the bias when given and
/// `$2…` the inputs after it (the residual, or a fused epilogue's extras, each
/// laid out as the output): `act($0 + $1 + $2)`, or the fused conv's
/// `epilogue` with its `$0` (the conv with its bias) as `$0 + $1`.
pub(super) fn epilogue(op: &Op, ins: &[Operand]) -> IrExpr {
    match op {
        Op::FusedConv { epilogue: Some(e), .. } => shift(e),
        Op::FusedConv { activation, .. } => {
            let mut e = IrExpr::Input(0);
            for n in 1..ins.len().clamp(2, 4) - 1 {
                e = IrExpr::binary(BinaryOp::Add, e, IrExpr::Input(n));
            }
            if *activation != UnaryOp::Identity {
                e = IrExpr::unary(*activation, e);
            }
            e
        }
        _ if ins.len() > 2 => IrExpr::binary(BinaryOp::Add, IrExpr::Input(0), IrExpr::Input(1)),
        _ => IrExpr::Input(0),
    }
}

/// A fused conv's epilogue over the product, the bias and the extras: `$0` →
/// `$0 + $1`, `$i` → `$(i+1)`.
fn shift(e: &IrExpr) -> IrExpr {
    match e {
        IrExpr::Input(0) => IrExpr::binary(BinaryOp::Add, IrExpr::Input(0), IrExpr::Input(1)),
        IrExpr::Input(i) => IrExpr::Input(i + 1),
        IrExpr::Const(c) => IrExpr::Const(*c),
        IrExpr::Unary(u, x) => IrExpr::unary(*u, shift(x)),
        IrExpr::Binary(b, x, y) => IrExpr::binary(*b, shift(x), shift(y)),
        IrExpr::Where(c, x, y) => IrExpr::Where(Box::new(shift(c)), Box::new(shift(x)), Box::new(shift(y))),
    }
}

/// A unit-stride conv as a GEMM whose B is read in place (no im2col): the input
/// is copied into a zero-bordered buffer `xp` of `Dp×Hp×Wp` planes (the output
/// extent plus the kernel's reach; no copy for a 1×1 conv without padding whose
/// positions fill whole panels) so that output position `(oz, oy, ox)`, as the
/// padded flat index `q = (oz·Hp + oy)·Wp + ox`, reads tap `(c, kz, ki, kj)` at
/// `xp[q + koff]` with `koff = c·V + kz·dd·Hp·Wp + ki·dh·Wp + kj·dw`. The GEMM
/// computes all `q < N' = ((OD−1)·Hp + OH−1)·Wp + OW` (columns past a row's
/// `OW` are thrown away) into a scratch that a second kernel crops into the output
/// with the epilogue — unless no thrown-away column lies between real ones (one
/// output row per image, as in every 1-d conv, or `Hp = OH` and `Wp = OW`), when
/// the GEMM writes the output itself, bias, residual and activation included.
#[allow(clippy::too_many_arguments)]
fn direct(l: &mut Lowerer, node: &str, g: &Geo, d: &Direct, e: &IrExpr, pa: BufIdx, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, nr) = (&ins[0], l.target.nr);
    let (cg, mg) = (g.c / g.groups, g.m / g.groups);
    let depth = cg * g.kd * g.kh * g.kw;
    let (hp, wp, v) = (d.hp, d.wp, d.pitch);
    let np = ((g.od - 1) * hp + g.oh - 1) * wp + g.ow;
    // The scratch's columns are the output's positions when no padded column
    // lies between two real ones: one output row per image (a 1-d conv), or a
    // padded extent that is the output's.
    let same = np == g.od * g.oh * g.ow;
    let xp = if d.copy { pad_input(l, node, x, g, d, nr) } else { x.buf };
    let mut koff = Vec::with_capacity(depth);
    for c in 0..cg {
        for kz in 0..g.kd {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    koff.push((c * v + (kz * g.dd * hp + ki * g.dh) * wp + kj * g.dw) as i64);
                }
            }
        }
    }
    let koff = l.constant(&format!("{node}.koff"), Scalar::I64, koff.iter().flat_map(|v| v.to_le_bytes()).collect());
    let per_a = (mg.div_ceil(l.target.mr) * depth * l.target.mr) as i64;
    // The GEMM writes the output with the epilogue when the layouts agree, else a
    // scratch that `crop` finishes.
    let (c, extras) = if same { (out.buf, extras(ins, g)) } else { (l.temp(&format!("{node}.cols"), Scalar::F32, (g.n * g.m * np) as u64), vec![]) };
    let spec = GemmSpec {
        batch: vec![g.n, g.groups],
        m: mg,
        n: np,
        k: depth,
        a: OperandA::Packed { pa, batch: vec![0, per_a] },
        b: OperandB::InPlace(DirectB { x: xp, batch: vec![(g.c * v) as i64, (cg * v) as i64], koff }),
        c,
        extras,
        epilogue: if same { e.clone() } else { IrExpr::Input(0) },
    };
    gemm(l, node, &spec)?;
    if !same {
        crop(l, node, g, (hp, wp, np), c, ins, out, e);
    }
    Ok(true)
}

/// Copies `x` into `Dp×Hp×Wp` planes per (image, channel) with zeros where the
/// window reaches past the input, and `nr` zeros after the last plane (the GEMM's
/// last panel reads that far).
pub(super) fn pad_input(l: &mut Lowerer, node: &str, x: &Operand, g: &Geo, d: &Direct, nr: usize) -> BufIdx {
    let (dp, hp, wp) = (d.dp, d.hp, d.wp);
    // Rows of the padded planes, then the zeros of each plane's pitch tail, then
    // the `nr` zeros after the last plane, as "row" `rows`.
    let planes = g.n * g.c;
    let rows = planes * dp * hp;
    let tail = d.pitch - dp * hp * wp;
    let len = (planes * d.pitch + nr) as u64;
    let out = l.temp(&format!("{node}.x_padded"), Scalar::F32, len);
    let name = l.kernel_name(node, "pad");
    let mut kb = KernelBuilder::new(name);
    let src = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let dst = kb.buffer("xp", Scalar::F32, len, Access::Write);
    let kind = if len >= l.target.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let vw = LoopKind::Vectorized(l.target.vector_width);
    let g = *g;
    kb.for_("r", Expr::i(0), Expr::i(rows as i64 + 1), kind, |kb, r| {
        let last = r.clone().eq_(Expr::i(rows as i64));
        kb.if_else(
            last,
            |kb| {
                let end = (planes * d.pitch) as i64;
                kb.for_("i", Expr::i(0), Expr::i(nr as i64), vw, |kb, i| kb.store(dst, i + end, Expr::f(0.0)));
                if tail > 0 {
                    kb.for_n("pl", planes as u64, |kb, pl| {
                        let o = kb.let_("o", pl * d.pitch as i64 + (dp * hp * wp) as i64);
                        kb.for_("i", Expr::i(0), Expr::i(tail as i64), vw, |kb, i| kb.store(dst, o.clone() + i, Expr::f(0.0)));
                    });
                }
            },
            |kb| {
                // Row r of plane r / (Dp·Hp) starts at plane·pitch + (r % (Dp·Hp))·Wp.
                let o = kb.let_("o", r.clone() / Expr::i((dp * hp) as i64) * d.pitch as i64 + r.clone() % Expr::i((dp * hp) as i64) * wp as i64);
                // Row r = ((n·C + c)·Dp + z)·Hp + y of the padded input.
                let y = kb.let_("y", r.clone() % Expr::i(hp as i64) - Expr::i(g.ph as i64));
                let zc = kb.let_("zc", r.clone() / Expr::i(hp as i64));
                let z = kb.let_("z", zc.clone() % Expr::i(dp as i64) - Expr::i(g.pd as i64));
                let nc = kb.let_("nc", zc / Expr::i(dp as i64));
                let inside = y.clone().ge(Expr::i(0)).and(y.clone().lt(Expr::i(g.h as i64))).and(z.clone().ge(Expr::i(0))).and(z.clone().lt(Expr::i(g.d as i64)));
                let base = kb.let_("base", ((nc * g.d as i64 + z) * g.h as i64 + y) * g.w as i64 - Expr::i(g.pw as i64));
                // Columns [lo, hi) of the padded row come from the input row.
                let lo = g.pw.min(wp) as i64;
                let hi = (g.pw + g.w).min(wp) as i64;
                kb.if_else(
                    inside,
                    |kb| {
                        kb.for_("i", Expr::i(0), Expr::i(lo), vw, |kb, i| kb.store(dst, o.clone() + i, Expr::f(0.0)));
                        kb.for_("i", Expr::i(lo), Expr::i(hi), vw, |kb, i| kb.store(dst, o.clone() + i.clone(), Expr::load(src, base.clone() + i)));
                        kb.for_("i", Expr::i(hi), Expr::i(wp as i64), vw, |kb, i| kb.store(dst, o.clone() + i, Expr::f(0.0)));
                    },
                    |kb| kb.for_("i", Expr::i(0), Expr::i(wp as i64), vw, |kb, i| kb.store(dst, o.clone() + i, Expr::f(0.0))),
                );
            },
        );
    });
    l.step(node, kb.finish(), vec![x.buf, out]);
    out
}

/// Crops the GEMM's padded columns into the output, applying the epilogue: row
/// `r = n·M + m` (the same in both layouts), column `(oz·Hp + oy)·Wp + ox` of the
/// scratch to position `(oz, oy, ox)` of the output.
#[allow(clippy::too_many_arguments)]
fn crop(l: &mut Lowerer, node: &str, g: &Geo, (hp, wp, np): (usize, usize, usize), cols: BufIdx, ins: &[Operand], out: &Operand, e: &IrExpr) {
    let p = g.od * g.oh * g.ow;
    let rows = g.n * g.m;
    let name = l.kernel_name(node, "crop");
    let mut kb = KernelBuilder::new(name);
    let len = |l: &Lowerer, b: BufIdx| l.prog.buffer(b).len;
    let src = kb.buffer("cols", Scalar::F32, len(l, cols), Access::Read);
    let bias = ins.get(2).map(|b| kb.buffer("bias", Scalar::F32, b.len(), Access::Read));
    let res: Vec<_> = ins.iter().skip(3).map(|r| kb.buffer("residual", Scalar::F32, r.len(), Access::Read)).collect();
    let dst = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let kind = if (rows * p) as u64 >= l.target.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let vw = LoopKind::Vectorized(l.target.vector_width);
    let g = *g;
    let e = e.clone();
    kb.for_("r", Expr::i(0), Expr::i(rows as i64), kind, |kb, r| {
        let bv = bias.map(|b| kb.let_("bias", Expr::load(b, r.clone() % Expr::i(g.m as i64))));
        kb.for_n("z", g.od as u64, |kb, z| {
            kb.for_n("y", g.oh as u64, |kb, y| {
                let so = kb.let_("so", r.clone() * np as i64 + (z.clone() * hp as i64 + y.clone()) * wp as i64);
                let doff = kb.let_("do", r.clone() * p as i64 + (z.clone() * g.oh as i64 + y) * g.ow as i64);
                kb.for_("x", Expr::i(0), Expr::i(g.ow as i64), vw, |kb, xi| {
                    let mut vals = vec![Expr::load(src, so.clone() + xi.clone())];
                    if let Some(b) = &bv {
                        vals.push(b.clone());
                    }
                    for &rb in &res {
                        vals.push(Expr::load(rb, doff.clone() + xi.clone()));
                    }
                    let y = region(kb, &e, &vals, 1);
                    kb.store(dst, doff.clone() + xi, y);
                });
            });
        });
    });
    let mut args = vec![cols];
    args.extend(ins.iter().skip(2).map(|b| b.buf));
    args.push(out.buf);
    l.step(node, kb.finish(), args);
}
