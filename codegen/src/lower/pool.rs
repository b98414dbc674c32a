//! Lowering of pooling: windowed max and average (1-d, 2-d and 3-d, padding,
//! dilation, ceil mode, `count_include_pad`, max with the indices of its maxima, as
//! ONNX) as direct loops over each output element's window, and global pooling as a
//! vector reduction per plane (on the GPU, a workgroup per plane when planes are
//! large: `lower::coop`). On the CPU a parallel iteration is a plane; on the GPU
//! it is one output, and a large window (≥ [`coop::POOL_WINDOW`] taps) over few
//! outputs is a workgroup per output, its taps a cooperative reduction.

use super::util::{RowOp, reduce_row, Operand};
use super::{coop, Lowerer, internal};
use crate::kernel::{Access, BinOp, BufId, CmpOp, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::ops::{Pool, PoolKind, StorageOrder};
use smelt_ir::{DType, Op, TensorType};

/// f32 pooling of 1 to 3 spatial dims; max pooling's indices are i64.
pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    let rank_ok = match op {
        Op::Pool(p) => (1..=3).contains(&p.rank()),
        Op::GlobalPool(_) => true,
        _ => false,
    };
    rank_ok
        && ins.iter().all(|t| t.dtype == DType::F32)
        && outs.iter().enumerate().all(|(i, t)| t.dtype == if i == 0 { DType::F32 } else { DType::I64 })
}

/// One spatial dim of a window: (kernel, stride, pad begin, pad end, dilation).
type Dim1 = (usize, usize, usize, usize, usize);

fn geometry(p: &Pool) -> Option<Vec<Dim1>> {
    let r = p.rank();
    if !(1..=3).contains(&r) || p.stride.len() != r || p.pad.len() != 2 * r || p.dilation.len() != r {
        return None;
    }
    Some((0..r).map(|i| (p.kernel[i], p.stride[i], p.pad[i], p.pad[r + i], p.dilation[i])).collect())
}

/// Loop names of the output positions, kernel taps and input coordinates of the
/// last `r` of the dims (z, y, x).
fn names(r: usize) -> ([&'static str; 3], [&'static str; 3], [&'static str; 3]) {
    let pick = |a: [&'static str; 3]| {
        let mut v = [""; 3];
        v[..r].copy_from_slice(&a[3 - r..]);
        v
    };
    (pick(["oz", "oy", "ox"]), pick(["kz", "ky", "kx"]), pick(["iz", "iy", "ix"]))
}

/// Nested loops over `dims` named `names`, the body getting every index.
fn nest(kb: &mut KernelBuilder, dims: &[usize], names: &[&str], acc: Vec<Expr>, body: &mut dyn FnMut(&mut KernelBuilder, &[Expr])) {
    if acc.len() == dims.len() {
        return body(kb, &acc);
    }
    let d = acc.len();
    kb.for_n(names[d], dims[d] as u64, |kb, i| {
        let mut a = acc.clone();
        a.push(i);
        nest(kb, dims, names, a, body);
    });
}

/// Row-major strides of a shape.
fn strides(s: &[usize]) -> Vec<usize> {
    (0..s.len()).map(|d| s[d + 1..].iter().product()).collect()
}

/// `Σ idx[d]·strides[d]` without multiplying by 1.
fn offset(base: Expr, idx: &[Expr], strides: &[usize]) -> Expr {
    idx.iter().zip(strides).fold(base, |a, (i, &s)| if s == 1 { a + i.clone() } else { a + i.clone() * s as i64 })
}

/// Nested loops over the kernel taps of output position `o`, the body getting the
/// input coordinate `o·stride + k·dilation − pad_begin` of every dim.
fn nest_taps(
    kb: &mut KernelBuilder,
    geo: &[Dim1],
    knames: &[&str],
    inames: &[&str],
    o: &[Expr],
    acc: Vec<Expr>,
    body: &mut dyn FnMut(&mut KernelBuilder, &[Expr]),
) {
    if acc.len() == geo.len() {
        return body(kb, &acc);
    }
    let d = acc.len();
    let (k, s, pb, _, dil) = geo[d];
    kb.for_n(knames[d], k as u64, |kb, kk| {
        let i = kb.let_(inames[d], o[d].clone() * s as i64 + kk * dil as i64 - Expr::i(pb as i64));
        let mut a = acc.clone();
        a.push(i);
        nest_taps(kb, geo, knames, inames, o, a, body);
    });
}

/// The output positions `[lo, hi)` of one dim whose windows lie wholly inside
/// the input: `o·stride − pad ≥ 0` and `o·stride − pad + (k − 1)·dilation < n`.
fn interior(k: usize, stride: usize, pad: usize, dil: usize, n: usize, on: usize) -> (usize, usize) {
    let lo = pad.div_ceil(stride);
    let reach = (k - 1) * dil;
    // The largest o with o·stride + reach < n + pad.
    let hi = if n + pad > reach { ((n + pad - reach - 1) / stride + 1).min(on) } else { 0 };
    (lo.min(hi), hi)
}

/// What a pooling window computes: its geometry, the input's spatial dims and
/// strides (row-major, and column-major for `indices`), the kind, and the
/// buffers.
struct Win<'a> {
    geo: &'a [Dim1],
    xs: &'a [usize],
    xst: &'a [usize],
    cst: &'a [usize],
    kind: PoolKind,
    include: bool,
    order: Option<StorageOrder>,
    xb: BufId,
    y: BufId,
    ib: Option<BufId>,
}

