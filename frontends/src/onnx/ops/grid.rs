//! ONNX GridSample and AffineGrid (1-d to 3-d spatial dims), DeformConv and
//! RoiAlign (2-d), written with smelt's ops at import, so every backend runs
//! them.
//!
//! GridSample follows ONNX's reference exactly: each output position's grid
//! coordinates (last grid dim, x first) are unnormalized per spatial dim (with
//! or without `align_corners`), rounded half to even for `nearest`, and —
//! outside the border (±0.5 beyond the edge pixels' centres, or the centres
//! themselves with `align_corners`) — clamped (`border`) or reflected
//! (`reflection`). The taps (1 for nearest, 2 for linear, 4 for cubic with
//! Keys' a = −0.75) sit at `floor(v) + j`; a tap outside the image reads 0
//! (`zeros`), its clamped pixel (`border`) or its reflection. Every combination
//! of one tap per spatial dim is a gather from the flattened input at positions
//! computed at run time, times the product of its weights; the output is their
//! sum. The shapes must be fixed (the gather positions are offset per image and
//! channel by a constant).
//!
//! AffineGrid is the constant base grid (normalized pixel centres, and 1)
//! times each θᵀ: one matmul.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{ReduceKind, Slice};
use smelt_ir::{BinaryOp, DType, Dim, Op, Tensor, UnaryOp, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] =
    &[("GridSample", grid_sample), ("AffineGrid", affine_grid), ("DeformConv", deform_conv), ("RoiAlign", roi_align)];

#[derive(Clone, Copy, PartialEq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// Keys' cubic convolution weights, a = −0.75, of the four taps around a
/// point at fraction `t` past the second.
const A: f64 = -0.75;

/// Elementwise helpers on f32 values of one shape.
struct Ew<'a> {
    cx: &'a mut Ctx,
}

impl Ew<'_> {
    fn k(&mut self, v: f64) -> Value {
        self.cx.scalar(v, DType::F32)
    }
    fn bin(&mut self, b: BinaryOp, x: Value, y: Value) -> Result<Value> {
        self.cx.binary(b, x, y)
    }
    fn add(&mut self, x: Value, y: Value) -> Result<Value> {
        self.bin(BinaryOp::Add, x, y)
    }
    fn sub(&mut self, x: Value, y: Value) -> Result<Value> {
        self.bin(BinaryOp::Sub, x, y)
    }
    fn mul(&mut self, x: Value, y: Value) -> Result<Value> {
        self.bin(BinaryOp::Mul, x, y)
    }
    fn addk(&mut self, x: Value, c: f64) -> Result<Value> {
        let c = self.k(c);
        self.add(x, c)
    }
    fn mulk(&mut self, x: Value, c: f64) -> Result<Value> {
        let c = self.k(c);
        self.mul(x, c)
    }
    /// `k − x`.
    fn ksub(&mut self, c: f64, x: Value) -> Result<Value> {
        let c = self.k(c);
        self.sub(c, x)
    }
    fn floor(&mut self, x: Value) -> Result<Value> {
        self.cx.unary(UnaryOp::Floor, x)
    }
    fn clamp(&mut self, x: Value, lo: f64, hi: f64) -> Result<Value> {
        let (l, h) = (self.k(lo), self.k(hi));
        let x = self.bin(BinaryOp::Max, x, l)?;
        self.bin(BinaryOp::Min, x, h)
    }
    fn select(&mut self, c: Value, a: Value, b: Value) -> Result<Value> {
        self.cx.op(Op::Where, &[c, a, b])
    }
    /// Whether `x` lies outside [lo, hi].
    fn outside(&mut self, x: Value, lo: f64, hi: f64) -> Result<Value> {
        let (l, h) = (self.k(lo), self.k(hi));
        let below = self.bin(BinaryOp::Less, x, l)?;
        let above = self.bin(BinaryOp::Greater, x, h)?;
        self.bin(BinaryOp::Or, below, above)
    }
    /// ONNX's `_gs_reflect`: `x` reflected by the nearer border until it lies
    /// in [lo, hi] (`x` itself where it does).
    fn reflect(&mut self, x: Value, lo: f64, hi: f64) -> Result<Value> {
        let range = hi - lo;
        if range <= 0.0 {
            // One pixel with align_corners: every position is that pixel.
            let lo = self.k(lo);
            let z = self.mulk(x, 0.0)?;
            return self.add(z, lo);
        }
        let (l, h) = (self.k(lo), self.k(hi));
        let below = self.bin(BinaryOp::Less, x, l)?;
        // The distance past the border crossed, in whole ranges and the rest.
        let d_lo = self.sub(l, x)?;
        let d_hi = self.sub(x, h)?;
        let d = self.select(below, d_lo, d_hi)?;
        let q = self.mulk(d, 1.0 / range)?;
        let whole = self.floor(q)?;
        let wr = self.mulk(whole, range)?;
        let r = self.sub(d, wr)?;
        let half = self.mulk(whole, 0.5)?;
        let fh = self.floor(half)?;
        let fh2 = self.mulk(fh, 2.0)?;
        let odd_f = self.sub(whole, fh2)?;
        let zero = self.k(0.0);
        let even = self.bin(BinaryOp::Equal, odd_f, zero)?;
        // Even: back from the border crossed; odd: from the other one.
        let from_lo = self.add(l, r)?;
        let from_hi = self.sub(h, r)?;
        let at_lo = self.select(even, from_lo, from_hi)?;
        let at_hi = self.select(even, from_hi, from_lo)?;
        let reflected = self.select(below, at_lo, at_hi)?;
        let out = self.outside(x, lo, hi)?;
        self.select(out, reflected, x)
    }
}

