//! ONNX Resize (opsets 10–19) and Upsample (7, 9), imported as smelt's `resize`
//! with one size and scale per axis: `axes` (opset 18) and
//! `keep_aspect_ratio_policy` are resolved here, so the op sees the whole rank.
//! Before opset 11 (and for Upsample) coordinates are `asymmetric` and nearest
//! rounds as ONNX Runtime does there (`simple`: floor when upsampling, ceil when
//! downsampling). Sizes, scales and the region of interest must be constants;
//! an axis that changes size needs a fixed input size.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{CoordMode, NearestMode, Resize, ResizeMode};
use smelt_ir::shape::normalize_axis;
use smelt_ir::attr::DimSpec;
use smelt_ir::{Dim, Op, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[("Resize", resize), ("Upsample", upsample)];

fn mode(n: &NodeRef) -> Result<ResizeMode> {
    match n.string("mode")?.as_deref().unwrap_or("nearest") {
        "nearest" => Ok(ResizeMode::Nearest),
        "linear" | "bilinear" | "trilinear" => Ok(ResizeMode::Linear),
        "cubic" => Ok(ResizeMode::Cubic),
        m => Err(n.err(format!("mode `{m}` is not one of nearest, linear, cubic"))),
    }
}

/// A constant float input that may be absent or empty.
fn floats_if_any(cx: &Ctx, n: &NodeRef, i: usize, what: &str) -> Result<Vec<f32>> {
    if n.has_input(i) { cx.need_floats(n, i, what) } else { Ok(vec![]) }
}

/// The resize of `x` to the given sizes (or by the given scales) of the `axes`;
/// a size `None` is the input's own symbolic size (an exporter's `Shape` of it).
fn build(cx: &mut Ctx, n: &NodeRef, x: Value, axes: &[usize], scales: &[f32], sizes: &[Option<i64>], mut r: Resize) -> Out {
    let dims = cx.dims(x);
    let rank = dims.len();
    let fixed = |a: usize| match &dims[a] {
        Dim::Fixed(d) => Ok(*d as i64),
        Dim::Sym(s) => Err(n.unsupported(format!(
            "resizing axis {a} of symbolic size `{s}` (the output size would be an expression of it)"
        ))),
    };
    r.sizes = vec![-1; rank];
    if !sizes.is_empty() {
        if sizes.len() != axes.len() {
            return Err(n.err(format!("{} sizes for {} axes", sizes.len(), axes.len())));
        }
        if let Some(s) = sizes.iter().flatten().find(|&&s| s < 0) {
            return Err(n.err(format!("sizes must not be negative, found {s}")));
        }
        // The input sizes of the axes given a size (None: kept).
        let len: Vec<Option<i64>> =
            axes.iter().zip(sizes).map(|(&a, s)| s.map(|_| fixed(a)).transpose()).collect::<Result<_>>()?;
        let policy = n.string("keep_aspect_ratio_policy")?.unwrap_or_else(|| "stretch".into());
        let ratios = sizes.iter().zip(&len).map(|(s, l)| s.map_or(1.0, |s| s as f64 / l.unwrap_or(1).max(1) as f64));
        let keep = match policy.as_str() {
            "stretch" => None,
            "not_larger" => ratios.reduce(f64::min),
            "not_smaller" => ratios.reduce(f64::max),
            p => return Err(n.err(format!("keep_aspect_ratio_policy `{p}` is not one of stretch, not_larger, not_smaller"))),
        };
        match keep {
            None => {
                for (k, &a) in axes.iter().enumerate() {
                    r.sizes[a] = sizes[k].unwrap_or(-1);
                }
            }
            Some(s) => {
                r.scales = vec![1.0; rank];
                for (k, &a) in axes.iter().enumerate() {
                    let l = match len[k] {
                        Some(l) => l,
                        None if s == 1.0 => continue,
                        None => fixed(a)?,
                    };
                    r.scales[a] = s as f32;
                    r.sizes[a] = (s * l as f64 + 0.5) as i64;
                }
            }
        }
    } else {
        if scales.len() != axes.len() {
            return Err(n.err(format!("{} scales for {} axes (and no sizes)", scales.len(), axes.len())));
        }
        if let Some(s) = scales.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
            return Err(n.err(format!("scales must be positive, found {s}")));
        }
        r.scales = vec![1.0; rank];
        for (k, &a) in axes.iter().enumerate() {
            r.scales[a] = scales[k];
            if scales[k] != 1.0 {
                r.sizes[a] = (scales[k] as f64 * fixed(a)? as f64).floor() as i64;
            }
        }
    }
    if r.coord == CoordMode::TfCropAndResize {
        let roi = floats_if_any(cx, n, 1, "region of interest")?;
        if roi.len() != 2 * axes.len() {
            return Err(n.err(format!("tf_crop_and_resize needs a region of interest of {} values, found {}", 2 * axes.len(), roi.len())));
        }
        let mut full = [vec![0.0; rank], vec![1.0; rank]].concat();
        for (k, &a) in axes.iter().enumerate() {
            full[a] = roi[k];
            full[rank + a] = roi[axes.len() + k];
        }
        r.roi = full;
    }
    if let Some(s) = r.sizes.iter().find(|&&s| s > smelt_ir::shape::MAX_DIM as i64) {
        return Err(n.err(format!("output size {s} is too large (at most 2^48)")));
    }
    if r.antialias && r.mode == ResizeMode::Nearest {
        return Err(n.err("antialias applies to linear and cubic modes, not nearest"));
    }
    Ok(vec![cx.op(Op::Resize(r), &[x])?])
}

