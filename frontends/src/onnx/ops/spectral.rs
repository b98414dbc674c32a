//! ONNX signal ops, written with smelt's ops at import: DFT and STFT as one
//! matrix product with a constant DFT matrix, and the window functions
//! (HannWindow, HammingWindow, BlackmanWindow) and MelWeightMatrix as constants.
//!
//! A DFT of length `N` along an axis of `L` samples is linear in the samples' real
//! and imaginary parts, so the signal (the axis and the real/imaginary dim moved
//! last and merged, `[…, L·c]`) times a constant `[L·c, K·c']` matrix is the
//! transform, `[…, K, c']` after a reshape and the transpose back. The matrix
//! holds `cos` and `sin` of `2π·(k·n mod N)/N` (computed in f64): zero-padding to
//! `N` drops rows, truncation leaves them out, `onesided` keeps the first
//! `N/2 + 1` frequencies, `inverse` divides by `N`, and the one-sided inverse
//! (irfft) counts each frequency strictly between 0 and `N/2` twice and returns
//! the real part only (`c' = 1`), as numpy's `irfft`. The sizes must be known
//! at import (`dft_length`, `axis`, STFT's `frame_step` and `frame_length`).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use super::super::tensor::dtype;
use smelt_ir::{BinaryOp, DType, Data, Dim, Op, Tensor, Value};
use std::f64::consts::PI;

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("DFT", dft),
    ("STFT", stft),
    ("HannWindow", window),
    ("HammingWindow", window),
    ("BlackmanWindow", window),
    ("MelWeightMatrix", mel_weight_matrix),
];

/// What the DFT matrix computes.
#[derive(Clone, Copy)]
struct Transform {
    /// The transform's length `N`.
    n: usize,
    inverse: bool,
    onesided: bool,
}

impl Transform {
    /// How many outputs along the axis.
    fn outputs(self) -> usize {
        if self.onesided && !self.inverse { self.n / 2 + 1 } else { self.n }
    }

    /// How many of `len` inputs along the axis take part.
    fn used(self, len: usize) -> usize {
        len.min(if self.onesided && self.inverse { self.n / 2 + 1 } else { self.n })
    }

    /// The `[len·c, K·c']` matrix for inputs with `c` parts (1: real, 2: complex);
    /// `c'` is 1 for the one-sided inverse, else 2.
    fn matrix(self, len: usize, c: usize) -> (Vec<f32>, usize) {
        let (k_out, c_out) = (self.outputs(), if self.onesided && self.inverse { 1 } else { 2 });
        let cols = k_out * c_out;
        let mut m = vec![0f32; len * c * cols];
        let n = self.n;
        for i in 0..self.used(len) {
            for o in 0..k_out {
                let theta = 2.0 * PI * ((i * o) % n) as f64 / n as f64;
                let (cs, sn) = (theta.cos(), theta.sin());
                // out = Σ (a + ib)·e^(∓iθ), scaled.
                let (re_a, re_b, im_a, im_b, scale) = if self.inverse {
                    // The one-sided inverse counts frequency i twice unless it is
                    // 0 or N/2 (its own mirror).
                    let twice = self.onesided && i != 0 && 2 * i != n;
                    (cs, -sn, sn, cs, if twice { 2.0 } else { 1.0 } / n as f64)
                } else {
                    (cs, sn, -sn, cs, 1.0)
                };
                let row = |part: usize| (i * c + part) * cols;
                m[row(0) + o * c_out] = (re_a * scale) as f32;
                if c == 2 {
                    m[row(1) + o * c_out] = (re_b * scale) as f32;
                }
                if c_out == 2 {
                    m[row(0) + o * c_out + 1] = (im_a * scale) as f32;
                    if c == 2 {
                        m[row(1) + o * c_out + 1] = (im_b * scale) as f32;
                    }
                }
            }
        }
        (m, c_out)
    }
}

/// The transform of `x` (`[…, L at axis, …, c]`) along `axis`.
fn transform(cx: &mut Ctx, n: &NodeRef, x: Value, axis: usize, t: Transform) -> Result<Value> {
    let xt = cx.ty(x);
    if xt.dtype != DType::F32 {
        return Err(n.unsupported(format!("a DFT of {} (f32 only)", xt.dtype)));
    }
    let dims = cx.dims(x);
    let r = dims.len();
    if r < 2 || axis >= r - 1 {
        return Err(n.err(format!("axis {axis} is not a signal axis of {xt}")));
    }
    let c = match dims[r - 1].fixed() {
        Some(c @ (1 | 2)) => c as usize,
        _ => return Err(n.err(format!("the last dim must be 1 (real) or 2 (complex), found {xt}"))),
    };
    let len = dims[axis].fixed().ok_or_else(|| n.unsupported("a DFT along a symbolic dim"))? as usize;
    if t.n == 0 {
        return Err(n.err("dft_length must be at least 1"));
    }
    // [others…, L, c] → [others…, L·c]
    let mut perm: Vec<usize> = (0..r - 1).filter(|&i| i != axis).collect();
    perm.extend([axis, r - 1]);
    let moved = cx.op(Op::Transpose { perm: Some(perm.clone()) }, &[x])?;
    let mut flat: Vec<Dim> = perm[..r - 2].iter().map(|&i| dims[i].clone()).collect();
    flat.push(Dim::Fixed((len * c) as u64));
    let flat_x = cx.reshape(moved, &flat)?;
    super::indexing::count(n, &[len, c, t.outputs(), 2])?;
    let (m, c_out) = t.matrix(len, c);
    let k = t.outputs();
    let m = Tensor::f32(vec![len * c, k * c_out], m).map_err(|e| n.err(e.to_string()))?;
    let m = cx.konst(m);
    let y = cx.op(Op::MatMul, &[flat_x, m])?;
    let mut split = flat;
    split.pop();
    split.extend([Dim::Fixed(k as u64), Dim::Fixed(c_out as u64)]);
    let y = cx.reshape(y, &split)?;
    // Back to x's order: the inverse permutation.
    let mut inv = vec![0; r];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    cx.op(Op::Transpose { perm: Some(inv) }, &[y])
}