/// The taps of one spatial dim: (index as f32 within the image, weight, or
/// `None` for weight 1).
type Taps = Vec<(Value, Option<Value>)>;

fn taps(ew: &mut Ew, v: Value, len: usize, mode: Mode, pad: Padding, align: bool) -> Result<Taps> {
    let (lo, hi) = if align { (0.0, len as f64 - 1.0) } else { (-0.5, len as f64 - 0.5) };
    let last = len as f64 - 1.0;
    let v = if mode == Mode::Nearest { ew.cx.unary(UnaryOp::Round, v)? } else { v };
    let v = match pad {
        Padding::Zeros => v,
        Padding::Border => {
            let out = ew.outside(v, lo, hi)?;
            let c = ew.clamp(v, 0.0, last)?;
            ew.select(out, c, v)?
        }
        Padding::Reflection => ew.reflect(v, lo, hi)?,
    };
    let (base, offsets, weights): (Value, Vec<f64>, Vec<Option<Value>>) = match mode {
        Mode::Nearest => (v, vec![0.0], vec![None]),
        Mode::Linear => {
            let b = ew.floor(v)?;
            let t = ew.sub(v, b)?;
            let u = ew.ksub(1.0, t)?;
            (b, vec![0.0, 1.0], vec![Some(u), Some(t)])
        }
        Mode::Cubic => {
            let b = ew.floor(v)?;
            let t = ew.sub(v, b)?;
            // Keys: |s| ≤ 1: (a+2)|s|³ − (a+3)|s|² + 1; 1 < |s| < 2: a|s|³ − 5a|s|² + 8a|s| − 4a.
            let far = |ew: &mut Ew, s: Value| -> Result<Value> {
                let p = ew.mulk(s, A)?;
                let p = ew.addk(p, -5.0 * A)?;
                let p = ew.mul(p, s)?;
                let p = ew.addk(p, 8.0 * A)?;
                let p = ew.mul(p, s)?;
                ew.addk(p, -4.0 * A)
            };
            let near = |ew: &mut Ew, s: Value| -> Result<Value> {
                let p = ew.mulk(s, A + 2.0)?;
                let p = ew.addk(p, -(A + 3.0))?;
                let p = ew.mul(p, s)?;
                let p = ew.mul(p, s)?;
                ew.addk(p, 1.0)
            };
            let t1 = ew.addk(t, 1.0)?;
            let u = ew.ksub(1.0, t)?;
            let u1 = ew.ksub(2.0, t)?;
            let w = vec![Some(far(ew, t1)?), Some(near(ew, t)?), Some(near(ew, u)?), Some(far(ew, u1)?)];
            (b, vec![-1.0, 0.0, 1.0, 2.0], w)
        }
    };
    let mut out = Vec::with_capacity(offsets.len());
    for (off, w) in offsets.into_iter().zip(weights) {
        let j = if off == 0.0 { base } else { ew.addk(base, off)? };
        let (idx, w) = match pad {
            Padding::Zeros => {
                // Outside the image: weight 0, and any index inside.
                let out = ew.outside(j, 0.0, last)?;
                let zero = ew.k(0.0);
                let w = match w {
                    Some(w) => ew.select(out, zero, w)?,
                    None => {
                        let one = ew.k(1.0);
                        ew.select(out, zero, one)?
                    }
                };
                (ew.clamp(j, 0.0, last)?, Some(w))
            }
            Padding::Border => (ew.clamp(j, 0.0, last)?, w),
            Padding::Reflection => {
                let r = ew.reflect(j, lo, hi)?;
                // Reflected taps are whole; the clamp only guards the gather.
                (ew.clamp(r, 0.0, last)?, w)
            }
        };
        out.push((idx, w));
    }
    Ok(out)
}

