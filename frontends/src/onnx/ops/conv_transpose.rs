//! ONNX ConvTranspose (1-d, 2-d and 3-d), lowered exactly to smelt ops:
//!
//! 1. zero insertion: the input `[N, C, H, W]` is reshaped to `[N, C, H, 1, W, 1]`,
//!    padded with `stride − 1` zeros after each element and reshaped to
//!    `[N, C, H·s, W·s]`;
//! 2. the weights `[C, M/g, kH, kW]` become `[M, C/g, kH, kW]` (groups regrouped,
//!    then flipped in space by a slice with step −1);
//! 3. a stride-1 convolution with the same dilation and padding
//!    `d·(k−1) − pad_begin` before and `d·(k−1) − pad_end + output_padding − (s−1)`
//!    after; a negative amount crops the output instead (for a stride-1 convolution,
//!    cropping the input's edge removes exactly that many outputs).
//!
//! Pads follow the ONNX reference: explicit `pads`, or `auto_pad` SAME_* with the
//! total padding from `output_shape` (default `input·stride`); an `output_shape`
//! beside explicit pads extends (or crops) the end.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use super::tensor::pad_crop;
use smelt_ir::ops::{Conv, PadMode, Slice};
use smelt_ir::{Dim, Op, Value};

pub fn conv_transpose(cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    let x = cx.input(n, 0)?;
    let w = cx.input(n, 1)?;
    let b = cx.opt_input(n, 2)?;
    let xd = cx.dims(x);
    let r = match xd.len() {
        k @ 3..=5 => k - 2,
        k => {
            return Err(n.unsupported(format!("{}-d input: smelt has 1-d, 2-d and 3-d convolution", k.saturating_sub(2))));
        }
    };
    let wd = cx.fixed_dims(n, w, "ConvTranspose weights")?;
    if wd.len() != r + 2 {
        return Err(n.err(format!("weights {} do not fit a {r}-d transposed conv", cx.ty(w))));
    }
    let g = super::nn::group(n)?;
    let c = xd[1].fixed().ok_or_else(|| n.unsupported("a symbolic channel dim"))? as usize;
    if wd[0] != c || !c.is_multiple_of(g) {
        return Err(n.err(format!("weights {} do not fit {c} input channels in {g} groups", cx.ty(w))));
    }
    let m = wd[1].checked_mul(g).ok_or_else(|| n.err(format!("{} output channels in {g} groups overflow", wd[1])))?;
    let kernel = wd[2..].to_vec();
    let ints = |name: &str, default: i64| -> Result<Vec<i64>> { Ok(n.ints(name)?.unwrap_or_else(|| vec![default; r])) };
    let stride = ints("strides", 1)?;
    let dil = ints("dilations", 1)?;
    let out_pad = ints("output_padding", 0)?;
    let big = |v: &Vec<i64>| v.iter().any(|&x| !(-(1 << 20)..=1 << 20).contains(&x));
    if [&stride, &dil, &out_pad].iter().any(|v| v.len() != r || big(v)) || stride.iter().chain(&dil).any(|&v| v < 1) {
        return Err(n.err("strides, dilations or output_padding do not fit the spatial dims"));
    }
    // Sizes and pads in i128: a dim (up to 2^48) times a stride or dilation (up to
    // 2^20) overflows i64; the results are checked where they become attributes.
    let sizes: Option<Vec<i128>> = xd[2..].iter().map(|d| d.fixed().map(i128::from)).collect();
    let auto = n.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let out_shape = n.ints("output_shape")?.map(|v| v[v.len().saturating_sub(r)..].to_vec());
    if let Some(o) = &out_shape
        && (o.len() != r || big(o))
    {
        return Err(n.err(format!("output_shape {o:?} does not fit {r} spatial dims")));
    }
    let to_i128 = |v: &[i64]| -> Vec<i128> { v.iter().map(|&x| x.into()).collect() };
    let (stride, dil, out_pad) = (to_i128(&stride), to_i128(&dil), to_i128(&out_pad));
    let out_shape = out_shape.as_deref().map(to_i128);
    let full = |i: usize, s: i128| stride[i] * (s - 1) + out_pad[i] + (kernel[i] as i128 - 1) * dil[i] + 1;
    let (mut pb, mut pe) = (vec![0i128; r], vec![0i128; r]);
    match (n.ints("pads")?, auto.as_str()) {
        (None, "SAME_UPPER" | "SAME_LOWER") => {
            let s = sizes.clone().ok_or_else(|| n.unsupported("auto_pad with symbolic spatial dims"))?;
            for i in 0..r {
                let out = out_shape.as_ref().map(|o| o[i]).unwrap_or(s[i] * stride[i]);
                let total = full(i, s[i]) - out;
                let half = total.div_euclid(2);
                (pb[i], pe[i]) = if auto == "SAME_UPPER" { (half, total - half) } else { (total - half, half) };
            }
        }
        (p, _) => {
            let p = p.unwrap_or_else(|| vec![0; 2 * r]);
            if p.len() != 2 * r || big(&p) {
                return Err(n.err(format!("pads {p:?} do not fit {r} spatial dims")));
            }
            pb.copy_from_slice(&to_i128(&p[..r]));
            pe.copy_from_slice(&to_i128(&p[r..]));
            if let Some(o) = &out_shape {
                let s = sizes.clone().ok_or_else(|| n.unsupported("output_shape with symbolic spatial dims"))?;
                for i in 0..r {
                    // The end grows (or shrinks) to reach the requested size.
                    pe[i] -= o[i] - (full(i, s[i]) - pb[i] - pe[i]);
                }
            }
        }
    }

    // 1. Zero insertion.
    let mut xi = x;
    if stride.iter().any(|&s| s > 1) {
        let s = sizes.clone().ok_or_else(|| n.unsupported("a strided transposed conv over symbolic spatial dims"))?;
        let mut inter = xd[..2].to_vec();
        let mut pads = vec![0i64; 2 * (2 + 2 * r)];
        let mut wide = xd[..2].to_vec();
        for i in 0..r {
            inter.extend([xd[2 + i].clone(), Dim::Fixed(1)]);
            pads[2 + 2 * r + 2 + 2 * i + 1] = stride[i] as i64 - 1;
            wide.push(Dim::Fixed(u64::try_from(s[i] * stride[i]).map_err(|_| n.err("the strided input overflows"))?));
        }
        let y = cx.reshape(x, &inter)?;
        let y = pad_crop(cx, y, &pads, PadMode::Constant, 0.0)?;
        xi = cx.reshape(y, &wide)?;
    }

    // 2. Weights [C, M/g, k…] → [M, C/g, k…], flipped.
    let mut grouped = vec![Dim::Fixed(g as u64), Dim::Fixed((c / g) as u64), Dim::Fixed((m / g) as u64)];
    grouped.extend(kernel.iter().map(|&k| Dim::Fixed(k as u64)));
    let wg = cx.reshape(w, &grouped)?;
    let mut perm = vec![0, 2, 1];
    perm.extend(3..3 + r);
    let wt = cx.op(Op::Transpose { perm: Some(perm) }, &[wg])?;
    let mut conv_w = vec![Dim::Fixed(m as u64), Dim::Fixed((c / g) as u64)];
    conv_w.extend(kernel.iter().map(|&k| Dim::Fixed(k as u64)));
    let wt = cx.reshape(wt, &conv_w)?;
    let flip = Slice {
        starts: vec![-1; r],
        ends: vec![i64::MIN; r],
        axes: Some((2..2 + r as i64).collect()),
        steps: Some(vec![-1; r]),
    };
    let wf = cx.op(Op::Slice(flip), &[wt])?;

    // 3. Stride-1 convolution, then crop what would be negative padding.
    let mut cpad = vec![0usize; 2 * r];
    let mut crop = vec![0i64; 2 * (r + 2)];
    let limit = smelt_ir::shape::MAX_DIM as i128;
    for i in 0..r {
        let span = (kernel[i] as i128 - 1) * dil[i];
        let begin = span - pb[i];
        let end = span - pe[i] + out_pad[i] - (stride[i] - 1);
        if begin.abs() > limit || end.abs() > limit {
            return Err(n.err(format!("the padding of spatial dim {i} ({begin}, {end}) is too large")));
        }
        cpad[i] = begin.max(0) as usize;
        cpad[r + i] = end.max(0) as usize;
        crop[2 + i] = begin.min(0) as i64;
        crop[r + 2 + 2 + i] = end.min(0) as i64;
    }
    let conv = Conv { stride: vec![1; r], pad: cpad, dilation: dil.iter().map(|&d| d as usize).collect(), groups: g };
    let ins: Vec<Value> = [xi, wf].into_iter().chain(b).collect();
    let y = cx.op(Op::Conv(conv), &ins)?;
    let y = if crop.iter().any(|&p| p < 0) { pad_crop(cx, y, &crop, PadMode::Constant, 0.0)? } else { y };
    Ok(vec![y])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("ConvTranspose", conv_transpose),
];