fn base(n: &NodeRef, coord: CoordMode, nearest: NearestMode) -> Result<Resize> {
    Ok(Resize {
        sizes: vec![],
        scales: vec![],
        mode: mode(n)?,
        coord,
        nearest,
        cubic_a: -0.75,
        exclude_outside: false,
        antialias: false,
        roi: vec![],
        extrapolation: 0.0,
    })
}

pub fn resize(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let rank = cx.rank(x);
    if cx.opset < 11 {
        let scales = cx.need_floats(n, 1, "scales")?;
        let r = base(n, CoordMode::Asymmetric, NearestMode::Simple)?;
        return build(cx, n, x, &(0..rank).collect::<Vec<_>>(), &scales, &[], r);
    }
    let coord = match n.string("coordinate_transformation_mode")?.as_deref().unwrap_or("half_pixel") {
        "half_pixel" => CoordMode::HalfPixel,
        "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
        "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
        "align_corners" => CoordMode::AlignCorners,
        "asymmetric" => CoordMode::Asymmetric,
        "tf_crop_and_resize" => CoordMode::TfCropAndResize,
        // `tf_half_pixel_for_nn` (opset 11–12 only) is half_pixel without the −0.5.
        m => return Err(n.unsupported(format!("coordinate_transformation_mode `{m}`"))),
    };
    let nearest = match n.string("nearest_mode")?.as_deref().unwrap_or("round_prefer_floor") {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        m => return Err(n.err(format!("nearest_mode `{m}` is not one of round_prefer_floor, round_prefer_ceil, floor, ceil"))),
    };
    let mut r = base(n, coord, nearest)?;
    r.cubic_a = n.float("cubic_coeff_a", -0.75)?;
    r.exclude_outside = n.bool("exclude_outside", false)?;
    r.antialias = n.bool("antialias", false)?;
    r.extrapolation = n.float("extrapolation_value", 0.0)?;
    let axes: Vec<usize> = match n.ints("axes")? {
        Some(a) => {
            let mut v = Vec::new();
            for &ax in &a {
                let ax = normalize_axis(ax, rank).ok_or_else(|| n.err(format!("axis {ax} is out of range for rank {rank}")))?;
                if v.contains(&ax) {
                    return Err(n.err(format!("axis {ax} is repeated in axes {a:?}")));
                }
                v.push(ax);
            }
            v
        }
        None => (0..rank).collect(),
    };
    let scales = floats_if_any(cx, n, 2, "scales")?;
    let sizes: Vec<Option<i64>> = if n.has_input(3) {
        let dims = cx.need_known(n, 3, "sizes")?.dims().ok_or_else(|| n.err("sizes must be a 1-d int tensor"))?;
        let xd = cx.dims(x);
        let mut v = Vec::new();
        for (k, d) in dims.iter().enumerate() {
            v.push(match d {
                DimSpec::Int(i) => Some(*i),
                // An exporter's `Shape` of the input, kept symbolic: the axis keeps its size.
                DimSpec::Sym(s) if axes.get(k).is_some_and(|&a| matches!(&xd[a], Dim::Sym(t) if **t == **s)) => None,
                DimSpec::Sym(s) => return Err(n.unsupported(format!("a size given by the symbol `{s}` of another dim"))),
            });
        }
        v
    } else {
        vec![]
    };
    if !scales.is_empty() && !sizes.is_empty() {
        return Err(n.err("only one of scales and sizes may be given"));
    }
    if scales.is_empty() && sizes.is_empty() {
        return Err(n.err("one of scales and sizes must be given"));
    }
    build(cx, n, x, &axes, &scales, &sizes, r)
}

pub fn upsample(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let rank = cx.rank(x);
    let scales = if n.has_input(1) {
        cx.need_floats(n, 1, "scales")?
    } else {
        n.floats("scales")?.ok_or_else(|| n.err("no scales"))?
    };
    let r = base(n, CoordMode::Asymmetric, NearestMode::Simple)?;
    build(cx, n, x, &(0..rank).collect::<Vec<_>>(), &scales, &[], r)
}