pub fn grid_sample(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let grid = cx.input(n, 1)?;
    let (xt, gt) = (cx.ty(x), cx.ty(grid));
    if xt.dtype != DType::F32 || gt.dtype != DType::F32 {
        return Err(n.unsupported(format!("GridSample of {} by a {} grid (f32 only)", xt.dtype, gt.dtype)));
    }
    let xd = cx.fixed_dims(n, x, "GridSample")?;
    let gd = cx.fixed_dims(n, grid, "GridSample")?;
    let s = xd.len().saturating_sub(2);
    if !(1..=3).contains(&s) || gd.len() != s + 2 || gd[0] != xd[0] || gd[s + 1] != s {
        return Err(n.err(format!("the input must be [N, C, spatial…] (1 to 3 spatial dims) and the grid [N, out…, {s}], found {xt} and {gt}")));
    }
    let mode = match n.string("mode")?.as_deref().unwrap_or(if cx.opset >= 20 { "linear" } else { "bilinear" }) {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" => Mode::Linear,
        "cubic" | "bicubic" => Mode::Cubic,
        m => return Err(n.err(format!("unknown mode `{m}` (nearest, linear or cubic)"))),
    };
    let pad = match n.string("padding_mode")?.as_deref().unwrap_or("zeros") {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        p => return Err(n.err(format!("unknown padding_mode `{p}` (zeros, border or reflection)"))),
    };
    let align = n.int("align_corners", 0)? != 0;
    let (batch, channels) = (xd[0], xd[1]);
    let spatial = &xd[2..];
    let out_spatial = &gd[1..=s];
    let image = super::indexing::count(n, spatial)?;
    super::indexing::count(n, &[batch, channels, image])?;
    // [N, 1, out…]: the output positions, broadcast over the channels.
    let mut pos_dims = vec![batch, 1];
    pos_dims.extend(out_spatial);
    let mut ew = Ew { cx };
    let mut per_dim: Vec<Taps> = Vec::with_capacity(s);
    for (i, &len) in spatial.iter().enumerate() {
        // Spatial dim i reads grid coordinate s − 1 − i (x is first).
        let c = (s - 1 - i) as i64;
        let g = ew.cx.op(Op::Slice(Slice { starts: vec![c], ends: vec![c + 1], axes: Some(vec![-1]), steps: None }), &[grid])?;
        let g = ew.cx.reshape_fixed(g, &pos_dims)?;
        let v = if align {
            let p = ew.addk(g, 1.0)?;
            ew.mulk(p, (len as f64 - 1.0) / 2.0)?
        } else {
            let p = ew.addk(g, 1.0)?;
            let p = ew.mulk(p, len as f64 / 2.0)?;
            ew.addk(p, -0.5)?
        };
        per_dim.push(taps(&mut ew, v, len, mode, pad, align)?);
    }
    let cx = ew.cx;
    // Each image and channel's offset into the flattened input.
    let mut base_dims = vec![batch, channels];
    base_dims.extend(vec![1; s]);
    let base: Vec<i64> = (0..(batch * channels) as i64).map(|i| i * image as i64).collect();
    let base = cx.konst(Tensor::i64(base_dims, base).map_err(|e| n.err(e.to_string()))?);
    let flat = cx.reshape(x, &[Dim::Fixed((batch * channels * image) as u64)])?;
    let strides: Vec<usize> = (0..s).map(|i| spatial[i + 1..].iter().product()).collect();
    Ok(vec![gather_taps(cx, flat, base, &per_dim, &strides)?])
}