/// One output at position `o` of the plane at `base`, stored at `at`: a serial
/// loop nest over the window's taps, in window order (as the interpreter).
fn window_serial(kb: &mut KernelBuilder, w: &Win, o: &[Expr], base: &Expr, at: Expr) {
    let r = w.geo.len();
    let (_, knames, inames) = names(r);
    let (kind, include, xb, xs, geo) = (w.kind, w.include, w.xb, w.xs, w.geo);
    let acc = kb.var("acc", Ty::F32);
    let real = kb.var("real", Ty::F32);
    let padded = kb.var("padded", Ty::F32);
    let arg = w.ib.map(|_| kb.var("arg", Ty::I64));
    kb.set(acc, Expr::f(if kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 }));
    kb.set(real, Expr::f(0.0));
    kb.set(padded, Expr::f(0.0));
    if let Some(a) = arg {
        kb.set(a, Expr::i(-1));
    }
    nest_taps(kb, geo, &knames[..r], &inames[..r], o, vec![], &mut |kb, ii| {
        let inside = ii.iter().zip(xs).map(|(i, &n)| i.clone().ge(Expr::i(0)).and(i.clone().lt(Expr::i(n as i64))));
        let inside = inside.reduce(Expr::and).expect("rank ≥ 1");
        let inside = kb.let_("inside", inside);
        if include {
            let in_pad = ii.iter().zip(geo).zip(xs).map(|((i, g), &n)| i.clone().lt(Expr::i((n + g.3) as i64)));
            let in_pad = in_pad.reduce(Expr::and).expect("rank ≥ 1");
            kb.set(padded, Expr::var(padded) + Expr::cast(Scalar::F32, in_pad));
        }
        kb.if_(inside, |kb| {
            let v = Expr::load(xb, offset(base.clone(), ii, w.xst));
            if let Some(a) = arg {
                // The first maximum in window order; a NaN wins and stays.
                let v = kb.let_("v", v.clone());
                let acc_ok = Expr::cmp(CmpOp::Eq, Expr::var(acc), Expr::var(acc));
                let better = Expr::bin(BinOp::Or, v.clone().gt(Expr::var(acc)), Expr::cmp(CmpOp::Ne, v.clone(), v.clone()));
                let upd = Expr::bin(BinOp::Or, Expr::var(a).lt(Expr::i(0)), acc_ok.and(better));
                let cs = if w.order == Some(StorageOrder::ColMajor) { w.cst } else { w.xst };
                kb.set(a, Expr::select(upd, offset(Expr::i(0), ii, cs), Expr::var(a)));
                kb.set(acc, Expr::bin(BinOp::Max, Expr::var(acc), v));
            } else {
                let a = match kind {
                    PoolKind::Max => Expr::bin(BinOp::Max, Expr::var(acc), v),
                    PoolKind::Avg => Expr::var(acc) + v,
                };
                kb.set(acc, a);
            }
            kb.set(real, Expr::var(real) + Expr::f(1.0));
        });
    });
    let res = match kind {
        PoolKind::Max => Expr::var(acc),
        PoolKind::Avg => Expr::var(acc) / Expr::var(if include { padded } else { real }),
    };
    kb.store(w.y, at.clone(), res);
    if let (Some(ib), Some(a)) = (w.ib, arg) {
        // A window wholly in the padding keeps −1, as in the interpreter.
        let flat = Expr::select(Expr::var(a).lt(Expr::i(0)), Expr::i(-1), Expr::var(a) + base.clone());
        kb.store(ib, at, flat);
    }
}

