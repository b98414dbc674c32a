//! Interpreter: reductions over axes (sum, mean, max, min, prod, l2; empty axes =
//! all) and arg-reductions (argmax/argmin → i64, first index on ties). Float sums
//! and products accumulate in f64; integers in i64.

use super::Arg;
use super::util::{from_f32, from_i64, strides, unravel};
use smelt_ir::ops::reduce::reduce_axes;
use smelt_ir::ops::{ArgKind, ReduceKind};
use smelt_ir::shape::normalize_axis;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let o = out.first().ok_or_else(|| format!("{} needs an output type", op.name()))?;
    let x = ins.first().ok_or_else(|| format!("{} needs an input", op.name()))?.value;
    let t = match op {
        Op::Reduce { kind, axes, .. } => reduce(*kind, x, axes, o)?,
        Op::ArgReduce { kind, axis, .. } => from_i64(o, arg_reduce(*kind, x, *axis)?),
        _ => return Err(format!("{} is not a reduction", op.name())),
    };
    if t.numel() != super::util::dims(o).iter().product::<usize>() {
        return Err(format!("{} produced {} elements for {o}", op.name(), t.numel()));
    }
    Ok(vec![t])
}

/// For each input element, the flat output position it reduces into, and the
/// number of output elements.
fn out_positions(shape: &[usize], axes: &[usize]) -> (Vec<usize>, usize) {
    let kept: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let kst = strides(&kept);
    let n: usize = shape.iter().product();
    let pos = (0..n)
        .map(|f| {
            unravel(f, shape).iter().enumerate().filter(|(a, _)| !axes.contains(a)).map(|(a, &i)| i * kst[a]).sum()
        })
        .collect();
    (pos, kept.iter().product())
}

/// NaN-propagating max/min of f32.
fn fmax(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { a.max(b) }
}
fn fmin(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { a.min(b) }
}

fn reduce(kind: ReduceKind, x: &Tensor, axes: &[i64], o: &TensorType) -> Result<Tensor, String> {
    let ax = reduce_axes(axes, x.rank()).map_err(|e| format!("{}: {e}", kind.name()))?;
    let (pos, n) = out_positions(x.shape(), &ax);
    let count: usize = ax.iter().map(|&a| x.shape()[a]).product();
    if x.dtype().is_float() {
        let xv = x.to_f32();
        let v: Vec<f32> = match kind {
            ReduceKind::Max | ReduceKind::Min => {
                let (init, f): (f32, fn(f32, f32) -> f32) =
                    if kind == ReduceKind::Max { (f32::NEG_INFINITY, fmax) } else { (f32::INFINITY, fmin) };
                let mut acc = vec![init; n];
                for (v, &p) in xv.iter().zip(&pos) {
                    acc[p] = f(acc[p], *v);
                }
                acc
            }
            _ => {
                let init = if kind == ReduceKind::Prod { 1.0 } else { 0.0 };
                let mut acc = vec![init; n];
                for (&v, &p) in xv.iter().zip(&pos) {
                    let v = v as f64;
                    match kind {
                        ReduceKind::Prod => acc[p] *= v,
                        ReduceKind::L2 => acc[p] += v * v,
                        _ => acc[p] += v,
                    }
                }
                acc.into_iter()
                    .map(|a| match kind {
                        ReduceKind::Mean => (a / count as f64) as f32,
                        ReduceKind::L2 => a.sqrt() as f32,
                        _ => a as f32,
                    })
                    .collect()
            }
        };
        return Ok(from_f32(o, v));
    }
    let xv = x.to_i64();
    let (init, f): (i64, fn(i64, i64) -> i64) = match kind {
        ReduceKind::Sum => (0, i64::wrapping_add),
        ReduceKind::Prod => (1, i64::wrapping_mul),
        ReduceKind::Max => (i64::MIN, i64::max),
        ReduceKind::Min => (i64::MAX, i64::min),
        ReduceKind::Mean | ReduceKind::L2 => return Err(format!("{} expects a float input, found {}", kind.name(), x.dtype())),
    };
    let mut acc = vec![init; n];
    for (&v, &p) in xv.iter().zip(&pos) {
        acc[p] = f(acc[p], v);
    }
    Ok(from_i64(o, acc))
}

