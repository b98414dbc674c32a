//! Interpreter: pooling — max and average windows (1-d and 2-d, as ONNX MaxPool /
//! AveragePool with explicit pads, dilation and ceil_mode) and global pooling. A 1-d
//! pool runs as a 2-d one of height 1.

use super::Arg;
use super::util::{dims, from_f32};
use smelt_ir::ops::{Pool, PoolKind};
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let o = out.first().ok_or("pool needs an output type")?;
    let x = ins.first().ok_or("pool needs an input")?.value;
    let v = match op {
        Op::Pool(p) => pool(p, x, &dims(o))?,
        Op::GlobalPool(k) => global(*k, x)?,
        _ => return Err(format!("{} is not a pooling op", op.name())),
    };
    Ok(vec![from_f32(o, v)])
}

/// `[N, C, L]` → `[N, C, 1, L]`; `[N, C, H, W]` unchanged.
fn as_4d(s: &[usize]) -> Result<[usize; 4], String> {
    match *s {
        [n, c, l] => Ok([n, c, 1, l]),
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(format!("pooling expects 3-d or 4-d tensors, found {s:?}")),
    }
}

/// One windowed pool into output dims `od` (which carry the ceil_mode rounding).
/// Max ignores padding; avg divides by the real elements, or with
/// `count_include_pad` by the window positions inside the padded input
/// `[-pad_begin, len + pad_end)` (positions past the end padding never count).
fn pool(p: &Pool, x: &Tensor, od: &[usize]) -> Result<Vec<f32>, String> {
    let r = p.rank();
    if x.rank() != r + 2 || od.len() != r + 2 || p.pad.len() != 2 * r || p.stride.len() != r || p.dilation.len() != r {
        return Err(format!("{} of {:?} into {od:?} with attributes {p:?}", p.name(), x.shape()));
    }
    // 2-d geometry: (kernel, stride, pad begin, pad end, dilation) per spatial dim.
    let geo: [(usize, usize, usize, usize, usize); 2] = if r == 1 {
        [(1, 1, 0, 0, 1), (p.kernel[0], p.stride[0], p.pad[0], p.pad[1], p.dilation[0])]
    } else {
        [
            (p.kernel[0], p.stride[0], p.pad[0], p.pad[2], p.dilation[0]),
            (p.kernel[1], p.stride[1], p.pad[1], p.pad[3], p.dilation[1]),
        ]
    };
    let [n, c, h, w] = as_4d(x.shape())?;
    let [on, oc, oh, ow] = as_4d(od)?;
    if (on, oc) != (n, c) {
        return Err(format!("{} of {:?} cannot give {od:?}", p.name(), x.shape()));
    }
    let xv = x.to_f32();
    // For output position o along a dim: the input coordinates of the window, each
    // with whether it lies in the input and whether it lies in the padded input.
    let window = |o: usize, len: usize, (k, s, pb, pe, d): (usize, usize, usize, usize, usize)| -> Vec<(Option<usize>, bool)> {
        (0..k)
            .map(|i| {
                let q = (o * s + i * d) as i64 - pb as i64;
                let inside = (0..len as i64).contains(&q).then_some(q as usize);
                (inside, q < (len + pe) as i64)
            })
            .collect()
    };
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        let base = plane * h * w;
        for y in 0..oh {
            let rows = window(y, h, geo[0]);
            for xo in 0..ow {
                let cols = window(xo, w, geo[1]);
                let (mut max, mut sum, mut real, mut padded) = (f32::NEG_INFINITY, 0f64, 0usize, 0usize);
                for &(ri, rp) in &rows {
                    for &(ci, cp) in &cols {
                        if rp && cp {
                            padded += 1;
                        }
                        if let (Some(ri), Some(ci)) = (ri, ci) {
                            let v = xv[base + ri * w + ci];
                            max = nan_max(max, v);
                            sum += v as f64;
                            real += 1;
                        }
                    }
                }
                out.push(match p.kind {
                    PoolKind::Max => max,
                    PoolKind::Avg => {
                        let div = if p.count_include_pad { padded } else { real };
                        (sum / div as f64) as f32
                    }
                });
            }
        }
    }
    Ok(out)
}