/// One output whose window lies wholly inside the input (no indices wanted): the
/// taps unrolled from the window's corner, without bounds checks.
fn window_fast(kb: &mut KernelBuilder, w: &Win, o: &[Expr], base: &Expr, at: Expr) {
    let (r, geo) = (w.geo.len(), w.geo);
    let acc = kb.var("acc", Ty::F32);
    kb.set(acc, Expr::f(if w.kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 }));
    let corner: Vec<Expr> = o.iter().zip(geo).map(|(oi, g)| oi.clone() * g.1 as i64 - Expr::i(g.2 as i64)).collect();
    let at0 = kb.let_("at0", offset(base.clone(), &corner, w.xst));
    let taps: usize = geo.iter().map(|g| g.0).product();
    for tap in 0..taps {
        // The tap's offset: `k_d·dilation_d` along every dim.
        let (mut rest, mut off) = (tap, 0usize);
        for d in (0..r).rev() {
            off += rest % geo[d].0 * geo[d].4 * w.xst[d];
            rest /= geo[d].0;
        }
        let v = Expr::load(w.xb, at0.clone() + off as i64);
        let a = match w.kind {
            PoolKind::Max => Expr::bin(BinOp::Max, Expr::var(acc), v),
            PoolKind::Avg => Expr::var(acc) + v,
        };
        kb.set(acc, a);
    }
    // Every tap is real (and none overhangs), so both averages divide by `taps`.
    let res = match w.kind {
        PoolKind::Max => Expr::var(acc),
        PoolKind::Avg => Expr::var(acc) / Expr::f(taps as f32),
    };
    kb.store(w.y, at, res);
}

/// The input coordinates of tap `j` (window order, row-major over the kernel
/// dims) of output `o`, and whether it lies inside the input.
fn tap(kb: &mut KernelBuilder, w: &Win, o: &[Expr], j: &Expr) -> (Vec<Expr>, Expr) {
    let r = w.geo.len();
    let (_, _, inames) = names(r);
    let ks: Vec<usize> = w.geo.iter().map(|g| g.0).collect();
    let kst = strides(&ks);
    let mut ii = vec![];
    for d in 0..r {
        let (k, s, pb, _, dil) = w.geo[d];
        let kd = if kst[d] == 1 { j.clone() } else { j.clone() / Expr::i(kst[d] as i64) };
        let kd = if d == 0 { kd } else { kd % Expr::i(k as i64) };
        ii.push(kb.let_(inames[d], o[d].clone() * s as i64 + kd * dil as i64 - Expr::i(pb as i64)));
    }
    let inside = ii.iter().zip(w.xs).map(|(i, &n)| i.clone().ge(Expr::i(0)).and(i.clone().lt(Expr::i(n as i64))));
    let inside = inside.reduce(Expr::and).expect("rank ≥ 1");
    let inside = kb.let_("inside", inside);
    (ii, inside)
}

