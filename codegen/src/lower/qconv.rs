//! Lowering of `qconv1d`/`qconv2d`/`qconv3d`: `Σ (x − zx)(w − zw[oc])` over the receptive
//! field accumulated in wrapping i32 (padding contributing nothing, as the
//! reference's `x = zx` there), plus the optional i32 bias; then either the
//! accumulators are the output or they are requantized in f64 by
//! `quant::requantize`. On the CPU targets, when the zero points keep `q − zp` in
//! i16, each (image, group) is one GEMM of `qgemm.rs`: the weights as A (pair-packed
//! at compile time when constant), the input's im2col as B, packed by a kernel
//! from two constant tables (each output position's input corner, each tap's
//! offset). Otherwise (and on the GPU) a direct i32 convolution, with constant
//! weights widened and shifted by their zero points at compile time. Every conv is
//! a 3-d one: a 1-d conv has depth and height 1, a 2-d one depth 1.

use super::qgemm;
use super::quant::{params, requantize};
use super::util::Operand;
use super::{BufIdx, BufKind, Lowerer, internal};
use crate::kernel::{Access, BinOp, CmpOp, Expr, KernelBuilder, LoopKind, Scalar, Ty};
use crate::Error;
use smelt_ir::ops::{Conv, Requant};
use smelt_ir::{DType, Op, TensorType};

pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    let q8 = |t: &TensorType| matches!(t.dtype, DType::I8 | DType::U8) && t.quant.is_some();
    let Op::QConv(c, _) = op else { return false };
    matches!(c.rank(), 1..=3)
        && ins.len() >= 2
        && q8(ins[0])
        && q8(ins[1])
        && ins[0].quant.as_ref().is_some_and(|q| q.axis().is_none())
        && ins[1].quant.as_ref().is_some_and(|q| q.axis().is_none_or(|a| a == 0))
        && ins.get(2).is_none_or(|b| b.dtype == DType::I32 && b.quant.is_none())
        && outs.iter().all(|t| matches!(t.dtype, DType::I8 | DType::U8 | DType::I32))
}

pub fn lower(l: &mut Lowerer, node: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let Op::QConv(c, r) = op else { return Ok(false) };
    qconv(l, node, c, r, ins, &outs[0])
}

