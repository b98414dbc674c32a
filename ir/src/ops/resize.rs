//! Resize: interpolation of a tensor to other sizes along some of its axes, as
//! ONNX Resize (opsets 10–19; Upsample is its `asymmetric` nearest/linear case):
//! nearest (four rounding modes), n-linear and cubic interpolation, every
//! coordinate transformation, antialiasing when downsampling, `exclude_outside`,
//! and `tf_crop_and_resize` with its region of interest and extrapolation value.
//!
//! Interpolation is separable: each resized axis in turn, the next reading what
//! the last wrote. [`axis_taps`] computes, for one axis, each output
//! coordinate's input indices and weights (or that it extrapolates), in f64 as
//! the ONNX reference does; the interpreter and the lowering both apply them.

use super::Op;
use crate::attr::{AttrReader, AttrValue};
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

/// How output values are computed from the input's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResizeMode {
    Nearest,
    Linear,
    Cubic,
}

/// How an output coordinate maps to an input coordinate (ONNX
/// `coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordMode {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

/// How nearest mode rounds a fractional input coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Floor when upsampling the axis, ceil when downsampling: what ONNX
    /// Runtime does for Resize before opset 11 and for Upsample.
    Simple,
}

const MODES: [(&str, ResizeMode); 3] = [("nearest", ResizeMode::Nearest), ("linear", ResizeMode::Linear), ("cubic", ResizeMode::Cubic)];
const COORDS: [(&str, CoordMode); 6] = [
    ("half_pixel", CoordMode::HalfPixel),
    ("half_pixel_symmetric", CoordMode::HalfPixelSymmetric),
    ("pytorch_half_pixel", CoordMode::PytorchHalfPixel),
    ("align_corners", CoordMode::AlignCorners),
    ("asymmetric", CoordMode::Asymmetric),
    ("tf_crop_and_resize", CoordMode::TfCropAndResize),
];
const NEAREST: [(&str, NearestMode); 5] = [
    ("round_prefer_floor", NearestMode::RoundPreferFloor),
    ("round_prefer_ceil", NearestMode::RoundPreferCeil),
    ("floor", NearestMode::Floor),
    ("ceil", NearestMode::Ceil),
    ("simple", NearestMode::Simple),
];

/// `resize(x) {sizes, scales = [], mode = nearest, coord = half_pixel, nearest =
/// round_prefer_floor, cubic_a = -0.75, exclude_outside = false, antialias =
/// false, roi = [], extrapolation = 0}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    /// The output size of each axis; -1 keeps the input's (which may be symbolic).
    pub sizes: Vec<i64>,
    /// The scale of each axis; empty: `size / input size` (exactly, in f64).
    pub scales: Vec<f32>,
    pub mode: ResizeMode,
    pub coord: CoordMode,
    pub nearest: NearestMode,
    pub cubic_a: f32,
    pub exclude_outside: bool,
    pub antialias: bool,
    /// `tf_crop_and_resize`'s region: starts of each axis, then ends (fractions
    /// of the input); empty: 0…1.
    pub roi: Vec<f32>,
    #[serde(with = "crate::serde_float")]
    pub extrapolation: f32,
}