/// The max of two values; NaN if either is NaN.
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { a.max(b) }
}

/// Global pooling over every dim after the second, one value per (n, c).
fn global(k: PoolKind, x: &Tensor) -> Result<Vec<f32>, String> {
    let s = x.shape();
    if s.len() < 3 {
        return Err(format!("global pooling expects [N, C, …], found {s:?}"));
    }
    let inner: usize = s[2..].iter().product();
    let xv = x.to_f32();
    Ok((0..s[0] * s[1])
        .map(|p| {
            let vals = &xv[p * inner..(p + 1) * inner];
            match k {
                PoolKind::Max => vals.iter().fold(f32::NEG_INFINITY, |m, &v| nan_max(m, v)),
                PoolKind::Avg => (vals.iter().map(|&v| v as f64).sum::<f64>() / inner as f64) as f32,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn p1(kind: PoolKind, k: usize, s: usize, pad: [usize; 2], ceil: bool, include: bool) -> Pool {
        let (kernel, stride, dilation) = (vec![k], vec![s], vec![1]);
        Pool { kind, kernel, stride, pad: pad.to_vec(), dilation, ceil_mode: ceil, count_include_pad: include }
    }

    #[test]
    fn avg_with_padding() {
        // x = [1,2,3,4], kernel 3, stride 1, pad [1,1]: windows [p,1,2], [1,2,3], [2,3,4], [3,4,p].
        // Excluding padding: 1.5, 2, 3, 3.5; including it: 1, 2, 3, 7/3.
        let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
        let y = pool(&p1(PoolKind::Avg, 3, 1, [1, 1], false, false), &x, &[1, 1, 4]).unwrap();
        assert_eq!(y, vec![1.5, 2., 3., 3.5]);
        let y = pool(&p1(PoolKind::Avg, 3, 1, [1, 1], false, true), &x, &[1, 1, 4]).unwrap();
        assert_eq!(y, vec![1., 2., 3., 7. / 3.]);
    }

    #[test]
    fn ceil_mode_partial_window() {
        // x = [1..5], kernel 2, stride 2, ceil_mode: windows [1,2], [3,4], [5, past the end].
        // max: 2, 4, 5. avg with count_include_pad: the position past the end is not in the
        // padded input (no end pad), so the last divisor is 1: 1.5, 3.5, 5.
        let x = f(&[1, 1, 5], &[1., 2., 3., 4., 5.]);
        assert_eq!(pool(&p1(PoolKind::Max, 2, 2, [0, 0], true, false), &x, &[1, 1, 3]).unwrap(), vec![2., 4., 5.]);
        assert_eq!(pool(&p1(PoolKind::Avg, 2, 2, [0, 0], true, true), &x, &[1, 1, 3]).unwrap(), vec![1.5, 3.5, 5.]);
    }

    #[test]
    fn max_2d_padded() {
        // 1×1×2×2 [[1,-2],[-3,-4]], kernel 2×2, stride 1, pad 1 all round → 3×3 output;
        // padding is ignored by max: [[1,1,-2],[1,1,-2],[-3,-3,-4]].
        let x = f(&[1, 1, 2, 2], &[1., -2., -3., -4.]);
        let p = Pool { kind: PoolKind::Max, kernel: vec![2, 2], stride: vec![1, 1], pad: vec![1; 4], dilation: vec![1, 1], ceil_mode: false, count_include_pad: false };
        assert_eq!(pool(&p, &x, &[1, 1, 3, 3]).unwrap(), vec![1., 1., -2., 1., 1., -2., -3., -3., -4.]);
    }

    #[test]
    fn global_pools() {
        // Channel 0: [1,2,3,4] → avg 2.5, max 4; channel 1: [-1,0,5,0] → avg 1, max 5.
        let x = f(&[1, 2, 2, 2], &[1., 2., 3., 4., -1., 0., 5., 0.]);
        assert_eq!(global(PoolKind::Avg, &x).unwrap(), vec![2.5, 1.]);
        assert_eq!(global(PoolKind::Max, &x).unwrap(), vec![4., 5.]);
    }
}