/// The sum, over every combination of one tap per spatial dim, of `flat` (an
/// input flattened) gathered at `base` plus the combination's position (the
/// taps' indices times the dims' `strides`), times the product of its weights.
fn gather_taps(cx: &mut Ctx, flat: Value, base: Value, per_dim: &[Taps], strides: &[usize]) -> Result<Value> {
    let s = per_dim.len();
    let combos: usize = per_dim.iter().map(Vec::len).product();
    let mut sum: Option<Value> = None;
    for combo in 0..combos {
        let (mut rest, mut at, mut weight) = (combo, None::<Value>, None::<Value>);
        for i in (0..s).rev() {
            let (idx, w) = per_dim[i][rest % per_dim[i].len()];
            rest /= per_dim[i].len();
            let term = if strides[i] == 1 {
                idx
            } else {
                let st = cx.scalar(strides[i] as f64, DType::F32);
                cx.binary(BinaryOp::Mul, idx, st)?
            };
            at = Some(match at {
                Some(a) => cx.binary(BinaryOp::Add, a, term)?,
                None => term,
            });
            weight = match (weight, w) {
                (Some(a), Some(b)) => Some(cx.binary(BinaryOp::Mul, a, b)?),
                (a, b) => a.or(b),
            };
        }
        let at = cx.cast(at.expect("at least one spatial dim"), DType::I64)?;
        let pos = cx.binary(BinaryOp::Add, at, base)?;
        let mut v = cx.op(Op::Gather { axis: 0 }, &[flat, pos])?;
        if let Some(w) = weight {
            v = cx.binary(BinaryOp::Mul, v, w)?;
        }
        sum = Some(match sum {
            Some(acc) => cx.binary(BinaryOp::Add, acc, v)?,
            None => v,
        });
    }
    Ok(sum.expect("at least one tap"))
}