fn qconv(l: &mut Lowerer, node: &str, c: &Conv, rq: &Requant, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, w) = (&ins[0], &ins[1]);
    // Shapes as [n, c, d, h, w]; strides, pads and dilations as (d, h, w).
    let lift = |s: &[usize]| -> Vec<usize> {
        let mut v = s[..2.min(s.len())].to_vec();
        v.extend(std::iter::repeat_n(1, 5usize.saturating_sub(s.len())));
        v.extend_from_slice(&s[2.min(s.len())..]);
        v
    };
    let (xs, ws, os) = (lift(&x.shape), lift(&w.shape), lift(&out.shape));
    let r = c.rank();
    if c.stride.len() != r || c.pad.len() < r || c.dilation.len() != r || !(1..=3).contains(&r) {
        return Err(internal(node, "qconv attributes do not match its rank"));
    }
    let spatial = |v: &[usize], fill: usize| -> [usize; 3] {
        let mut a = [fill; 3];
        a[3 - r..].copy_from_slice(&v[..r]);
        a
    };
    let (stride, pad, dil) = (spatial(&c.stride, 1), spatial(&c.pad[..r], 0), spatial(&c.dilation, 1));
    let (&[n, ci, id, ih, iw], &[m, cg, kd, kh, kw], &[on, om, od, oh, ow]) = (&xs[..], &ws[..], &os[..]) else {
        return Err(internal(node, "qconv: unexpected shapes"));
    };
    let g = c.groups;
    if g == 0 || on != n || om != m || m % g != 0 || ci != cg * g {
        return Err(internal(node, "qconv: x, w and groups do not match"));
    }
    let (qx, qw) = (x.ty.quant.clone().ok_or_else(|| internal(node, "x"))?, w.ty.quant.clone().ok_or_else(|| internal(node, "w"))?);
    let (sx, zx) = qx.at(0);
    let (sw, zw) = params(&qw, m);
    let zw_of = |oc: usize| zw[oc.min(zw.len().saturating_sub(1))];
    let requant = rq.dtype != DType::I32;
    let (kk, plane) = (cg * kd * kh * kw, od * oh * ow);
    let zws: Vec<i64> = (0..m).map(zw_of).collect();
    if kk > 0 && l.target.quant_pairs && qgemm::fits_i16(x.scalar, &[zx as i64]) && qgemm::fits_i16(w.scalar, &zws) {
        // A GEMM per (image, group): the weights (A, packed at compile time when
        // constant) times the im2col of the input (B, packed by a kernel). With
        // quads, A is the s8 side and the input's zero point moves into the bias.
        let len = (n * m * plane) as u64;
        let acc_buf = if requant { l.temp(&format!("{node}.acc"), Scalar::I32, len) } else { out.buf };
        let mg = m / g;
        let off = if x.scalar == Scalar::I8 { 128 } else { 0 };
        let quads = qgemm::quads(l, node, w.buf, w.scalar, (m, kk, false), &zws, ins.get(2).map(|o| o.buf), zx as i64 + off);
        let (wenc, xenc) = match quads {
            Some(_) => (qgemm::Enc::QuadsS8, qgemm::Enc::QuadsU8 { off }),
            None => (qgemm::Enc::Pairs, qgemm::Enc::Pairs),
        };
        // AMX: 32×32 tiles (quads only).
        let amx = quads.is_some() && l.target.quant_amx;
        let ((mr, nr), (la, lb)) = match amx {
            true => ((crate::amx::TILE, crate::amx::TILE), (qgemm::Layout::AmxA, qgemm::Layout::AmxB)),
            false => (l.target.own_tile(), (qgemm::Layout::Panels, qgemm::Layout::Panels)),
        };
        let pa_src = qgemm::PairSrc { buf: w.buf, scalar: w.scalar, groups: g, gstride: (mg * kk) as i64, count: mg, depth: kk, s_lane: kk as i64, s_depth: 1, zp: zws, enc: wenc, layout: la };
        let pa = qgemm::pack_pairs(l, node, "w", &pa_src, mr)?;
        let geo = Geometry { x: [n, ci, id, ih, iw], k: [cg, kd, kh, kw], o: [od, oh, ow], groups: g, stride, pad_lo: pad, dil };
        // Taps past the input's edges: packed from a copy padded with the zero
        // point (every tap then lands inside, no bounds checks), on the CPU.
        let padded = if l.target.is_gpu() { None } else { pad_input(l, node, x, &geo, zx as i64)? };
        let pb = match &padded {
            Some((xp, gp)) => pack_im2col(l, node, xp, gp, zx as i64, nr, xenc, lb)?,
            None => pack_im2col(l, node, x, &geo, zx as i64, nr, xenc, lb)?,
        };
        let bias = match quads {
            Some(q) => Some(qgemm::Bias::Row(q.bias)),
            None => ins.get(2).map(|o| qgemm::Bias::Row(o.buf)),
        };
        let spec = qgemm::QGemmSpec {
            batches: n * g,
            groups: g,
            m: mg,
            n: plane,
            k: kk,
            pa,
            pb,
            c: acc_buf,
            bias,
            quads: quads.map(|_| false),
            narrow: quads.is_some_and(|q| q.narrow),
            amx,
            amx_direct_a: false,
        };
        qgemm::qgemm(l, node, &spec)?;
        if requant {
            requantize(l, node, rq, acc_buf, out, sx, &sw, (n, m, plane))?;
        }
        return Ok(true);
    }
    // The weights as i32 minus their zero point: a constant when the weights are.
    let wz: Option<BufIdx> = match &l.prog.buffer(w.buf).kind {
        BufKind::Const(bytes) => {
            let per = cg * kd * kh * kw;
            let v: Vec<u8> = (0..m * per)
                .flat_map(|i| {
                    let q = if w.scalar == Scalar::I8 { bytes[i] as i8 as i32 } else { bytes[i] as i32 };
                    (q - zw_of(i / per) as i32).to_le_bytes()
                })
                .collect();
            Some(l.constant(&format!("{node}.w_i32"), Scalar::I32, v))
        }
        _ => None,
    };
    let zwb = l.constant(&format!("{node}.w_zero_point"), Scalar::I32, (0..m).flat_map(|oc| (zw_of(oc) as i32).to_le_bytes()).collect());
    let len = (n * m * od * oh * ow) as u64;
    let acc_buf = if requant { l.temp(&format!("{node}.acc"), Scalar::I32, len) } else { out.buf };
    let mut kb = KernelBuilder::new(l.kernel_name(node, "acc"));
    let xb = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let wb = match wz {
        Some(_) => kb.buffer("w_i32", Scalar::I32, w.len(), Access::Read),
        None => kb.buffer("w", w.scalar, w.len(), Access::Read),
    };
    let zk = kb.buffer("w_zero_point", Scalar::I32, m as u64, Access::Read);
    let bias = ins.get(2).map(|o| kb.buffer("bias", Scalar::I32, o.len(), Access::Read));
    let y = kb.buffer("acc", Scalar::I32, len, Access::Write);
    let work = len.saturating_mul((cg * kd * kh * kw) as u64);
    let par = if n * m > 1 && work >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    let (mg, widened) = (m / g, wz.is_some());
    let i32c = |v: i64| Expr::int(v, Scalar::I32);
    kb.for_("bo", Expr::i(0), Expr::i((n * m) as i64), par, |kb, bo| {
        let b = kb.let_("b", bo.clone() / Expr::i(m as i64));
        let oc = kb.let_("oc", bo.clone() % Expr::i(m as i64));
        let ic0 = kb.let_("ic0", (oc.clone() / Expr::i(mg as i64)) * cg as i64);
        let zwv = kb.let_("zw", Expr::load(zk, oc.clone()));
        kb.for_n("oz", od as u64, |kb, oz| {
            kb.for_n("oy", oh as u64, |kb, oy| {
                kb.for_n("ox", ow as u64, |kb, ox| {
                    let acc = kb.var("acc", Ty::I32);
                    kb.set(acc, bias.map_or(i32c(0), |bb| Expr::load(bb, oc.clone())));
                    kb.for_n("cc", cg as u64, |kb, cc| {
                        kb.for_n("kz", kd as u64, |kb, kz| {
                            let zz = kb.let_("z", oz.clone() * stride[0] as i64 + kz.clone() * dil[0] as i64 - Expr::i(pad[0] as i64));
                            kb.if_(zz.clone().ge(Expr::i(0)).and(zz.clone().lt(Expr::i(id as i64))), |kb| {
                                kb.for_n("ky", kh as u64, |kb, ky| {
                                    let yy = kb.let_("y", oy.clone() * stride[1] as i64 + ky.clone() * dil[1] as i64 - Expr::i(pad[1] as i64));
                                    kb.if_(yy.clone().ge(Expr::i(0)).and(yy.clone().lt(Expr::i(ih as i64))), |kb| {
                                        kb.for_n("kx", kw as u64, |kb, kx| {
                                            let xx = kb.let_("xx", ox.clone() * stride[2] as i64 + kx.clone() * dil[2] as i64 - Expr::i(pad[2] as i64));
                                            kb.if_(xx.clone().ge(Expr::i(0)).and(xx.clone().lt(Expr::i(iw as i64))), |kb| {
                                                let plane = (b.clone() * ci as i64 + ic0.clone() + cc.clone()) * id as i64 + zz.clone();
                                                let xi = (plane * ih as i64 + yy.clone()) * iw as i64 + xx;
                                                let wplane = (oc.clone() * cg as i64 + cc.clone()) * kd as i64 + kz.clone();
                                                let wi = (wplane * kh as i64 + ky.clone()) * kw as i64 + kx;
                                                let xv = Expr::cast(Scalar::I32, Expr::load(xb, xi)) - i32c(zx as i64);
                                                let wv = if widened { Expr::load(wb, wi) } else { Expr::cast(Scalar::I32, Expr::load(wb, wi)) - zwv.clone() };
                                                kb.set(acc, Expr::var(acc) + xv * wv);
                                            });
                                        });
                                    });
                                });
                            });
                        });
                    });
                    let at = (((b.clone() * m as i64 + oc.clone()) * od as i64 + oz.clone()) * oh as i64 + oy.clone()) * ow as i64 + ox;
                    kb.store(y, at, Expr::var(acc));
                });
            });
        });
    });
    let mut args = vec![x.buf, wz.unwrap_or(w.buf), zwb];
    if let Some(o) = ins.get(2) {
        args.push(o.buf);
    }
    args.push(acc_buf);
    l.step(node, kb.finish(), args);
    if requant {
        requantize(l, node, rq, acc_buf, out, sx, &sw, (n, m, od * oh * ow))?;
    }
    Ok(true)
}

