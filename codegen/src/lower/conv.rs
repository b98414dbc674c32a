//! Lowering of `conv1d/2d/3d` and `fused_conv1d/2d/3d` as GEMMs: per (image, group),
//! `out[m, p] = Σ_k W[m, k]·X_col[k, p]` with `k = (c, kd, kh, kw)` and
//! `p = (od, oh, ow)` (a 2-d conv has depth 1, a 1-d conv height 1 too).
//! The weights are packed into A panels (at compile time when they are params);
//! `X_col` is never built: a kernel packs its B panels straight from the input,
//! with zeros for padding. Bias, residual and activation are the epilogue.

use super::gemm::{Extra, GemmSpec, PackSrc, gemm, pack};
use super::util::Operand;
use super::{BufIdx, Lowerer, internal};
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
    let (conv, act) = match op {
        Op::Conv(c) => (c, UnaryOp::Identity),
        Op::FusedConv { conv, activation } => (conv, *activation),
        _ => return Ok(false),
    };
    let out = &outs[0];
    let (x, w) = (&ins[0], &ins[1]);
    let g = geometry(conv, &x.shape, &w.shape, &out.shape).ok_or_else(|| internal(node, "conv shapes"))?;
    let (cg, mg) = (g.c / g.groups, g.m / g.groups);
    let depth = cg * g.kd * g.kh * g.kw;
    let p = g.od * g.oh * g.ow;
    let (mr, nr) = (l.target.mr, l.target.nr);
    let sa = PackSrc { buf: w.buf, batches: g.groups, bstride: (mg * depth) as i64, count: mg, depth, s_lane: depth as i64, s_depth: 1 };
    let pa = pack(l, node, "w", &sa, mr)?;
    let pb = if pointwise(&g) {
        // B is the input: `groups·n` matrices, lane = position, depth = channel.
        let sb = PackSrc { buf: x.buf, batches: g.n * g.groups, bstride: (cg * p) as i64, count: p, depth: cg, s_lane: 1, s_depth: p as i64 };
        pack(l, node, "x", &sb, nr)?
    } else {
        pack_im2col(l, node, x, &g)
    };
    let per_a = (mg.div_ceil(mr) * depth * mr) as i64;
    let per_b = (p.div_ceil(nr) * depth * nr) as i64;
    let mut extras = vec![];
    let mut e = IrExpr::Input(0);
    if let Some(b) = ins.get(2) {
        extras.push(Extra { buf: b.buf, off: 0, batch: vec![0, mg as i64], rs: 1, cs: 0 });
        e = IrExpr::binary(BinaryOp::Add, e, IrExpr::Input(extras.len()));
    }
    if let Some(r) = ins.get(3) {
        extras.push(Extra { buf: r.buf, off: 0, batch: vec![(g.m * p) as i64, (mg * p) as i64], rs: p as i64, cs: 1 });
        e = IrExpr::binary(BinaryOp::Add, e, IrExpr::Input(extras.len()));
    }
    if act != UnaryOp::Identity {
        e = IrExpr::unary(act, e);
    }
    let spec = GemmSpec {
        batch: vec![g.n, g.groups],
        m: mg,
        n: p,
        k: depth,
        pa,
        pa_batch: vec![0, per_a],
        pb,
        pb_batch: vec![g.groups as i64 * per_b, per_b],
        c: out.buf,
        extras,
        epilogue: e,
    };
    gemm(l, node, &spec)?;
    Ok(true)
}