/// DeformConv (2-d; opset 19), as ONNX's reference: each kernel tap of each
/// output position samples the input bilinearly (zero outside) at its place
/// moved by the offsets of its offset group, times the mask when given; the
/// samples, as columns `[N, group, C/group·kH·kW, oH·oW]`, times the weights
/// `[group, oC/group, C/group·kH·kW]` (one batched matmul), plus the bias.
pub fn deform_conv(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (x, w, off) = (cx.input(n, 0)?, cx.input(n, 1)?, cx.input(n, 2)?);
    let (b, mask) = (cx.opt_input(n, 3)?, cx.opt_input(n, 4)?);
    let xd = cx.fixed_dims(n, x, "DeformConv")?;
    let wd = cx.fixed_dims(n, w, "DeformConv")?;
    let od = cx.fixed_dims(n, off, "DeformConv")?;
    if xd.len() != 4 || wd.len() != 4 || od.len() != 4 {
        return Err(n.unsupported(format!("DeformConv of {} (2-d only)", cx.ty(x))));
    }
    if cx.ty(x).dtype != DType::F32 {
        return Err(n.unsupported(format!("DeformConv of {} (f32 only)", cx.ty(x).dtype)));
    }
    let (batch, c, h, wi) = (xd[0], xd[1], xd[2], xd[3]);
    let (oc, kh, kw) = (wd[0], wd[2], wd[3]);
    let group = n.int("group", 1)?.max(1) as usize;
    let og = n.int("offset_group", 1)?.max(1) as usize;
    let two = |name: &str, default: usize| -> Result<Vec<usize>> {
        match n.usizes(name)? {
            Some(v) if v.len() == 2 => Ok(v),
            Some(v) => Err(n.err(format!("{name} {v:?} must have 2 values"))),
            None => Ok(vec![default; 2]),
        }
    };
    let (strides, dil) = (two("strides", 1)?, two("dilations", 1)?);
    let pads = match n.usizes("pads")? {
        Some(p) if p.len() == 4 => p,
        Some(p) => return Err(n.err(format!("pads {p:?} must have 4 values"))),
        None => vec![0; 4],
    };
    let (oh, ow) = (od[2], od[3]);
    if c != wd[1] * group || !oc.is_multiple_of(group) || !c.is_multiple_of(og) || od[0] != batch || od[1] != og * kh * kw * 2 {
        return Err(n.err(format!(
            "input {}, weights {} and offsets {} do not fit group {group} and offset_group {og}",
            cx.ty(x),
            cx.ty(w),
            cx.ty(off)
        )));
    }
    // The offsets' positions must be the convolution's (as the reference checks).
    let fits = |len: usize, k: usize, d: usize, p0: usize, p1: usize, st: usize, o: usize| {
        let span = d.saturating_mul(k.saturating_sub(1)).saturating_add(1);
        let room = len.saturating_add(p0).saturating_add(p1);
        st > 0 && room >= span && (room - span) / st + 1 == o
    };
    if !fits(h, kh, dil[0], pads[0], pads[2], strides[0], oh) || !fits(wi, kw, dil[1], pads[1], pads[3], strides[1], ow) {
        return Err(n.err(format!("offsets over {oh}×{ow} positions do not fit the convolution's geometry")));
    }
    super::indexing::count(n, &[batch, c, kh * kw, oh * ow])?;
    let k = kh * kw;
    let cpg = c / og;
    // Offsets [N, og, kH, kW, 2, oH, oW]; the mask [N, og, kH, kW, oH, oW].
    let off7 = cx.reshape_fixed(off, &[batch, og, kh, kw, 2, oh, ow])?;
    let mask6 = match mask {
        Some(m) => Some(cx.reshape_fixed(m, &[batch, og, kh, kw, oh, ow])?),
        None => None,
    };
    let flat = cx.reshape(x, &[Dim::Fixed((batch * c * h * wi) as u64)])?;
    let pick = |cx: &mut Ctx, v: Value, starts: Vec<i64>, dims: &[usize]| -> Result<Value> {
        let ends = starts.iter().map(|s| s + 1).collect();
        let axes = (1..=starts.len() as i64).collect();
        let sl = cx.op(Op::Slice(Slice { starts, ends, axes: Some(axes), steps: None }), &[v])?;
        cx.reshape_fixed(sl, dims)
    };
    // Output-position coordinates before the offsets: [1, 1, oH, 1] and [1, 1, 1, oW].
    let ys: Vec<f32> = (0..oh).map(|i| (i * strides[0]) as f32 - pads[0] as f32).collect();
    let xs: Vec<f32> = (0..ow).map(|j| (j * strides[1]) as f32 - pads[1] as f32).collect();
    let ys = cx.konst(Tensor::f32(vec![1, 1, oh, 1], ys).map_err(|e| n.err(e.to_string()))?);
    let xs = cx.konst(Tensor::f32(vec![1, 1, 1, ow], xs).map_err(|e| n.err(e.to_string()))?);
    // Per offset group, the samples of each kernel tap: [N, C/og, oH, oW] each.
    let mut groups = Vec::with_capacity(og);
    for g in 0..og {
        let base: Vec<i64> = (0..batch).flat_map(|bi| (0..cpg).map(move |ci| ((bi * c + g * cpg + ci) * h * wi) as i64)).collect();
        let base = cx.konst(Tensor::i64(vec![batch, cpg, 1, 1], base).map_err(|e| n.err(e.to_string()))?);
        let mut taps_k = Vec::with_capacity(k);
        for ki in 0..kh {
            for kj in 0..kw {
                let dy = pick(cx, off7, vec![g as i64, ki as i64, kj as i64, 0], &[batch, 1, oh, ow])?;
                let dx = pick(cx, off7, vec![g as i64, ki as i64, kj as i64, 1], &[batch, 1, oh, ow])?;
                let mut ew = Ew { cx };
                let py = ew.add(ys, dy)?;
                let py = ew.addk(py, (ki * dil[0]) as f64)?;
                let px = ew.add(xs, dx)?;
                let px = ew.addk(px, (kj * dil[1]) as f64)?;
                let per_dim = vec![
                    taps(&mut ew, py, h, Mode::Linear, Padding::Zeros, true)?,
                    taps(&mut ew, px, wi, Mode::Linear, Padding::Zeros, true)?,
                ];
                let mut v = gather_taps(cx, flat, base, &per_dim, &[wi, 1])?;
                if let Some(m6) = mask6 {
                    let mk = pick(cx, m6, vec![g as i64, ki as i64, kj as i64], &[batch, 1, oh, ow])?;
                    v = cx.binary(BinaryOp::Mul, v, mk)?;
                }
                // [N, C/og, 1, oH·oW]
                taps_k.push(cx.reshape_fixed(v, &[batch, cpg, 1, oh * ow])?);
            }
        }
        groups.push(cx.op(Op::Concat { axis: 2 }, &taps_k)?);
    }
    // Columns [N, C, K, P] → [N, group, C/group·K, P].
    let cols = if groups.len() == 1 { groups[0] } else { cx.op(Op::Concat { axis: 1 }, &groups)? };
    let cols = cx.reshape_fixed(cols, &[batch, group, c / group * k, oh * ow])?;
    let wm = cx.reshape_fixed(w, &[group, oc / group, c / group * k])?;
    let y = cx.op(Op::MatMul, &[wm, cols])?;
    let mut y = cx.reshape_fixed(y, &[batch, oc, oh, ow])?;
    if let Some(b) = b {
        let b = cx.reshape_fixed(b, &[1, oc, 1, 1])?;
        y = cx.binary(BinaryOp::Add, y, b)?;
    }
    Ok(vec![y])
}