/// One output whose window is spread over a workgroup (`lower::coop`): the
/// taps `j < Πkernel` of a `reduce` loop, each decomposed into its kernel
/// position; a tap in the padding reads the plane's first element and is
/// replaced by the reduction's identity. Max pooling's index is a second
/// reduction: the least tap whose value is the maximum (the first NaN when the
/// maximum is NaN), as the interpreter's first maximum in window order. Average
/// pooling divides by the count of real (or, with `count_include_pad`, of
/// non-overhanging) taps, a product over the dims of per-dim counts (the window
/// is a box), counted by short serial loops.
fn window_coop(kb: &mut KernelBuilder, w: &Win, o: &[Expr], base: &Expr, at: Expr) {
    let window: usize = w.geo.iter().map(|g| g.0).product();
    let (xb, kind) = (w.xb, w.kind);
    let op = if kind == PoolKind::Max { BinOp::Max } else { BinOp::Add };
    let id = Expr::f(coop::identity_f32(op));
    let value = |kb: &mut KernelBuilder, j: &Expr| {
        let (ii, inside) = tap(kb, w, o, j);
        let v = Expr::load(xb, Expr::select(inside.clone(), offset(base.clone(), &ii, w.xst), base.clone()));
        (ii, inside, v)
    };
    let m = coop::reduce(kb, "acc", Ty::F32, op, id.clone(), window, |kb, j| {
        let (_, inside, v) = value(kb, &j);
        Expr::select(inside, v, id.clone())
    });
    let m = kb.let_("m", m);
    let res = match kind {
        PoolKind::Max => m.clone(),
        PoolKind::Avg => {
            // Per-dim counts of the taps inside the input (or short of the end
            // padding), multiplied.
            let mut count = Expr::f(1.0);
            for (d, &(k, s, pb, pe, dil)) in w.geo.iter().enumerate() {
                let c = kb.var("count", Ty::F32);
                kb.set(c, Expr::f(0.0));
                let n = w.xs[d];
                kb.for_n("kc", k as u64, |kb, kk| {
                    let i = o[d].clone() * s as i64 + kk * dil as i64 - Expr::i(pb as i64);
                    let ok = if w.include { i.lt(Expr::i((n + pe) as i64)) } else { i.clone().ge(Expr::i(0)).and(i.lt(Expr::i(n as i64))) };
                    kb.set(c, Expr::var(c) + Expr::cast(Scalar::F32, ok));
                });
                count = count * Expr::var(c);
            }
            m.clone() / count
        }
    };
    kb.store(w.y, at.clone(), res);
    if let Some(ib) = w.ib {
        let first = coop::reduce(kb, "first", Ty::I64, BinOp::Min, Expr::i(window as i64), window, |kb, j| {
            let (_, inside, v) = value(kb, &j);
            let hit = Expr::select(Expr::cmp(CmpOp::Ne, m.clone(), m.clone()), Expr::cmp(CmpOp::Ne, v.clone(), v.clone()), Expr::cmp(CmpOp::Eq, v, m.clone()));
            Expr::select(inside.and(hit), j, Expr::i(window as i64))
        });
        let first = kb.let_("first", first);
        // The tap's offset in the plane, in the index's storage order; −1 when
        // every tap is padding.
        let (ii, _) = tap(kb, w, o, &first);
        let cs = if w.order == Some(StorageOrder::ColMajor) { w.cst } else { w.xst };
        let flat = Expr::select(first.lt(Expr::i(window as i64)), offset(base.clone(), &ii, cs), Expr::i(-1));
        kb.store(ib, at, flat);
    }
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let (x, out) = (&ins[0], &outs[0]);
    let t = l.target.clone();
    let name = l.kernel_name(node, "");
    let mut kb = KernelBuilder::new(name);
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    match op {
        Op::GlobalPool(kind) => {
            let planes: usize = x.shape[..2.min(x.shape.len())].iter().product();
            let inner: usize = x.shape.get(2..).map_or(1, |s| s.iter().product());
            let par = if x.len() >= t.parallel_min_elems && planes > 1 { LoopKind::Parallel } else { LoopKind::Serial };
            let kind = *kind;
            if coop::cooperative(&t, planes, inner) {
                // A workgroup per plane.
                kb.for_("p", Expr::i(0), Expr::i(planes as i64), LoopKind::Parallel, |kb, p| {
                    let base = kb.let_("base", p.clone() * inner as i64);
                    let op = if kind == PoolKind::Max { BinOp::Max } else { BinOp::Add };
                    let r = coop::reduce(kb, "acc", Ty::F32, op, Expr::f(coop::identity_f32(op)), inner, |_, j| Expr::load(xb, base.clone() + j));
                    let r = if kind == PoolKind::Avg { r / Expr::f(inner as f32) } else { r };
                    kb.store(y, p, r);
                });
            } else {
                kb.for_("p", Expr::i(0), Expr::i(planes as i64), par, |kb, p| {
                    let base = kb.let_("base", p.clone() * inner as i64);
                    let rop = if kind == PoolKind::Max { RowOp::Max } else { RowOp::Add };
                    let r = reduce_row(kb, xb, &base, inner, t.vector_width, rop, &|_, v, _| v);
                    let r = if kind == PoolKind::Avg { r / Expr::f(inner as f32) } else { r };
                    kb.store(y, p, r);
                });
            }
        }
        Op::Pool(p) => {
            let geo = geometry(p).ok_or_else(|| internal(node, "pooling rank"))?;
            let r = geo.len();
            if x.shape.len() != r + 2 || out.shape.len() != r + 2 {
                return Err(internal(node, "pooling shape"));
            }
            let (planes, plane, oplane) = (x.shape[0] * x.shape[1], x.shape[2..].iter().product::<usize>(), out.shape[2..].iter().product::<usize>());
            let (xs, os) = (x.shape[2..].to_vec(), out.shape[2..].to_vec());
            let (xst, ost) = (strides(&xs), strides(&os));
            // Column-major strides of the input's spatial dims (for `indices`).
            let cst: Vec<usize> = (0..r).map(|d| xs[..d].iter().product()).collect();
            let par = if out.len() >= t.parallel_min_elems / 8 && planes > 1 { LoopKind::Parallel } else { LoopKind::Serial };
            let (kind, include) = (p.kind, p.count_include_pad);
            let ib = match (p.indices, outs.get(1)) {
                (Some(_), Some(o)) => Some(kb.buffer("indices", Scalar::I64, o.len(), Access::Write)),
                (Some(_), None) => return Err(internal(node, "max pooling with indices has two outputs")),
                _ => None,
            };
            let w = Win { geo: &geo, xs: &xs, xst: &xst, cst: &cst, kind, include, order: p.indices, xb, y, ib };
            let window: usize = geo.iter().map(|g| g.0).product();
            let outputs = planes * oplane;
            let mut scratch = None;
            if t.is_gpu() {
                // One parallel iteration per output (its plane and position from
                // the flat index); a large window with few outputs gets a
                // workgroup per output.
                let co = coop::cooperative_window(&t, outputs, window);
                kb.for_("q", Expr::i(0), Expr::i(outputs as i64), LoopKind::Parallel, |kb, q| {
                    let pl = kb.let_("pl", q.clone() / Expr::i(oplane as i64));
                    let rem = kb.let_("rem", q.clone() % Expr::i(oplane as i64));
                    let base = kb.let_("base", pl * plane as i64);
                    let (onames, _, _) = names(r);
                    let o: Vec<Expr> = (0..r)
                        .map(|d| {
                            let e = if ost[d] == 1 { rem.clone() } else { rem.clone() / Expr::i(ost[d] as i64) };
                            let e = if d == 0 { e } else { e % Expr::i(os[d] as i64) };
                            kb.let_(onames[d], e)
                        })
                        .collect();
                    if co {
                        window_coop(kb, &w, &o, &base, q);
                    } else {
                        window_serial(kb, &w, &o, &base, q);
                    }
                });
            } else {
                let (onames, _, _) = names(r);
                // Windows wholly inside the input (no indices wanted) take the taps
                // unrolled, without bounds checks.
                let inner: Vec<(usize, usize)> = geo.iter().zip(&xs).zip(&os).map(|((&(k, st, pb, _, dil), &n), &on)| interior(k, st, pb, dil, n, on)).collect();
                let split = ib.is_none() && window <= 64 && inner.iter().all(|&(lo, hi)| lo < hi);
                // 2-d max pooling with strided columns (ResNet's 3×3/2): the inside of
                // each interior output row in two passes — the max over the window's
                // rows for every input column into a scratch row (vector loads; the
                // strided taps cannot be), then the max over each window's columns of
                // it. 3 loads per output instead of 9: ResNet-18's 0.38 ms max pool.
                let sep = split && r == 2 && kind == PoolKind::Max && geo.iter().all(|g| g.4 == 1) && geo[1].1 > 1;
                let wid = xs[r - 1];
                scratch = sep.then(|| l.temp(&format!("{node}.rows"), Scalar::F32, (planes * wid) as u64));
                let sb = scratch.map(|b| kb.buffer("rows", Scalar::F32, l.prog.buffer(b).len, Access::ReadWrite));
                kb.for_("p", Expr::i(0), Expr::i(planes as i64), par, |kb, pl| {
                    let sbase = sb.map(|_| kb.let_("sbase", pl.clone() * wid as i64));
                    let base = kb.let_("base", pl.clone() * plane as i64);
                    let obase = kb.let_("obase", pl * oplane as i64);
                    // One output element; `fast`: its window lies inside the input.
                    let point = |kb: &mut KernelBuilder, o: &[Expr], fast: bool| {
                        let at = offset(obase.clone(), o, &ost);
                        if fast { window_fast(kb, &w, o, &base, at) } else { window_serial(kb, &w, o, &base, at) }
                    };
                    if !split {
                        return nest(kb, &os, &onames[..r], vec![], &mut |kb, o| point(kb, o, false));
                    }
                    // The last dim in three runs when the outer dims' windows are inside:
                    // checked, unchecked (a plain loop LLVM can vectorize), checked.
                    nest(kb, &os[..r - 1], &onames[..r - 1], vec![], &mut |kb, outer| {
                        let run = |kb: &mut KernelBuilder, lo: usize, hi: usize, fast: bool| {
                            if lo >= hi {
                                return;
                            }
                            kb.for_(onames[r - 1], Expr::i(lo as i64), Expr::i(hi as i64), LoopKind::Serial, |kb, ox| {
                                let mut o = outer.to_vec();
                                o.push(ox);
                                point(kb, &o, fast);
                            });
                        };
                        let (lo, hi) = inner[r - 1];
                        let on = os[r - 1];
                        let cond = outer.iter().zip(&inner).map(|(oi, &(lo, hi))| oi.clone().ge(Expr::i(lo as i64)).and(oi.clone().lt(Expr::i(hi as i64)))).reduce(Expr::and);
                        let all = |kb: &mut KernelBuilder| {
                            run(kb, 0, lo, false);
                            match (sb, &sbase) {
                                (Some(sb), Some(sbase)) if lo < hi => {
                                    let (kh, sh, ph) = (geo[0].0, geo[0].1, geo[0].2);
                                    let (kw, sw, pw) = (geo[1].0, geo[1].1, geo[1].2);
                                    let row0 = kb.let_("row0", base.clone() + (outer[0].clone() * sh as i64 - Expr::i(ph as i64)) * wid as i64);
                                    kb.for_("j", Expr::i(0), Expr::i(wid as i64), LoopKind::Vectorized(t.vector_width), |kb, j| {
                                        let mut v = Expr::load(xb, row0.clone() + j.clone());
                                        for ky in 1..kh {
                                            v = Expr::bin(BinOp::Max, v, Expr::load(xb, row0.clone() + (ky * wid) as i64 + j.clone()));
                                        }
                                        kb.store(sb, sbase.clone() + j, v);
                                    });
                                    kb.for_(onames[1], Expr::i(lo as i64), Expr::i(hi as i64), LoopKind::Serial, |kb, ox| {
                                        let c = kb.let_("c", sbase.clone() + ox.clone() * sw as i64 - Expr::i(pw as i64));
                                        let mut v = Expr::load(sb, c.clone());
                                        for kx in 1..kw {
                                            v = Expr::bin(BinOp::Max, v, Expr::load(sb, c.clone() + kx as i64));
                                        }
                                        let o = vec![outer[0].clone(), ox];
                                        kb.store(y, offset(obase.clone(), &o, &ost), v);
                                    });
                                }
                                _ => run(kb, lo, hi, true),
                            }
                            run(kb, hi, on, false);
                        };
                        match cond {
                            Some(c) => kb.if_else(c, all, |kb| run(kb, 0, on, false)),
                            None => all(kb),
                        }
                    });
                });
            }
            let mut args = vec![x.buf, out.buf];
            args.extend(outs.get(1).filter(|_| p.indices.is_some()).map(|o| o.buf));
            args.extend(scratch);
            l.step(node, kb.finish(), args);
            return Ok(true);
        }
        _ => return Ok(false),
    }
    l.step(node, kb.finish(), vec![x.buf, out.buf]);
    Ok(true)
}