/// A scalar integer input (`dft_length`, `frame_step`, …), which must be known.
fn int_input(cx: &Ctx, n: &NodeRef, i: usize, what: &str) -> Result<Option<i64>> {
    if !n.has_input(i) {
        return Ok(None);
    }
    match cx.need_ints(n, i, what)?[..] {
        [v] => Ok(Some(v)),
        ref v => Err(n.err(format!("{what} must be one integer, found {} values", v.len()))),
    }
}

pub fn dft(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let r = cx.rank(x) as i64;
    let axis = if cx.opset >= 20 { int_input(cx, n, 2, "the axis")?.unwrap_or(-2) } else { n.int("axis", 1)? };
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r - 1).contains(&a) {
        return Err(n.err(format!("axis {axis} is out of range for a signal of rank {r}")));
    }
    let (inverse, onesided) = (n.int("inverse", 0)? != 0, n.int("onesided", 0)? != 0);
    let len = cx.dims(x)[a as usize].fixed().ok_or_else(|| n.unsupported("a DFT along a symbolic dim"))? as i64;
    let dft_len = match int_input(cx, n, 1, "dft_length")? {
        Some(l) => l,
        None if inverse && onesided => 2 * (len - 1),
        None => len,
    };
    if dft_len < 1 {
        return Err(n.err(format!("dft_length must be at least 1, found {dft_len}")));
    }
    Ok(vec![transform(cx, n, x, a as usize, Transform { n: dft_len as usize, inverse, onesided })?])
}

/// STFT: frames of `frame_length` samples every `frame_step` along axis 1 of
/// `[batch, L, c]` (or a real `[batch, L]`; a gather with constant positions),
/// times the window, then the DFT of each frame: `[batch, frames, bins, 2]`.
pub fn stft(cx: &mut Ctx, n: &NodeRef) -> Out {
    let mut x = cx.input(n, 0)?;
    let mut dims = cx.dims(x);
    // A real signal without its last dim (`[batch, length]`, as PyTorch's
    // exporter writes it and ONNX Runtime takes it).
    if dims.len() == 2 {
        dims.push(Dim::Fixed(1));
        x = cx.reshape(x, &dims)?;
    }
    if dims.len() != 3 {
        return Err(n.err(format!("the signal must be [batch, length, 1 or 2], found {}", cx.ty(x))));
    }
    let len = dims[1].fixed().ok_or_else(|| n.unsupported("an STFT of a symbolic length"))? as i64;
    let step = int_input(cx, n, 1, "frame_step")?.ok_or_else(|| n.err("STFT needs frame_step"))?;
    let window = cx.opt_input(n, 2)?;
    let wlen = match window {
        Some(w) => match cx.dims(w)[..] {
            [Dim::Fixed(l)] => Some(l as i64),
            _ => return Err(n.err(format!("the window must be 1-d, found {}", cx.ty(w)))),
        },
        None => None,
    };
    let frame = match (int_input(cx, n, 3, "frame_length")?, wlen) {
        (Some(f), Some(w)) if f != w => {
            return Err(n.err(format!("frame_length {f} differs from the window's length {w}")));
        }
        (Some(f), _) => f,
        (None, Some(w)) => w,
        (None, None) => len,
    };
    if step < 1 || frame < 1 || frame > len {
        return Err(n.err(format!("frames of {frame} every {step} do not fit a signal of {len}")));
    }
    let frames = (len - frame) / step + 1;
    super::indexing::count(n, &[frames as usize, frame as usize])?;
    let pos: Vec<i64> = (0..frames).flat_map(|f| (0..frame).map(move |i| f * step + i)).collect();
    let pos = cx.konst(Tensor::i64(vec![frames as usize, frame as usize], pos).map_err(|e| n.err(e.to_string()))?);
    // [batch, frames, frame, c]
    let mut y = cx.op(Op::Gather { axis: 1 }, &[x, pos])?;
    if let Some(w) = window {
        let w = cx.reshape(w, &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(frame as u64), Dim::Fixed(1)])?;
        y = cx.binary(BinaryOp::Mul, y, w)?;
    }
    let onesided = n.int("onesided", 1)? != 0;
    Ok(vec![transform(cx, n, y, 2, Transform { n: frame as usize, inverse: false, onesided })?])
}