/// RoiAlign's taps along one spatial dim of `len` pixels: for each roi (`start`
/// and `bin`, `[R, 1, 1]`), output cell `p` and sample `i`, at
/// `start + bin·(p + (i + ½)/grid)`, with ONNX's reference rules — 0 beyond a
/// pixel outside, clamped at 0, the last pixel's tap doubled — reshaped to `to`.
#[allow(clippy::too_many_arguments)]
fn roi_taps(cx: &mut Ctx, n: &NodeRef, start: Value, bin: Value, len: usize, cells: usize, grid: usize, to: &[usize]) -> Result<Taps> {
    let c: Vec<f32> = (0..cells * grid).map(|e| (e / grid) as f32 + ((e % grid) as f32 + 0.5) / grid as f32).collect();
    let c = cx.konst(Tensor::f32(vec![1, cells, grid], c).map_err(|e| n.err(e.to_string()))?);
    let mut ew = Ew { cx };
    let v = ew.mul(bin, c)?;
    let v = ew.add(start, v)?;
    let out = ew.outside(v, -1.0, len as f64)?;
    let (zero, one) = (ew.k(0.0), ew.k(1.0));
    let valid = ew.select(out, zero, one)?;
    let v = ew.bin(BinaryOp::Max, v, zero)?;
    let low = ew.floor(v)?;
    let last = ew.k(len as f64 - 1.0);
    let edge = ew.bin(BinaryOp::GreaterEqual, low, last)?;
    let low = ew.select(edge, last, low)?;
    let up = ew.addk(low, 1.0)?;
    let high = ew.select(edge, last, up)?;
    let v = ew.select(edge, low, v)?;
    let l = ew.sub(v, low)?;
    let h = ew.ksub(1.0, l)?;
    let (wl, wh) = (ew.mul(h, valid)?, ew.mul(l, valid)?);
    let mut taps = Vec::with_capacity(2);
    for (i, w) in [(low, wl), (high, wh)] {
        taps.push((cx.reshape_fixed(i, to)?, Some(cx.reshape_fixed(w, to)?)));
    }
    Ok(taps)
}