/// The index along `axis` of the max (or min) of each lane; the first on ties, and
/// the first NaN wins (as numpy).
fn arg_reduce(kind: ArgKind, x: &Tensor, axis: i64) -> Result<Vec<i64>, String> {
    let s = x.shape();
    let a = normalize_axis(axis, s.len()).ok_or_else(|| format!("{} axis {axis} is out of range for {s:?}", kind.name()))?;
    let (outer, len, inner): (usize, usize, usize) = (s[..a].iter().product(), s[a], s[a + 1..].iter().product());
    if len == 0 {
        return Err(format!("{} over an empty axis", kind.name()));
    }
    fn lanes<T: Copy>(v: &[T], outer: usize, len: usize, inner: usize, better: impl Fn(T, T) -> bool) -> Vec<i64> {
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| v[(o * len + k) * inner + i];
                let mut best = 0;
                for k in 1..len {
                    if better(at(k), at(best)) {
                        best = k;
                    }
                }
                out.push(best as i64);
            }
        }
        out
    }
    let max = kind == ArgKind::Max;
    Ok(if x.dtype().is_float() {
        let v = x.to_f32();
        lanes(&v, outer, len, inner, |c: f32, b: f32| !b.is_nan() && (c.is_nan() || if max { c > b } else { c < b }))
    } else {
        let v = x.to_i64();
        lanes(&v, outer, len, inner, |c: i64, b: i64| if max { c > b } else { c < b })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::{DType, Shape};

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn ty(d: DType, shape: &[u64]) -> TensorType {
        TensorType::new(d, Shape::new(shape.iter().copied()))
    }

    #[test]
    fn sums_and_means() {
        // x = [[1,2,3],[4,5,6]]: sum over axis 1 = [6, 15]; mean over axis -2 = [2.5, 3.5, 4.5];
        // all: sum 21, prod 720, l2 √91, max 6, min 1.
        let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = reduce(ReduceKind::Sum, &x, &[1], &ty(DType::F32, &[2, 1])).unwrap();
        assert_eq!(y.to_f32(), vec![6., 15.]);
        let y = reduce(ReduceKind::Mean, &x, &[-2], &ty(DType::F32, &[3])).unwrap();
        assert_eq!(y.to_f32(), vec![2.5, 3.5, 4.5]);
        let all = |k| reduce(k, &x, &[], &ty(DType::F32, &[1, 1])).unwrap().to_f32()[0];
        assert_eq!(all(ReduceKind::Sum), 21.);
        assert_eq!(all(ReduceKind::Prod), 720.);
        assert_eq!(all(ReduceKind::L2), 91f32.sqrt());
        assert_eq!((all(ReduceKind::Max), all(ReduceKind::Min)), (6., 1.));
    }

    #[test]
    fn integer_max() {
        // i32 [[3, -1], [7, 7]] max over axis 0 = [7, 7].
        let x = Tensor::new(vec![2, 2], smelt_ir::Data::I32(vec![3, -1, 7, 7])).unwrap();
        let y = reduce(ReduceKind::Max, &x, &[0], &ty(DType::I32, &[2])).unwrap();
        assert_eq!(y.to_i64(), vec![7, 7]);
    }

    #[test]
    fn argmax_first_on_ties() {
        // [[1, 5, 5], [2, 0, 2]] along axis 1: argmax [1, 0] (first of the ties), argmin [0, 1].
        // Along axis 0: argmax [1, 0, 0].
        let x = f(&[2, 3], &[1., 5., 5., 2., 0., 2.]);
        assert_eq!(arg_reduce(ArgKind::Max, &x, 1).unwrap(), vec![1, 0]);
        assert_eq!(arg_reduce(ArgKind::Min, &x, -1).unwrap(), vec![0, 1]);
        assert_eq!(arg_reduce(ArgKind::Max, &x, 0).unwrap(), vec![1, 0, 0]);
    }
}