/// The window functions: `size` values of a cosine sum, periodic (period
/// `size`, the default) or symmetric (`size − 1`).
pub fn window(cx: &mut Ctx, n: &NodeRef) -> Out {
    let size = int_input(cx, n, 0, "the window size")?.ok_or_else(|| n.err("a window needs its size"))?;
    if !(0..=1 << 24).contains(&size) {
        return Err(n.err(format!("window size {size} is out of range")));
    }
    let to = dtype(n.int("output_datatype", 1)? as i32).map_err(|e| n.unsupported(e))?;
    let period = if n.int("periodic", 1)? != 0 { size } else { size - 1 } as f64;
    // a₀ − a₁·cos(2πi/P) + a₂·cos(4πi/P)
    let (a0, a1, a2) = match n.op_type() {
        "HannWindow" => (0.5, 0.5, 0.0),
        "HammingWindow" => (25.0 / 46.0, 21.0 / 46.0, 0.0),
        _ => (0.42, 0.5, 0.08),
    };
    let v: Vec<f32> = (0..size)
        .map(|i| {
            let t = 2.0 * PI * i as f64 / period;
            (a0 - a1 * t.cos() + a2 * (2.0 * t).cos()) as f32
        })
        .collect();
    let t = Tensor::new(vec![size as usize], Data::from_f32(to, &v)).map_err(|e| n.err(e.to_string()))?;
    Ok(vec![cx.konst(t)])
}

/// A scalar input that must be known, as f64.
fn float_input(cx: &Ctx, n: &NodeRef, i: usize, what: &str) -> Result<f64> {
    match cx.need_tensor(n, i, what)?.to_f32()[..] {
        [v] => Ok(v as f64),
        ref v => Err(n.err(format!("{what} must be one value, found {}", v.len()))),
    }
}

/// MelWeightMatrix: `[dft_length/2 + 1, num_mel_bins]` triangular filters on
/// the mel scale, as ONNX's reference computes them (its band edges included).
pub fn mel_weight_matrix(cx: &mut Ctx, n: &NodeRef) -> Out {
    let bins = int_input(cx, n, 0, "num_mel_bins")?.ok_or_else(|| n.err("num_mel_bins is missing"))?;
    let dft = int_input(cx, n, 1, "dft_length")?.ok_or_else(|| n.err("dft_length is missing"))?;
    let rate = int_input(cx, n, 2, "sample_rate")?.ok_or_else(|| n.err("sample_rate is missing"))?;
    let (lo, hi) = (float_input(cx, n, 3, "lower_edge_hertz")?, float_input(cx, n, 4, "upper_edge_hertz")?);
    if bins < 1 || dft < 1 || rate < 1 || bins > 1 << 16 || dft > 1 << 24 {
        return Err(n.err(format!("num_mel_bins {bins}, dft_length {dft} and sample_rate {rate} must be positive")));
    }
    let to = dtype(n.int("output_datatype", 1)? as i32).map_err(|e| n.unsupported(e))?;
    let (bins, spec) = (bins as usize, dft as usize / 2 + 1);
    super::indexing::count(n, &[spec, bins])?;
    let mel = |hz: f64| 2595.0 * (1.0 + hz / 700.0).log10();
    let (lo_mel, hi_mel) = (mel(lo), mel(hi));
    let step = (hi_mel - lo_mel) / (bins + 2) as f64;
    let edges: Vec<i64> = (0..bins + 2)
        .map(|i| {
            let hz = 700.0 * (10f64.powf((i as f64 * step + lo_mel) / 2595.0) - 1.0);
            ((dft + 1) as f64 * hz / rate as f64).floor() as i64
        })
        .collect();
    let mut w = vec![0f32; spec * bins];
    let mut set = |j: i64, i: usize, v: f64| -> Result<()> {
        let j = usize::try_from(j).ok().filter(|&j| j < spec).ok_or_else(|| n.err(format!("mel band edge {j} is outside the {spec} spectrogram bins")))?;
        w[j * bins + i] = v as f32;
        Ok(())
    };
    for i in 0..bins {
        let (l, c, h) = (edges[i], edges[i + 1], edges[i + 2]);
        if c == l {
            set(c, i, 1.0)?;
        } else {
            for j in l..=c {
                set(j, i, (j - l) as f64 / (c - l) as f64)?;
            }
        }
        for j in c..h {
            set(j, i, (h - j) as f64 / (h - c) as f64)?;
        }
    }
    let t = Tensor::new(vec![spec, bins], Data::from_f32(to, &w)).map_err(|e| n.err(e.to_string()))?;
    Ok(vec![cx.konst(t)])
}