/// RoiAlign (opset 10 and 16; `sampling_ratio` > 0): each roi's bins sampled
/// on a `sampling_ratio²` grid, bilinearly, from its image (`batch_indices`,
/// at run time), then averaged — or, in `max` mode, the largest weighted tap
/// of each sample (as ONNX's reference and ONNX Runtime compute it) maximized.
pub fn roi_align(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (x, rois, idx) = (cx.input(n, 0)?, cx.input(n, 1)?, cx.input(n, 2)?);
    let xd = cx.fixed_dims(n, x, "RoiAlign")?;
    let rd = cx.fixed_dims(n, rois, "RoiAlign")?;
    if xd.len() != 4 || rd.len() != 2 || rd[1] != 4 || cx.ty(x).dtype != DType::F32 || cx.ty(rois).dtype != DType::F32 {
        return Err(n.err(format!("the input must be f32 [N, C, H, W] and the rois f32 [R, 4], found {} and {}", cx.ty(x), cx.ty(rois))));
    }
    let (batch, c, h, w, r) = (xd[0], xd[1], xd[2], xd[3], rd[0]);
    if cx.dims(idx) != [Dim::Fixed(r as u64)] {
        return Err(n.err(format!("batch_indices must be [{r}], found {}", cx.ty(idx))));
    }
    let (oh, ow) = (n.int("output_height", 1)?, n.int("output_width", 1)?);
    let g = n.int("sampling_ratio", 0)?;
    if g <= 0 {
        return Err(n.unsupported("adaptive sampling (sampling_ratio 0): its sample count depends on the rois"));
    }
    if oh < 1 || ow < 1 || g > 1 << 10 {
        return Err(n.err(format!("output {oh}×{ow} and sampling_ratio {g} must be positive (and the ratio at most 1024)")));
    }
    let (oh, ow, g) = (oh as usize, ow as usize, g as usize);
    super::indexing::count(n, &[r, c, oh * g, ow * g])?;
    let scale = n.float("spatial_scale", 1.0)? as f64;
    let default_mode = if cx.opset >= 16 { "half_pixel" } else { "output_half_pixel" };
    let half = match n.string("coordinate_transformation_mode")?.as_deref().unwrap_or(default_mode) {
        "half_pixel" => true,
        "output_half_pixel" => false,
        m => return Err(n.err(format!("unknown coordinate_transformation_mode `{m}`"))),
    };
    let max = match n.string("mode")?.as_deref().unwrap_or("avg").to_lowercase().as_str() {
        "avg" => false,
        "max" => true,
        m => return Err(n.err(format!("unknown mode `{m}` (avg or max)"))),
    };
    // Each roi coordinate, scaled and shifted: [R, 1, 1].
    let coord = |cx: &mut Ctx, i: i64| -> Result<Value> {
        let v = cx.op(Op::Slice(Slice { starts: vec![i], ends: vec![i + 1], axes: Some(vec![1]), steps: None }), &[rois])?;
        let v = cx.reshape_fixed(v, &[r, 1, 1])?;
        let mut ew = Ew { cx };
        let v = ew.mulk(v, scale)?;
        ew.addk(v, if half { -0.5 } else { 0.0 })
    };
    let (x1, y1, x2, y2) = (coord(cx, 0)?, coord(cx, 1)?, coord(cx, 2)?, coord(cx, 3)?);
    let mut ew = Ew { cx };
    let (mut rw, mut rh) = (ew.sub(x2, x1)?, ew.sub(y2, y1)?);
    if !half {
        let one = ew.k(1.0);
        rw = ew.bin(BinaryOp::Max, rw, one)?;
        rh = ew.bin(BinaryOp::Max, rh, one)?;
    }
    let (bh, bw) = (ew.mulk(rh, 1.0 / oh as f64)?, ew.mulk(rw, 1.0 / ow as f64)?);
    // [R, 1, oH, G, 1, 1] and [R, 1, 1, 1, oW, G].
    let ys = roi_taps(cx, n, y1, bh, h, oh, g, &[r, 1, oh, g, 1, 1])?;
    let xs = roi_taps(cx, n, x1, bw, w, ow, g, &[r, 1, 1, 1, ow, g])?;
    // Each roi's image and channel in the flattened input: [R, C, 1, 1, 1, 1].
    let idx = cx.cast(idx, DType::I64)?;
    let idx = cx.reshape_fixed(idx, &[r, 1, 1, 1, 1, 1])?;
    let img = cx.konst(Tensor::i64(vec![], vec![(c * h * w) as i64]).map_err(|e| n.err(e.to_string()))?);
    let ch: Vec<i64> = (0..c).map(|ci| (ci * h * w) as i64).collect();
    let ch = cx.konst(Tensor::i64(vec![1, c, 1, 1, 1, 1], ch).map_err(|e| n.err(e.to_string()))?);
    let base = cx.binary(BinaryOp::Mul, idx, img)?;
    let base = cx.binary(BinaryOp::Add, base, ch)?;
    let flat = cx.reshape(x, &[Dim::Fixed((batch * c * h * w) as u64)])?;
    let samples = if max {
        // The largest of the four weighted taps.
        let mut best: Option<Value> = None;
        for &(yi, yw) in &ys {
            for &(xi, xw) in &xs {
                let v = gather_taps(cx, flat, base, &[vec![(yi, yw)], vec![(xi, xw)]], &[w, 1])?;
                best = Some(match best {
                    Some(b) => cx.binary(BinaryOp::Max, b, v)?,
                    None => v,
                });
            }
        }
        best.expect("four taps")
    } else {
        gather_taps(cx, flat, base, &[ys, xs], &[w, 1])?
    };
    let kind = if max { ReduceKind::Max } else { ReduceKind::Mean };
    Ok(vec![cx.op(Op::Reduce { kind, axes: vec![3, 5], keepdims: false }, &[samples])?])
}

