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
    matches!(op, Op::Conv(_) | Op::FusedConv { .. })
        && ins.iter().all(|t| t.dtype == DType::F32)
        && outs.iter().all(|t| t.dtype == DType::F32)
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
fn pack_im2col(l: &mut Lowerer, node: &str, x: &Operand, g: &Geo) -> BufIdx {
    let nr = l.target.nr;
    let cg = g.c / g.groups;
    let taps = g.kd * g.kh * g.kw;
    let depth = cg * taps;
    let p = g.od * g.oh * g.ow;
    let plane = g.d * g.h * g.w;
    let panels = p.div_ceil(nr);
    let len = (g.n * g.groups * panels * depth * nr) as u64;
    let out = l.temp(&format!("{node}.im2col"), Scalar::F32, len);
    let name = l.kernel_name(node, "im2col");
    let mut kb = KernelBuilder::new(name);
    let src = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let dst = kb.buffer("cols", Scalar::F32, len, Access::Write);
    let total = (g.n * g.groups * panels) as i64;
    let kind = if len >= l.target.parallel_min_elems && total > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let g = *g;
    kb.for_("t", Expr::i(0), Expr::i(total), kind, |kb, t| {
        let ng = kb.let_("ng", t.clone() / Expr::i(panels as i64));
        let jp = kb.let_("jp", t.clone() % Expr::i(panels as i64));
        // Input channels of this group start at x[n, grp·cg].
        let xb = kb.let_("xb", ng.clone() * (cg * plane) as i64);
        let db = kb.let_("db", t * (depth * nr) as i64);
        kb.for_n("k", depth as u64, |kb, k| {
            let c = k.clone() / Expr::i(taps as i64);
            let r = k.clone() % Expr::i(taps as i64);
            let kz = g.deep.then(|| kb.let_("kz", r.clone() / Expr::i((g.kh * g.kw) as i64)));
            let r = if g.deep { r % Expr::i((g.kh * g.kw) as i64) } else { r };
            let ki = kb.let_("ki", r.clone() / Expr::i(g.kw as i64));
            let kj = kb.let_("kj", r % Expr::i(g.kw as i64));
            let cb = kb.let_("cb", xb.clone() + c * plane as i64);
            kb.for_("i", Expr::i(0), Expr::i(nr as i64), LoopKind::Unrolled, |kb, i| {
                let pos = jp.clone() * nr as i64 + i.clone();
                let oz = g.deep.then(|| pos.clone() / Expr::i((g.oh * g.ow) as i64));
                let pin = if g.deep { pos.clone() % Expr::i((g.oh * g.ow) as i64) } else { pos.clone() };
                let oy = pin.clone() / Expr::i(g.ow as i64);
                let ox = pin % Expr::i(g.ow as i64);
                let iz = oz.zip(kz.clone()).map(|(oz, kz)| kb.let_("iz", oz * g.sd as i64 + kz * g.dd as i64 - Expr::i(g.pd as i64)));
                let iy = kb.let_("iy", oy * g.sh as i64 + ki.clone() * g.dh as i64 - Expr::i(g.ph as i64));
                let ix = kb.let_("ix", ox * g.sw as i64 + kj.clone() * g.dw as i64 - Expr::i(g.pw as i64));
                let mut inside = pos.lt(Expr::i(p as i64))
                    .and(iy.clone().ge(Expr::i(0)))
                    .and(iy.clone().lt(Expr::i(g.h as i64)))
                    .and(ix.clone().ge(Expr::i(0)))
                    .and(ix.clone().lt(Expr::i(g.w as i64)));
                let mut at = cb.clone() + iy * g.w as i64 + ix;
                if let Some(iz) = iz {
                    inside = inside.and(iz.clone().ge(Expr::i(0))).and(iz.clone().lt(Expr::i(g.d as i64)));
                    at = at + iz * (g.h * g.w) as i64;
                }
                let ok = kb.let_("ok", inside);
                let at = Expr::select(ok.clone(), at, Expr::i(0));
                let v = Expr::select(ok, Expr::load(src, at), Expr::f(0.0));
                kb.store(dst, db.clone() + k.clone() * nr as i64 + i, v);
            });
        });
    });
    l.step(node, kb.finish(), vec![x.buf, out]);
    out
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
    let pb = pack_im2col(l, node, x, &g);
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