fn name_of<T: PartialEq>(table: &[(&'static str, T)], v: &T) -> &'static str {
    table.iter().find(|(_, x)| x == v).map(|(n, _)| *n).unwrap_or("?")
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    if name != "resize" {
        return None;
    }
    let sizes = a.ints("sizes", None);
    let scales = a.floats("scales", Some(vec![]));
    let r = Resize {
        mode: a.choice("mode", &MODES, Some(ResizeMode::Nearest)).unwrap_or(ResizeMode::Nearest),
        coord: a.choice("coord", &COORDS, Some(CoordMode::HalfPixel)).unwrap_or(CoordMode::HalfPixel),
        nearest: a.choice("nearest", &NEAREST, Some(NearestMode::RoundPreferFloor)).unwrap_or(NearestMode::RoundPreferFloor),
        cubic_a: a.float("cubic_a", Some(-0.75)),
        exclude_outside: a.bool("exclude_outside", false),
        antialias: a.bool("antialias", false),
        roi: a.floats("roi", Some(vec![])),
        extrapolation: a.float("extrapolation", Some(0.0)),
        sizes,
        scales,
    };
    if !r.scales.is_empty() && r.scales.len() != r.sizes.len() {
        a.error(format!("resize has {} sizes but {} scales", r.sizes.len(), r.scales.len()));
    }
    if r.scales.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        a.error(format!("resize scales must be positive, found {:?}", r.scales));
    }
    if r.sizes.iter().any(|&s| s < -1) {
        a.error(format!("resize sizes must be -1 (the input's) or at least 0, found {:?}", r.sizes));
    }
    if !r.roi.is_empty() && r.roi.len() != 2 * r.sizes.len() {
        a.error(format!("resize roi has {} values, expected {} (starts, then ends)", r.roi.len(), 2 * r.sizes.len()));
    }
    if r.antialias && r.mode == ResizeMode::Nearest {
        a.error("resize antialias applies to linear and cubic modes");
    }
    Some(Op::Resize(r))
}

impl Resize {
    pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![("sizes", AttrValue::ints(&self.sizes))];
        if !self.scales.is_empty() {
            v.push(("scales", AttrValue::List(self.scales.iter().map(|&s| AttrValue::Float(s)).collect())));
        }
        if self.mode != ResizeMode::Nearest {
            v.push(("mode", AttrValue::ident(name_of(&MODES, &self.mode))));
        }
        if self.coord != CoordMode::HalfPixel {
            v.push(("coord", AttrValue::ident(name_of(&COORDS, &self.coord))));
        }
        if self.nearest != NearestMode::RoundPreferFloor {
            v.push(("nearest", AttrValue::ident(name_of(&NEAREST, &self.nearest))));
        }
        if self.cubic_a != -0.75 {
            v.push(("cubic_a", AttrValue::Float(self.cubic_a)));
        }
        if self.exclude_outside {
            v.push(("exclude_outside", AttrValue::bool(true)));
        }
        if self.antialias {
            v.push(("antialias", AttrValue::bool(true)));
        }
        if !self.roi.is_empty() {
            v.push(("roi", AttrValue::List(self.roi.iter().map(|&s| AttrValue::Float(s)).collect())));
        }
        if self.extrapolation != 0.0 {
            v.push(("extrapolation", AttrValue::Float(self.extrapolation)));
        }
        v
    }

    pub fn infer(&self, x: &TensorType) -> Result<TensorType, String> {
        super::want_float("resize", "input", x)?;
        if self.sizes.len() != x.rank() {
            return Err(format!("resize has {} sizes for a rank-{} input {x}", self.sizes.len(), x.rank()));
        }
        let dims: Vec<Dim> = self
            .sizes
            .iter()
            .zip(x.dims())
            .enumerate()
            .map(|(i, (&s, d))| match (s, d) {
                (-1, d) => Ok(d.clone()),
                (s, Dim::Fixed(_)) => Ok(Dim::Fixed(s as u64)),
                (s, Dim::Sym(n)) => Err(format!(
                    "resize of axis {i} to {s} needs a fixed input size, found the symbol {} in {x} (bind it first)",
                    crate::text::quote(n)
                )),
            })
            .collect::<Result<_, String>>()?;
        Ok(TensorType::new(x.dtype, Shape(dims)))
    }

    /// The scale of axis `i` of an input of size `len` resized to `out`.
    pub fn scale(&self, i: usize, len: usize, out: usize) -> f64 {
        match self.scales.get(i) {
            Some(&s) => s as f64,
            None => out as f64 / len as f64,
        }
    }

    /// The axes that resizing changes, in order: those whose size or scale is
    /// not the input's, or whose region is not all of it.
    pub fn resized_axes(&self, in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
        let r = in_shape.len();
        (0..r)
            .filter(|&i| {
                let s = self.scale(i, in_shape[i], out_shape[i]);
                let whole = self.roi.is_empty() || (self.roi[i] == 0.0 && self.roi[r + i] == 1.0);
                !((s - 1.0).abs() <= 1e-9 && in_shape[i] == out_shape[i] && (whole || self.coord != CoordMode::TfCropAndResize))
            })
            .collect()
    }
}

/// One axis's interpolation: output coordinate `o` reads input indices
/// `idx[o·taps + t]` with weights `w[o·taps + t]`, unless `outside[o]` (then it
/// is the extrapolation value). Nearest mode has one tap: the neighbour chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisTaps {
    pub taps: usize,
    pub idx: Vec<usize>,
    pub w: Vec<f64>,
    pub outside: Vec<bool>,
}

/// Cubic convolution weight of distance `x` (Keys, with coefficient `a`).
fn cubic(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// The weights of the taps around an input coordinate whose distance past the
/// tap at its left is `ratio` (in (0, 1]: an integer coordinate takes the tap
/// at its left), as the ONNX reference computes them.
fn coeffs(r: &Resize, ratio: f64, scale: f64) -> Vec<f64> {
    let a = r.cubic_a as f64;
    match (r.mode, r.antialias) {
        (ResizeMode::Nearest, _) => {
            if ratio == 1.0 {
                return vec![0.0, 1.0];
            }
            let right = match r.nearest {
                NearestMode::RoundPreferFloor => ratio > 0.5,
                NearestMode::RoundPreferCeil => ratio >= 0.5,
                NearestMode::Floor => false,
                NearestMode::Ceil => true,
                NearestMode::Simple => scale < 1.0,
            };
            if right { vec![0.0, 1.0] } else { vec![1.0, 0.0] }
        }
        (ResizeMode::Linear, false) => vec![1.0 - ratio, ratio],
        (ResizeMode::Cubic, false) => {
            vec![cubic(ratio + 1.0, a), cubic(ratio, a), cubic(1.0 - ratio, a), cubic(2.0 - ratio, a)]
        }
        (ResizeMode::Linear, true) => {
            let s = scale.min(1.0);
            let start = (-1.0 / s).floor() as i64 + 1;
            let n = 2 - 2 * start;
            let c: Vec<f64> = (start..start + n).map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0)).collect();
            let sum: f64 = c.iter().sum();
            c.into_iter().map(|x| x / sum).collect()
        }
        (ResizeMode::Cubic, true) => {
            let s = scale.min(1.0);
            let start = (-2.0 / s).floor() as i64 + 1;
            let end = 2 - start;
            let c: Vec<f64> = (start..end).map(|i| cubic(s * (i as f64 - ratio), a)).collect();
            let sum: f64 = c.iter().sum();
            c.into_iter().map(|x| x / sum).collect()
        }
    }
}