/// AffineGrid: `[N, out…, s]` grid points `θ · (x, y[, z], 1)` of the
/// normalized output pixel centres (x along the last dim), for `size` =
/// `[N, C, out…]`.
pub fn affine_grid(cx: &mut Ctx, n: &NodeRef) -> Out {
    let theta = cx.input(n, 0)?;
    let size = cx.need_ints(n, 1, "size")?;
    let align = n.int("align_corners", 0)? != 0;
    let td = cx.fixed_dims(n, theta, "AffineGrid")?;
    let s = size.len().saturating_sub(2);
    if !(2..=3).contains(&s) || td.len() != 3 || td[1] != s || td[2] != s + 1 || size[0] != td[0] as i64 {
        return Err(n.err(format!("theta {} and size {size:?} are not a 2-d or 3-d affine grid", cx.ty(theta))));
    }
    if size.iter().any(|&d| d < 1) {
        return Err(n.err(format!("size {size:?} must be positive")));
    }
    let out: Vec<usize> = size[2..].iter().map(|&d| d as usize).collect();
    let points = super::indexing::count(n, &out)?;
    super::indexing::count(n, &[points, s + 1])?;
    let coord = |i: usize, len: usize| -> f64 {
        if align {
            if len == 1 { -1.0 } else { -1.0 + 2.0 * i as f64 / (len - 1) as f64 }
        } else {
            -1.0 + (2 * i + 1) as f64 / len as f64
        }
    };
    // Rows (x, y[, z], 1): x follows the last dim.
    let mut base = Vec::with_capacity(points * (s + 1));
    for p in 0..points {
        let mut rest = p;
        let mut idx = vec![0; s];
        for d in (0..s).rev() {
            idx[d] = rest % out[d];
            rest /= out[d];
        }
        for d in (0..s).rev() {
            base.push(coord(idx[d], out[d]) as f32);
        }
        base.push(1.0);
    }
    let base = cx.konst(Tensor::f32(vec![points, s + 1], base).map_err(|e| n.err(e.to_string()))?);
    let tt = cx.op(Op::Transpose { perm: Some(vec![0, 2, 1]) }, &[theta])?;
    let g = cx.op(Op::MatMul, &[base, tt])?;
    let mut dims = vec![td[0]];
    dims.extend(&out);
    dims.push(s);
    Ok(vec![cx.reshape_fixed(g, &dims)?])
}
