//! Interpreter: pooling — max and average windows over any number of spatial dims
//! (as ONNX MaxPool / AveragePool with explicit pads, dilation and ceil_mode; max
//! pooling optionally with the indices of its maxima) and global pooling.

use super::Arg;
use super::conv::taps;
use super::util::{dims, from_f32, from_i64, unravel};
use smelt_ir::ops::{Pool, PoolKind, StorageOrder};
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let o = out.first().ok_or("pool needs an output type")?;
    let x = ins.first().ok_or("pool needs an input")?.value;
    match op {
        Op::Pool(p) => {
            let (v, idx) = pool(p, x, &dims(o))?;
            let mut r = vec![from_f32(o, v)];
            if p.indices.is_some() {
                let it = out.get(1).ok_or("max pooling with indices needs two output types")?;
                r.push(from_i64(it, idx));
            }
            Ok(r)
        }
        Op::GlobalPool(k) => Ok(vec![from_f32(o, global(*k, x)?)]),
        _ => Err(format!("{} is not a pooling op", op.name())),
    }
}

/// One windowed pool into output dims `od` (which carry the ceil_mode rounding), over
/// any number of spatial dims. Max ignores padding; avg divides by the real
/// elements, or with `count_include_pad` by the window positions inside the padded
/// input `[-pad_begin, len + pad_end)` (positions past the end padding never count).
/// Also gives, for max pooling with `indices`, the flat index of each maximum (the
/// first one in window order; a NaN wins; −1 for a window wholly in the padding).
fn pool(p: &Pool, x: &Tensor, od: &[usize]) -> Result<(Vec<f32>, Vec<i64>), String> {
    let r = p.rank();
    let xs = x.shape();
    if x.rank() != r + 2 || od.len() != r + 2 || od[..2] != xs[..2] {
        return Err(format!("{} of {xs:?} into {od:?} with attributes {p:?}", p.name()));
    }
    let taps = taps(&xs[2..], &p.kernel, &od[2..], &p.stride, &p.pad, &p.dilation)?;
    let (plane, nk, no): (usize, usize, usize) = (xs[2..].iter().product(), p.kernel.iter().product(), od[2..].iter().product());
    // The offset within a plane in the requested order (row-major is `at` itself).
    let spatial = &xs[2..];
    let col_major = |at: usize| -> usize {
        let idx = unravel(at, spatial);
        idx.iter().zip(spatial).rev().fold(0, |acc, (&i, &n)| acc * n + i)
    };
    let xv = x.to_f32();
    let planes = xs[0] * xs[1];
    let mut out = Vec::with_capacity(planes * no);
    let mut indices = Vec::new();
    for pl in 0..planes {
        let base = pl * plane;
        for o in 0..no {
            let (mut max, mut arg, mut sum, mut real, mut padded) = (f32::NEG_INFINITY, None, 0f64, 0usize, 0usize);
            for t in &taps[o * nk..(o + 1) * nk] {
                if t.padded {
                    padded += 1;
                }
                if let Some(at) = t.at {
                    let v = xv[base + at];
                    if arg.is_none() || (!max.is_nan() && (v > max || v.is_nan())) {
                        arg = Some(at);
                    }
                    max = nan_max(max, v);
                    sum += v as f64;
                    real += 1;
                }
            }
            out.push(match p.kind {
                PoolKind::Max => max,
                PoolKind::Avg => {
                    let div = if p.count_include_pad { padded } else { real };
                    (sum / div as f64) as f32
                }
            });
            if let Some(order) = p.indices {
                // A window wholly in the padding has no maximum: −1.
                indices.push(match arg {
                    Some(at) => (base + if order == StorageOrder::ColMajor { col_major(at) } else { at }) as i64,
                    None => -1,
                });
            }
        }
    }
    Ok((out, indices))
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
        Pool { kind, kernel, stride, pad: pad.to_vec(), dilation, ceil_mode: ceil, count_include_pad: include, indices: None }
    }

    #[test]
    fn avg_with_padding() {
        // x = [1,2,3,4], kernel 3, stride 1, pad [1,1]: windows [p,1,2], [1,2,3], [2,3,4], [3,4,p].
        // Excluding padding: 1.5, 2, 3, 3.5; including it: 1, 2, 3, 7/3.
        let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
        let y = pool(&p1(PoolKind::Avg, 3, 1, [1, 1], false, false), &x, &[1, 1, 4]).unwrap().0;
        assert_eq!(y, vec![1.5, 2., 3., 3.5]);
        let y = pool(&p1(PoolKind::Avg, 3, 1, [1, 1], false, true), &x, &[1, 1, 4]).unwrap().0;
        assert_eq!(y, vec![1., 2., 3., 7. / 3.]);
    }

    #[test]
    fn ceil_mode_partial_window() {
        // x = [1..5], kernel 2, stride 2, ceil_mode: windows [1,2], [3,4], [5, past the end].
        // max: 2, 4, 5. avg with count_include_pad: the position past the end is not in the
        // padded input (no end pad), so the last divisor is 1: 1.5, 3.5, 5.
        let x = f(&[1, 1, 5], &[1., 2., 3., 4., 5.]);
        assert_eq!(pool(&p1(PoolKind::Max, 2, 2, [0, 0], true, false), &x, &[1, 1, 3]).unwrap().0, vec![2., 4., 5.]);
        assert_eq!(pool(&p1(PoolKind::Avg, 2, 2, [0, 0], true, true), &x, &[1, 1, 3]).unwrap().0, vec![1.5, 3.5, 5.]);
    }

    #[test]
    fn max_2d_padded() {
        // 1×1×2×2 [[1,-2],[-3,-4]], kernel 2×2, stride 1, pad 1 all round → 3×3 output;
        // padding is ignored by max: [[1,1,-2],[1,1,-2],[-3,-3,-4]].
        let x = f(&[1, 1, 2, 2], &[1., -2., -3., -4.]);
        let p = Pool { kind: PoolKind::Max, kernel: vec![2, 2], stride: vec![1, 1], pad: vec![1; 4], dilation: vec![1, 1], ceil_mode: false, count_include_pad: false, indices: None };
        assert_eq!(pool(&p, &x, &[1, 1, 3, 3]).unwrap().0, vec![1., 1., -2., 1., 1., -2., -3., -3., -4.]);
    }

    #[test]
    fn max_3d_indices_both_orders() {
        // Two planes of 2×2×3, x = its flat index, except that plane 0's maximum is at
        // (d, h, w) = (0, 1, 2): row-major offset 5, col-major d + 2·h + 4·w = 10.
        let mut v: Vec<f32> = (0..24).map(|i| i as f32).collect();
        v[5] = 100.;
        let x = f(&[1, 2, 2, 2, 3], &v);
        let mut p = Pool {
            kind: PoolKind::Max,
            kernel: vec![2, 2, 3],
            stride: vec![1, 1, 1],
            pad: vec![0; 6],
            dilation: vec![1; 3],
            ceil_mode: false,
            count_include_pad: false,
            indices: Some(StorageOrder::RowMajor),
        };
        // Plane 1's maximum is its last element: row-major 11, col-major 1 + 2 + 4·2 = 11.
        let (y, i) = pool(&p, &x, &[1, 2, 1, 1, 1]).unwrap();
        assert_eq!((y, i), (vec![100., 23.], vec![5, 12 + 11]));
        p.indices = Some(StorageOrder::ColMajor);
        assert_eq!(pool(&p, &x, &[1, 2, 1, 1, 1]).unwrap().1, vec![10, 12 + 11]);
    }

    #[test]
    fn avg_3d_count_include_pad() {
        // 1×1×1×1×2 [2, 4], kernel [1, 1, 2], pad 1 before w: windows [p, 2], [2, 4].
        let x = f(&[1, 1, 1, 1, 2], &[2., 4.]);
        let mut p = Pool {
            kind: PoolKind::Avg,
            kernel: vec![1, 1, 2],
            stride: vec![1; 3],
            pad: vec![0, 0, 1, 0, 0, 0],
            dilation: vec![1; 3],
            ceil_mode: false,
            count_include_pad: false,
            indices: None,
        };
        assert_eq!(pool(&p, &x, &[1, 1, 1, 1, 2]).unwrap().0, vec![2., 3.]);
        p.count_include_pad = true;
        assert_eq!(pool(&p, &x, &[1, 1, 1, 1, 2]).unwrap().0, vec![1., 3.]);
    }

    #[test]
    fn global_pools() {
        // Channel 0: [1,2,3,4] → avg 2.5, max 4; channel 1: [-1,0,5,0] → avg 1, max 5.
        let x = f(&[1, 2, 2, 2], &[1., 2., 3., 4., -1., 0., 5., 0.]);
        assert_eq!(global(PoolKind::Avg, &x).unwrap(), vec![2.5, 1.]);
        assert_eq!(global(PoolKind::Max, &x).unwrap(), vec![4., 5.]);
    }
}
