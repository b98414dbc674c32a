//! Interpreter: convolution (`conv1d`, `conv2d`, `conv3d`) with stride, begin/end
//! pads, dilation, groups and an optional bias, as ONNX Conv, over any number of
//! spatial dims. [`conv`] is shared with the fused convolutions, and [`taps`] (the
//! input position of every kernel tap) with pooling and the quantized convolution.

use super::Arg;
use super::util::{dims, from_f32, unravel};
use smelt_ir::ops::Conv;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let Op::Conv(c) = op else {
        return Err(format!("{} is not a convolution", op.name()));
    };
    let o = out.first().ok_or("conv needs an output type")?;
    let (x, w) = match ins {
        [x, w, ..] => (x.value, w.value),
        _ => return Err(format!("{} needs x and w", op.name())),
    };
    let v = conv(x, w, ins.get(2).map(|b| b.value), c, &dims(o))?;
    Ok(vec![from_f32(o, v)])
}

/// One kernel tap at one output position: the input's flat spatial offset (`None` in
/// the padding) and whether the tap lies inside the padded input
/// `[-pad_begin, len + pad_end)` along every dim (average pooling counts those).
#[derive(Debug, Clone, Copy)]
pub(super) struct Tap {
    pub at: Option<usize>,
    pub padded: bool,
}

/// The taps of a window over any number of spatial dims: for every output position
/// (row-major over `out`) the `Π kernel` taps (row-major over the kernel), where
/// along dim `i` tap `k` of output `o` reads input `o·stride + k·dilation − pad_begin`.
/// `pad` holds the begins, then the ends.
pub(super) fn taps(
    input: &[usize],
    kernel: &[usize],
    out: &[usize],
    stride: &[usize],
    pad: &[usize],
    dilation: &[usize],
) -> Result<Vec<Tap>, String> {
    let r = input.len();
    if [kernel.len(), out.len(), stride.len(), dilation.len()].iter().any(|&l| l != r) || pad.len() != 2 * r {
        return Err(format!(
            "window of kernel {kernel:?}, stride {stride:?}, pad {pad:?}, dilation {dilation:?} over {input:?} into {out:?}"
        ));
    }
    let (no, nk): (usize, usize) = (out.iter().product(), kernel.iter().product());
    let mut v = Vec::with_capacity(no * nk);
    for o in 0..no {
        let oi = unravel(o, out);
        for k in 0..nk {
            let ki = unravel(k, kernel);
            let (mut at, mut inside, mut padded) = (0usize, true, true);
            for d in 0..r {
                let q = (oi[d] * stride[d] + ki[d] * dilation[d]) as i64 - pad[d] as i64;
                if !(0..input[d] as i64).contains(&q) {
                    inside = false;
                }
                if q >= (input[d] + pad[r + d]) as i64 {
                    padded = false;
                }
                at = at * input[d] + q.max(0) as usize;
            }
            v.push(Tap { at: inside.then_some(at), padded });
        }
    }
    Ok(v)
}

/// The output size of a window `k` over `len` (+ pads) with stride `s` and dilation `d`.
pub(super) fn out_size(len: usize, k: usize, s: usize, pb: usize, pe: usize, d: usize) -> Option<usize> {
    let span = d * (k.checked_sub(1)?) + 1;
    let padded = len + pb + pe;
    (padded >= span && s > 0).then(|| (padded - span) / s + 1)
}