/// The shape of one convolution, every conv as a 3-d one.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    /// Input `[n, c, d, h, w]`.
    x: [usize; 5],
    /// Weights per output channel `[c/groups, kd, kh, kw]`.
    k: [usize; 4],
    /// Output spatial `[d, h, w]`.
    o: [usize; 3],
    groups: usize,
    stride: [usize; 3],
    pad_lo: [usize; 3],
    dil: [usize; 3],
}

/// A copy of the conv input `x` with the spatial dims padded by the zero point
/// `zx` so that every tap of every output position lands inside (before: the
/// geometry's own padding; after: what the last position's last tap passes),
/// and the geometry over it (no padding). `None` when no tap leaves the input.
fn pad_input(l: &mut Lowerer, node: &str, x: &Operand, geo: &Geometry, zx: i64) -> Result<Option<(Operand, Geometry)>, Error> {
    let dims = [geo.x[2], geo.x[3], geo.x[4]];
    let taps = [geo.k[1], geo.k[2], geo.k[3]];
    let lo = geo.pad_lo;
    let mut hi = [0usize; 3];
    for d in 0..3 {
        let last = (geo.o[d].max(1) - 1) * geo.stride[d] + (taps[d].max(1) - 1) * geo.dil[d];
        hi[d] = (last + 1).saturating_sub(lo[d] + dims[d]);
    }
    if lo == [0; 3] && hi == [0; 3] {
        return Ok(None);
    }
    let pd: Vec<usize> = (0..3).map(|d| lo[d] + dims[d] + hi[d]).collect();
    let planes = geo.x[0] * geo.x[1];
    let (dp, hp, wp) = (pd[0], pd[1], pd[2]);
    let len = (planes * dp * hp * wp) as u64;
    let out = l.temp(&format!("{node}.x_padded"), x.scalar, len);
    let mut kb = KernelBuilder::new(l.kernel_name(node, "pad_input"));
    let xb = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let dst = kb.buffer("dst", x.scalar, len, Access::Write);
    let zero = Expr::int(zx, x.scalar);
    let kind = if len >= l.target.parallel_min_elems && planes > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let w = l.target.vector_width.max(1);
    let (id, ih, iw) = (dims[0] as i64, dims[1] as i64, dims[2] as i64);
    // Per padded row: the zero point, then (rows inside the input) its row.
    kb.for_("pl", Expr::i(0), Expr::i(planes as i64), kind, |kb, pl| {
        kb.for_n("z", dp as u64, |kb, z| {
            kb.for_n("y", hp as u64, |kb, y| {
                let row = kb.let_("row", ((pl.clone() * dp as i64 + z.clone()) * hp as i64 + y.clone()) * wp as i64);
                let (zi, yi) = (z.clone() - Expr::i(lo[0] as i64), y.clone() - Expr::i(lo[1] as i64));
                let inside = kb.let_("inside", zi.clone().ge(Expr::i(0)).and(zi.clone().lt(Expr::i(id))).and(yi.clone().ge(Expr::i(0))).and(yi.clone().lt(Expr::i(ih))));
                let fill = |kb: &mut KernelBuilder, a: i64, b: i64| {
                    if b > a {
                        kb.for_("x", Expr::i(a), Expr::i(b), LoopKind::Vectorized(w), |kb, xx| kb.store(dst, row.clone() + xx, zero.clone()));
                    }
                };
                kb.if_else(
                    inside,
                    |kb| {
                        fill(kb, 0, lo[2] as i64);
                        let src = kb.let_("src", ((pl.clone() * id + zi.clone()) * ih + yi.clone()) * iw);
                        kb.for_("x", Expr::i(0), Expr::i(iw), LoopKind::Vectorized(w), |kb, xx| {
                            kb.store(dst, row.clone() + lo[2] as i64 + xx.clone(), Expr::load(xb, src.clone() + xx));
                        });
                        fill(kb, lo[2] as i64 + iw, wp as i64);
                    },
                    |kb| fill(kb, 0, wp as i64),
                );
            });
        });
    });
    l.step(node, kb.finish(), vec![x.buf, out]);
    let shape = vec![geo.x[0], geo.x[1], dp, hp, wp];
    let xp = Operand { buf: out, ty: x.ty.clone(), shape, dtype: x.dtype, scalar: x.scalar };
    let gp = Geometry { x: [geo.x[0], geo.x[1], dp, hp, wp], pad_lo: [0; 3], ..*geo };
    Ok(Some((xp, gp)))
}

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Packs the im2col of `x` (depth = (channel, tap), lanes = output positions) for
/// every (image, group) in the pair layout of `qgemm::pack_pairs` with `r`-lane
/// panels. Two constant tables make it division-free: per position its input
/// corner (flat offset, z, y, x), per depth step its tap (flat offset including the
/// channel, dz, dy, dx); only dims some tap leaves are bounds-checked, and taps
/// outside the input are `x = zx`, i.e. 0. A panel within one output row (a third
/// table flags them) whose tap lands inside the input for all its lanes is copied
/// without tables or checks: `x[corner + tap + i·stride]`.
#[allow(clippy::too_many_arguments)]
fn pack_im2col(l: &mut Lowerer, node: &str, x: &Operand, geo: &Geometry, zx: i64, r: usize, enc: qgemm::Enc, layout: qgemm::Layout) -> Result<BufIdx, Error> {
    let [n, ci, id, ih, iw] = geo.x;
    let [cg, kd, kh, kw] = geo.k;
    let [od, oh, ow] = geo.o;
    let pw = enc.per();
    let (plane, kk) = (od * oh * ow, cg * kd * kh * kw);
    let (panels, kp, kpd) = (plane.div_ceil(r), kk.div_ceil(pw), layout.depth_words(kk, pw));
    // An input element as packed, and what a tap outside the input packs: pairs
    // hold `x − zx` (outside: 0); quads hold `x + off` (outside: `zx + off`,
    // which the bias correction cancels).
    let (off, outside) = match enc {
        qgemm::Enc::QuadsU8 { off } => (off, zx + off),
        _ => (-zx, 0),
    };
    let (sz, sy) = ((ih * iw) as i64, iw as i64);
    let mut pos = Vec::with_capacity(plane * 4);
    for oz in 0..od {
        for oy in 0..oh {
            for ox in 0..ow {
                let z = (oz * geo.stride[0]) as i64 - geo.pad_lo[0] as i64;
                let y = (oy * geo.stride[1]) as i64 - geo.pad_lo[1] as i64;
                let xx = (ox * geo.stride[2]) as i64 - geo.pad_lo[2] as i64;
                pos.extend([z * sz + y * sy + xx, z, y, xx]);
            }
        }
    }
    let mut dep = Vec::with_capacity(kk * 4);
    for c in 0..cg {
        for a in 0..kd {
            for b in 0..kh {
                for e in 0..kw {
                    let (dz, dy, dx) = ((a * geo.dil[0]) as i64, (b * geo.dil[1]) as i64, (e * geo.dil[2]) as i64);
                    dep.extend([c as i64 * id as i64 * sz + dz * sz + dy * sy + dx, dz, dy, dx]);
                }
            }
        }
    }
    let dims = [id as i64, ih as i64, iw as i64];
    // A dim needs bounds checks when some position's tap falls outside it.
    let checked: Vec<usize> = (0..3)
        .filter(|&d| {
            let (cmin, cmax) = pos.chunks(4).fold((i64::MAX, i64::MIN), |(a, b), c| (a.min(c[1 + d]), b.max(c[1 + d])));
            let (tmin, tmax) = dep.chunks(4).fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t[1 + d]), b.max(t[1 + d])));
            cmin + tmin < 0 || cmax + tmax >= dims[d]
        })
        .collect();
    // Per panel: 1 when its `r` positions are full and lie `stride` apart in the
    // input: within one output row, or (no tap needing a bounds check, as a 1×1
    // conv without padding) across rows whose corners continue the line.
    let linear = |p: usize| (0..r).all(|i| pos[(p * r + i) * 4] == pos[p * r * 4] + (i * geo.stride[2]) as i64);
    let rows: Vec<i32> = (0..panels)
        .map(|p| {
            let full = (p + 1) * r <= plane;
            let one_row = (p * r) / ow == ((p + 1) * r - 1) / ow;
            i32::from(full && (one_row || (checked.is_empty() && linear(p))))
        })
        .collect();
    let any_row = rows.contains(&1);
    // Full panels that are not one line (they cross output rows), when no tap
    // needs a check: their lanes as at most `SEGS` runs within one row each,
    // `(first lane, end lane, input corner of the first)`, unused runs empty.
    const SEGS: usize = 8;
    let runs = |p: usize| -> Vec<[i64; 3]> {
        let mut v: Vec<[i64; 3]> = vec![];
        for i in 0..r {
            let c = pos[(p * r + i) * 4];
            match v.last_mut() {
                Some(run) if c == run[2] + (i as i64 - run[0]) * geo.stride[2] as i64 => run[1] = i as i64 + 1,
                _ => v.push([i as i64, i as i64 + 1, c]),
            }
        }
        v
    };
    let segs: Option<Vec<i64>> = (checked.is_empty() && (0..panels).any(|p| rows[p] == 0 && (p + 1) * r <= plane))
        .then(|| {
            let mut t = vec![0i64; panels * SEGS * 3];
            for p in (0..panels).filter(|&p| rows[p] == 0 && (p + 1) * r <= plane) {
                let v = runs(p);
                if v.len() > SEGS {
                    return None;
                }
                for (k, run) in v.iter().enumerate() {
                    t[(p * SEGS + k) * 3..][..3].copy_from_slice(run);
                }
            }
            Some(t)
        })
        .flatten();
    let seg_buf = segs.as_ref().map(|t| l.constant(&format!("{node}.im2col_runs"), Scalar::I64, i64_bytes(t)));
    let pos_buf = l.constant(&format!("{node}.im2col_positions"), Scalar::I64, i64_bytes(&pos));
    let row_buf = l.constant(&format!("{node}.im2col_rows"), Scalar::I32, rows.iter().flat_map(|f| f.to_le_bytes()).collect());
    let dep_buf = l.constant(&format!("{node}.im2col_taps"), Scalar::I64, i64_bytes(&dep));
    let batches = n * geo.groups;
    let len = (batches * panels * kpd * r) as u64;
    let out = l.temp(&format!("{node}.im2col_pairs"), Scalar::I32, len);
    let mut kb = KernelBuilder::new(l.kernel_name(node, "pack_im2col"));
    let xb = kb.buffer("x", x.scalar, x.len(), Access::Read);
    let pk = kb.buffer("positions", Scalar::I64, pos.len() as u64, Access::Read);
    let dk = kb.buffer("taps", Scalar::I64, dep.len() as u64, Access::Read);
    let rowk = kb.buffer("rows", Scalar::I32, panels as u64, Access::Read);
    let segk = segs.as_ref().map(|t| kb.buffer("runs", Scalar::I64, t.len() as u64, Access::Read));
    let dst = kb.buffer("dst", Scalar::I32, len, Access::Write);
    let total = (batches * panels) as i64;
    let kind = if len >= l.target.parallel_min_elems && total > 1 { LoopKind::Parallel } else { LoopKind::Serial };
    let full = plane / r;
    let l_vec = if l.target.is_gpu() { 1 } else { l.target.vector_width };
    let i32c = |v: i64| Expr::int(v, Scalar::I32);
    kb.for_("bp", Expr::i(0), Expr::i(total), kind, |kb, bp| {
        let bi = kb.let_("bi", bp.clone() / Expr::i(panels as i64));
        let jp = kb.let_("jp", bp.clone() % Expr::i(panels as i64));
        // The first channel of this (image, group), as a flat offset.
        let img = bi.clone() / Expr::i(geo.groups as i64);
        let grp = bi.clone() % Expr::i(geo.groups as i64);
        let base = kb.let_("base", (img * ci as i64 + grp * cg as i64) * (id as i64 * sz));
        let out0 = kb.let_("out", bp.clone() * (kpd * r) as i64);
        let row_corner: Option<Vec<Expr>> =
            any_row.then(|| (0..4).map(|f| kb.let_("c", Expr::load(pk, jp.clone() * (4 * r) as i64 + f))).collect());
        let body = |kb: &mut KernelBuilder, guarded: bool| {
            let lanes = |kb: &mut KernelBuilder, q: &Expr, parts: usize| {
                let taps: Vec<[Expr; 4]> = (0..parts)
                    .map(|h| {
                        let d = q.clone() * pw as i64 + h as i64;
                        [0, 1, 2, 3].map(|f| kb.let_("t", Expr::load(dk, d.clone() * 4 + f)))
                    })
                    .collect();
                let generic = |kb: &mut KernelBuilder| {
                    kb.for_("i", Expr::i(0), Expr::i(r as i64), LoopKind::Serial, |kb, i| {
                        let lane = jp.clone() * r as i64 + i.clone();
                        let slot = out0.clone() + q.clone() * r as i64 + i.clone();
                        let inside = lane.clone().lt(Expr::i(plane as i64));
                        let p = if guarded { kb.let_("p", Expr::bin(BinOp::Min, lane, Expr::i(plane as i64 - 1))) } else { lane };
                        let corner: Vec<Expr> = (0..4).map(|f| kb.let_("o", Expr::load(pk, p.clone() * 4 + f))).collect();
                        let vals: Vec<Expr> = taps
                            .iter()
                            .map(|t| {
                                let at = base.clone() + corner[0].clone() + t[0].clone();
                                let inb = checked.iter().fold(None, |acc: Option<Expr>, &d| {
                                    let c = corner[1 + d].clone() + t[1 + d].clone();
                                    let ok = c.clone().ge(Expr::i(0)).and(c.lt(Expr::i(dims[d])));
                                    Some(match acc { None => ok, Some(a) => a.and(ok) })
                                });
                                match inb {
                                    None => Expr::cast(Scalar::I32, Expr::load(xb, at)) + i32c(off),
                                    Some(ok) => {
                                        let ok = kb.let_("in", ok);
                                        let v = Expr::cast(Scalar::I32, Expr::load(xb, Expr::select(ok.clone(), at, Expr::i(0)))) + i32c(off);
                                        Expr::select(ok, v, i32c(outside))
                                    }
                                }
                            })
                            .collect();
                        let word = enc.word(&vals);
                        let word = if guarded { Expr::select(inside, word, i32c(0)) } else { word };
                        kb.store(dst, slot, word);
                    });
                };
                // A full panel across rows: per run of lanes within a row, lane
                // i reads `x[run corner + tap + (i − first)·stride]`.
                let other = |kb: &mut KernelBuilder| {
                    let Some(sk) = segk.filter(|_| !guarded) else { return generic(kb) };
                    for k in 0..SEGS {
                        let at = (jp.clone() * SEGS as i64 + k as i64) * 3;
                        let lo = kb.let_("lo", Expr::load(sk, at.clone()));
                        let hi = kb.let_("hi", Expr::load(sk, at.clone() + 1));
                        let c0 = kb.let_("rc", Expr::load(sk, at + 2));
                        let kind = if geo.stride[2] == 1 && l_vec > 1 { LoopKind::Vectorized(l_vec) } else { LoopKind::Serial };
                        kb.for_("i", lo.clone(), hi, kind, |kb, i| {
                            let el = |t: &[Expr; 4]| {
                                let at = base.clone() + c0.clone() + t[0].clone() + (i.clone() - lo.clone()) * geo.stride[2] as i64;
                                Expr::cast(Scalar::I32, Expr::load(xb, at)) + i32c(off)
                            };
                            let vals: Vec<Expr> = taps.iter().map(el).collect();
                            kb.store(dst, out0.clone() + q.clone() * r as i64 + i, enc.word(&vals));
                        });
                    }
                };
                match &row_corner {
                    Some(c) if !guarded => {
                        // A panel inside one output row whose taps all land in the
                        // input: lane i reads `x[corner + tap + i·stride]`, unchecked.
                        let mut ok = Expr::cmp(CmpOp::Ne, Expr::load(rowk, jp.clone()), Expr::int(0, Scalar::I32));
                        for t in &taps {
                            for &d in &checked {
                                let lo = c[1 + d].clone() + t[1 + d].clone();
                                let span = if d == 2 { ((r - 1) * geo.stride[2]) as i64 } else { 0 };
                                ok = ok.and(lo.clone().ge(Expr::i(0))).and((lo + span).lt(Expr::i(dims[d])));
                            }
                        }
                        let ok = kb.let_("row_ok", ok);
                        let taps = &taps;
                        kb.if_else(
                            ok,
                            |kb| {
                                // Unit stride: lane i reads the bytes after lane 0's, a
                                // vector load per tap.
                                let w = l_vec;
                                let kind = if geo.stride[2] == 1 && w > 1 && r.is_multiple_of(w as usize) { LoopKind::Vectorized(w) } else { LoopKind::Serial };
                                kb.for_("i", Expr::i(0), Expr::i(r as i64), kind, |kb, i| {
                                    let el = |t: &[Expr; 4]| {
                                        let at = base.clone() + c[0].clone() + t[0].clone() + i.clone() * geo.stride[2] as i64;
                                        Expr::cast(Scalar::I32, Expr::load(xb, at)) + i32c(off)
                                    };
                                    let vals: Vec<Expr> = taps.iter().map(el).collect();
                                    let word = enc.word(&vals);
                                    kb.store(dst, out0.clone() + q.clone() * r as i64 + i, word);
                                });
                            },
                            other,
                        );
                    }
                    _ => other(kb),
                }
            };
            kb.for_n("q", (kk / pw) as u64, |kb, q| lanes(kb, &q, pw));
            if !kk.is_multiple_of(pw) {
                lanes(kb, &Expr::i(kp as i64 - 1), kk % pw);
            }
            qgemm::zero_words(kb, dst, &out0, layout, (kp, kpd), r);
        };
        super::util::by_panel(kb, &jp, full, panels, body);
    });
    let mut args = vec![x.buf, pos_buf, dep_buf, row_buf];
    args.extend(seg_buf);
    args.push(out);
    l.step(node, kb.finish(), args);
    Ok(out)
}