/// The taps of axis `axis` (of `rank`) of an input of size `len` resized to
/// `out`.
pub fn axis_taps(r: &Resize, axis: usize, rank: usize, len: usize, out: usize) -> AxisTaps {
    let scale = r.scale(axis, len, out);
    let out_f = scale * len as f64;
    let (lo, hi) = if r.roi.is_empty() { (0.0, 1.0) } else { (r.roi[axis] as f64, r.roi[rank + axis] as f64) };
    let mut taps = 0;
    let (mut idx, mut w, mut outside) = (vec![], vec![], vec![]);
    for o in 0..out {
        let y = o as f64;
        // As the ONNX specification (and ONNX Runtime): `align_corners`,
        // `tf_crop_and_resize` and `pytorch_half_pixel` use the integer output
        // length (the ONNX reference evaluator uses `scale · len` there).
        let n = out as f64;
        let x = match r.coord {
            CoordMode::AlignCorners => {
                if out == 1 {
                    0.0
                } else {
                    y * (len as f64 - 1.0) / (n - 1.0)
                }
            }
            CoordMode::Asymmetric => y / scale,
            CoordMode::TfCropAndResize => {
                if out > 1 {
                    lo * (len as f64 - 1.0) + y * (hi - lo) * (len as f64 - 1.0) / (n - 1.0)
                } else {
                    0.5 * (lo + hi) * (len as f64 - 1.0)
                }
            }
            CoordMode::PytorchHalfPixel => {
                if out > 1 {
                    (y + 0.5) / scale - 0.5
                } else {
                    0.0
                }
            }
            CoordMode::HalfPixel => (y + 0.5) / scale - 0.5,
            CoordMode::HalfPixelSymmetric => {
                let adjustment = out as f64 / out_f;
                let center = len as f64 / 2.0;
                center * (1.0 - adjustment) + (y + 0.5) / scale - 0.5
            }
        };
        outside.push(r.coord == CoordMode::TfCropAndResize && (x < 0.0 || x > len as f64 - 1.0));
        let xi = x.floor();
        let ratio = if x == xi { 1.0 } else { x - xi };
        let mut c = coeffs(r, ratio, scale);
        let picked_right = c.len() == 2 && c[1] == 1.0;
        let n = c.len();
        taps = n;
        // The n taps nearest x, ties to the smaller index (the reference's
        // edge-padded neighbourhood), clamped into the input.
        let pad = n.div_ceil(2) as f64;
        let xp = x + pad;
        let p = xp.floor();
        let frac = xp - p;
        let off = if n.is_multiple_of(2) {
            if frac == 0.0 { -((n / 2) as i64) } else { -((n / 2) as i64) + 1 }
        } else {
            let base = -(((n - 1) / 2) as i64);
            if frac <= 0.5 { base } else { base + 1 }
        };
        let start = p as i64 + off - pad as i64;
        let raw: Vec<i64> = (0..n as i64).map(|t| start + t).collect();
        if r.exclude_outside {
            for (ci, &i) in c.iter_mut().zip(&raw) {
                if i < 0 || i >= len as i64 {
                    *ci = 0.0;
                }
            }
            let sum: f64 = c.iter().sum();
            let sum = if sum == 0.0 { 1.0 } else { sum };
            c.iter_mut().for_each(|x| *x /= sum);
        }
        let clamp = |i: i64| i.clamp(0, len.max(1) as i64 - 1) as usize;
        if r.mode == ResizeMode::Nearest {
            // One tap: the neighbour chosen (weight 1, or 0 where
            // `exclude_outside` dropped it), so that the others are not read.
            let j = usize::from(picked_right);
            taps = 1;
            idx.push(clamp(raw[j]));
            w.push(c[j]);
        } else {
            idx.extend(raw.iter().map(|&i| clamp(i)));
            w.extend(c);
        }
    }
    AxisTaps { taps, idx, w, outside }
}
