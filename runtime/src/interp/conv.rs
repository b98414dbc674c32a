//! Interpreter: convolution (`conv1d`, `conv2d`) with stride, begin/end pads,
//! dilation, groups and an optional bias, as ONNX Conv. A 1-d conv runs as a 2-d
//! one of height 1. [`conv`] is shared with the fused convolutions.

use super::Arg;
use super::util::{dims, from_f32};
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

/// The 2-d form of a conv of spatial rank 1 or 2: (stride, pad [t, l, b, r], dilation).
type Geometry = ([usize; 2], [usize; 4], [usize; 2]);

fn geometry(c: &Conv) -> Result<Geometry, String> {
    match c.rank() {
        1 if c.pad.len() == 2 && c.dilation.len() == 1 => {
            Ok(([1, c.stride[0]], [0, c.pad[0], 0, c.pad[1]], [1, c.dilation[0]]))
        }
        2 if c.pad.len() == 4 && c.dilation.len() == 2 => Ok((
            [c.stride[0], c.stride[1]],
            [c.pad[0], c.pad[1], c.pad[2], c.pad[3]],
            [c.dilation[0], c.dilation[1]],
        )),
        r => Err(format!("conv of spatial rank {r} with pad {:?} and dilation {:?}", c.pad, c.dilation)),
    }
}

/// A shape as 4-d `[N, C, H, W]` (a 3-d `[N, C, L]` gets `H = 1`).
fn as_4d(s: &[usize]) -> Result<[usize; 4], String> {
    match *s {
        [n, c, l] => Ok([n, c, 1, l]),
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(format!("conv expects 3-d or 4-d tensors, found {s:?}")),
    }
}

/// The output size of a window `k` over `len` (+ pads) with stride `s` and dilation `d`.
pub(super) fn out_size(len: usize, k: usize, s: usize, pb: usize, pe: usize, d: usize) -> Option<usize> {
    let span = d * (k.checked_sub(1)?) + 1;
    let padded = len + pb + pe;
    (padded >= span && s > 0).then(|| (padded - span) / s + 1)
}

/// `conv(x, w, b)` as f32 values of the output `out_dims` (accumulated in f64).
pub(super) fn conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, c: &Conv, out_dims: &[usize]) -> Result<Vec<f32>, String> {
    if x.rank() != c.rank() + 2 || w.rank() != c.rank() + 2 || out_dims.len() != c.rank() + 2 {
        return Err(format!("conv{}d of {:?} with weights {:?}", c.rank(), x.shape(), w.shape()));
    }
    let (stride, pad, dil) = geometry(c)?;
    let [n, ci, h, wd] = as_4d(x.shape())?;
    let [m, cg, kh, kw] = as_4d(w.shape())?;
    let g = c.groups;
    if g == 0 || cg * g != ci || m % g != 0 {
        return Err(format!("conv: x {:?} and w {:?} do not fit groups = {g}", x.shape(), w.shape()));
    }
    let mg = m / g;
    let oh = out_size(h, kh, stride[0], pad[0], pad[2], dil[0]).ok_or("conv: the window does not fit the input")?;
    let ow = out_size(wd, kw, stride[1], pad[1], pad[3], dil[1]).ok_or("conv: the window does not fit the input")?;
    let got = as_4d(out_dims)?;
    if got != [n, m, oh, ow] {
        return Err(format!("conv gives [{n}, {m}, {oh}, {ow}], the type says {out_dims:?}"));
    }
    let bias: Vec<f32> = match b {
        Some(b) if b.numel() == m => b.to_f32(),
        Some(b) => return Err(format!("conv bias {:?} does not have {m} elements", b.shape())),
        None => vec![0.0; m],
    };
    let (xv, wv) = (x.to_f32(), w.to_f32());
    let mut out = Vec::with_capacity(n * m * oh * ow);
    for bn in 0..n {
        for mo in 0..m {
            let grp = mo / mg;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = bias[mo] as f64;
                    for cc in 0..cg {
                        let cin = grp * cg + cc;
                        for i in 0..kh {
                            // Input row: y·s + i·d − pad_top; skip the padding.
                            let Some(r) = (y * stride[0] + i * dil[0]).checked_sub(pad[0]).filter(|&r| r < h) else {
                                continue;
                            };
                            for j in 0..kw {
                                let Some(col) = (xo * stride[1] + j * dil[1]).checked_sub(pad[1]).filter(|&q| q < wd) else {
                                    continue;
                                };
                                let xval = xv[((bn * ci + cin) * h + r) * wd + col];
                                let wval = wv[((mo * cg + cc) * kh + i) * kw + j];
                                acc += xval as f64 * wval as f64;
                            }
                        }
                    }
                    out.push(acc as f32);
                }
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
    fn wrong_groups_is_an_error() {
        let x = f(&[1, 3, 2], &[0.; 6]);
        let w = f(&[2, 1, 1], &[0.; 2]);
        let c = Conv { stride: vec![1], pad: vec![0, 0], dilation: vec![1], groups: 2 };
        assert!(conv(&x, &w, None, &c, &[1, 2, 2]).is_err());
    }
}