/// `conv(x, w, b)` as f32 values of the output `out_dims` (accumulated in f64), for
/// any number of spatial dims.
pub(super) fn conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, c: &Conv, out_dims: &[usize]) -> Result<Vec<f32>, String> {
    let r = c.rank();
    if x.rank() != r + 2 || w.rank() != r + 2 || out_dims.len() != r + 2 {
        return Err(format!("conv{r}d of {:?} with weights {:?}", x.shape(), w.shape()));
    }
    let (xs, ws) = (x.shape(), w.shape());
    let (n, ci, m, cg) = (xs[0], xs[1], ws[0], ws[1]);
    let g = c.groups;
    if g == 0 || cg * g != ci || m % g != 0 {
        return Err(format!("conv: x {xs:?} and w {ws:?} do not fit groups = {g}"));
    }
    let mut want = vec![n, m];
    for i in 0..r {
        let (pb, pe) = (c.pad.get(i).copied().unwrap_or(0), c.pad.get(r + i).copied().unwrap_or(0));
        let s = c.stride.get(i).copied().unwrap_or(0);
        let d = c.dilation.get(i).copied().unwrap_or(0);
        want.push(out_size(xs[2 + i], ws[2 + i], s, pb, pe, d).ok_or("conv: the window does not fit the input")?);
    }
    if want != out_dims {
        return Err(format!("conv gives {want:?}, the type says {out_dims:?}"));
    }
    let taps = taps(&xs[2..], &ws[2..], &out_dims[2..], &c.stride, &c.pad, &c.dilation)?;
    let bias: Vec<f32> = match b {
        Some(b) if b.numel() == m => b.to_f32(),
        Some(b) => return Err(format!("conv bias {:?} does not have {m} elements", b.shape())),
        None => vec![0.0; m],
    };
    let (xv, wv) = (x.to_f32(), w.to_f32());
    let (plane, nk): (usize, usize) = (xs[2..].iter().product(), ws[2..].iter().product());
    let no: usize = out_dims[2..].iter().product();
    let mg = m / g;
    let mut out = Vec::with_capacity(n * m * no);
    for bn in 0..n {
        for (mo, &bm) in bias.iter().enumerate() {
            let grp = mo / mg;
            for o in 0..no {
                let mut acc = bm as f64;
                for cc in 0..cg {
                    let xb = (bn * ci + grp * cg + cc) * plane;
                    let wb = (mo * cg + cc) * nk;
                    for (k, t) in taps[o * nk..(o + 1) * nk].iter().enumerate() {
                        if let Some(at) = t.at {
                            acc += xv[xb + at] as f64 * wv[wb + k] as f64;
                        }
                    }
                }
                out.push(acc as f32);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn three_by_three_with_padding() {
        // x = 1..9 in a 3×3 grid, kernel = 1 at the centre and 1 at the top-left, pad 1 all round,
        // bias 100: y[i,j] = x[i,j] + x[i-1,j-1] (0 outside) + 100.
        //   [[1+0, 2+0, 3+0], [4+0, 5+1, 6+2], [7+0, 8+4, 9+5]] + 100.
        let x = f(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        let w = f(&[1, 1, 3, 3], &[1., 0., 0., 0., 1., 0., 0., 0., 0.]);
        let b = f(&[1], &[100.]);
        let c = Conv { stride: vec![1, 1], pad: vec![1, 1, 1, 1], dilation: vec![1, 1], groups: 1 };
        let y = conv(&x, &w, Some(&b), &c, &[1, 1, 3, 3]).unwrap();
        assert_eq!(y, vec![101., 102., 103., 104., 106., 108., 107., 112., 114.]);
    }

    #[test]
    fn stride_and_dilation() {
        // 1×1×4×4 of 0..15, 2×2 ones kernel with dilation 2, stride 2, no pad: one output per
        // corner group: y[0,0] = x[0,0]+x[0,2]+x[2,0]+x[2,2] = 0+2+8+10 = 20. Output 1×1.
        let x = f(&[1, 1, 4, 4], &(0..16).map(|i| i as f32).collect::<Vec<_>>());
        let w = f(&[1, 1, 2, 2], &[1., 1., 1., 1.]);
        let c = Conv { stride: vec![2, 2], pad: vec![0; 4], dilation: vec![2, 2], groups: 1 };
        assert_eq!(conv(&x, &w, None, &c, &[1, 1, 1, 1]).unwrap(), vec![20.]);
    }

    #[test]
    fn causal_conv1d_groups() {
        // Two channels, groups = 2 (depthwise), kernel [1, 1] causal (pad [1, 0]):
        // y[c, t] = x[c, t-1] + x[c, t] scaled by the channel's weight (1 and 10).
        // x = [[1,2,3],[4,5,6]] → [[1,3,5],[40,90,110]].
        let x = f(&[1, 2, 3], &[1., 2., 3., 4., 5., 6.]);
        let w = f(&[2, 1, 2], &[1., 1., 10., 10.]);
        let c = Conv { stride: vec![1], pad: vec![1, 0], dilation: vec![1], groups: 2 };
        assert_eq!(conv(&x, &w, None, &c, &[1, 2, 3]).unwrap(), vec![1., 3., 5., 40., 90., 110.]);
    }

    #[test]
    fn conv3d_matches_a_hand_sum() {
        // x = 0..26 as 1×1×3×3×3 (x[d,h,w] = 9d + 3h + w), a 2×1×2 kernel of ones with
        // stride [1, 2, 1] and pad 1 at the end of w: y[d,h,w] = x[d,h,w] + x[d,h,w+1]
        // + x[d+1,h,w] + x[d+1,h,w+1] with x = 0 past the end of w. Output 2×2×3.
        let x = f(&[1, 1, 3, 3, 3], &(0..27).map(|i| i as f32).collect::<Vec<_>>());
        let w = f(&[1, 1, 2, 1, 2], &[1.; 4]);
        let c = Conv { stride: vec![1, 2, 1], pad: vec![0, 0, 0, 0, 0, 1], dilation: vec![1; 3], groups: 1 };
        let y = conv(&x, &w, None, &c, &[1, 1, 2, 2, 3]).unwrap();
        let xv = |d: usize, h: usize, w: usize| if w < 3 { (9 * d + 3 * h + w) as f32 } else { 0. };
        let mut want = vec![];
        for d in 0..2 {
            for h in [0, 2] {
                for w in 0..3 {
                    want.push(xv(d, h, w) + xv(d, h, w + 1) + xv(d + 1, h, w) + xv(d + 1, h, w + 1));
                }
            }
        }
        assert_eq!(y, want);
    }

    #[test]
    fn wrong_groups_is_an_error() {
        let x = f(&[1, 3, 2], &[0.; 6]);
        let w = f(&[2, 1, 1], &[0.; 2]);
        let c = Conv { stride: vec![1], pad: vec![0, 0], dilation: vec![1], groups: 2 };
        assert!(conv(&x, &w, None, &c, &[1, 2, 2]).is_err());
    }
}
