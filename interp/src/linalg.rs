//! Interpreter: linear algebra — numpy `matmul` (1-d operands promoted, batch dims
//! broadcast) and ONNX `gemm`. Floats accumulate in f64; integers in i64.

use super::Arg;
use super::util::{broadcast_offset, dims, from_f32, from_i64, unravel};
use smelt_ir::ops::Gemm;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let o = out.first().ok_or_else(|| format!("{} needs an output type", op.name()))?;
    let (a, b) = match ins {
        [a, b, ..] => (a.value, b.value),
        _ => return Err(format!("{} needs two inputs", op.name())),
    };
    let t = match op {
        Op::MatMul => matmul(a, b, o)?,
        Op::Gemm(g) => gemm(g, a, b, ins.get(2).map(|c| c.value), o)?,
        _ => return Err(format!("{} is not a linalg op", op.name())),
    };
    Ok(vec![t])
}

/// The broadcast of two shapes (numpy), or an error.
fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| if i + s.len() >= r { s[i + s.len() - r] } else { 1 };
    (0..r)
        .map(|i| match (get(a, i), get(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            (x, y) => Err(format!("cannot broadcast batch dims {a:?} and {b:?} ({x} vs {y})")),
        })
        .collect()
}

/// Numpy matmul on flat values of shapes `ash`, `bsh`, with `fma(acc, x, y)` as
/// the accumulation step. Returns the output shape and values (row-major).
fn mm<T: Copy>(
    av: &[T],
    bv: &[T],
    ash: &[usize],
    bsh: &[usize],
    zero: T,
    fma: impl Fn(T, T, T) -> T,
) -> Result<(Vec<usize>, Vec<T>), String> {
    if ash.is_empty() || bsh.is_empty() {
        return Err(format!("matmul does not take scalars, found {ash:?} and {bsh:?}"));
    }
    let a2: Vec<usize> = if ash.len() == 1 { vec![1, ash[0]] } else { ash.to_vec() };
    let b2: Vec<usize> = if bsh.len() == 1 { vec![bsh[0], 1] } else { bsh.to_vec() };
    let (ra, rb) = (a2.len(), b2.len());
    let (m, k, k2, n) = (a2[ra - 2], a2[ra - 1], b2[rb - 2], b2[rb - 1]);
    if k != k2 {
        return Err(format!("matmul: inner dims of {ash:?} and {bsh:?} differ"));
    }
    let (abatch, bbatch) = (&a2[..ra - 2], &b2[..rb - 2]);
    let batch = broadcast_shapes(abatch, bbatch)?;
    let nb: usize = batch.iter().product();
    let mut out = Vec::with_capacity(nb * m * n);
    for bi in 0..nb {
        let idx = unravel(bi, &batch);
        let ao = broadcast_offset(&idx, abatch) * m * k;
        let bo = broadcast_offset(&idx, bbatch) * k * n;
        for i in 0..m {
            for j in 0..n {
                let mut acc = zero;
                for p in 0..k {
                    acc = fma(acc, av[ao + i * k + p], bv[bo + p * n + j]);
                }
                out.push(acc);
            }
        }
    }
    let mut shape = batch;
    if ash.len() > 1 {
        shape.push(m);
    }
    if bsh.len() > 1 {
        shape.push(n);
    }
    Ok((shape, out))
}

/// Float matmul (f64 accumulation), values as f32, with the output shape.
pub(super) fn matmul_f32(a: &Tensor, b: &Tensor) -> Result<(Vec<usize>, Vec<f32>), String> {
    let up = |t: &Tensor| t.to_f32().into_iter().map(f64::from).collect::<Vec<f64>>();
    let (s, v) = mm(&up(a), &up(b), a.shape(), b.shape(), 0.0, |acc, x, y| acc + x * y)?;
    Ok((s, v.into_iter().map(|x| x as f32).collect()))
}

/// Integer matmul in i64 (wrapping), with the output shape.
pub(super) fn matmul_i64(a: &Tensor, b: &Tensor) -> Result<(Vec<usize>, Vec<i64>), String> {
    mm(&a.to_i64(), &b.to_i64(), a.shape(), b.shape(), 0, |acc, x, y| acc.wrapping_add(x.wrapping_mul(y)))
}

/// `matmul(a, b)` into the output type `o`.
pub(super) fn matmul(a: &Tensor, b: &Tensor, o: &TensorType) -> Result<Tensor, String> {
    if a.dtype() != b.dtype() {
        return Err(format!("matmul mixes {} and {}", a.dtype(), b.dtype()));
    }
    let want = dims(o);
    let (shape, t) = if a.dtype().is_float() {
        let (s, v) = matmul_f32(a, b)?;
        (s, from_f32(o, v))
    } else {
        let (s, v) = matmul_i64(a, b)?;
        (s, from_i64(o, v))
    };
    if shape != want {
        return Err(format!("matmul of {:?} and {:?} gives {shape:?}, the type says {want:?}", a.shape(), b.shape()));
    }
    Ok(t)
}

/// `gemm`: `alpha·op(a)·op(b) + beta·c`, computed in f64 (integers truncate back).
fn gemm(g: &Gemm, a: &Tensor, b: &Tensor, c: Option<&Tensor>, o: &TensorType) -> Result<Tensor, String> {
    let (ash, bsh) = (a.shape(), b.shape());
    if ash.len() != 2 || bsh.len() != 2 {
        return Err(format!("gemm expects 2-d operands, found {ash:?} and {bsh:?}"));
    }
    let (m, k) = if g.trans_a { (ash[1], ash[0]) } else { (ash[0], ash[1]) };
    let (k2, n) = if g.trans_b { (bsh[1], bsh[0]) } else { (bsh[0], bsh[1]) };
    if k != k2 || dims(o) != [m, n] {
        return Err(format!("gemm of {ash:?} and {bsh:?} (trans {}, {}) does not give {:?}", g.trans_a, g.trans_b, dims(o)));
    }
    let as64 = |t: &Tensor| -> Vec<f64> {
        if t.dtype().is_float() {
            t.to_f32().into_iter().map(f64::from).collect()
        } else {
            t.to_i64().into_iter().map(|x| x as f64).collect()
        }
    };
    let (av, bv) = (as64(a), as64(b));
    let ae = |i: usize, p: usize| if g.trans_a { av[p * m + i] } else { av[i * k + p] };
    let be = |p: usize, j: usize| if g.trans_b { bv[j * k + p] } else { bv[p * n + j] };
    let cmap = match c {
        Some(c) => {
            let cs = c.shape();
            if cs.len() > 2 || cs.iter().rev().zip([n, m]).any(|(&d, want)| d != 1 && d != want) {
                return Err(format!("gemm cannot broadcast c {cs:?} to [{m}, {n}]"));
            }
            Some((as64(c), super::util::broadcast_map(&[m, n], cs)))
        }
        None => None,
    };
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|p| ae(i, p) * be(p, j)).sum();
            let mut y = g.alpha as f64 * s;
            if let Some((cv, map)) = &cmap {
                y += g.beta as f64 * cv[map[i * n + j]];
            }
            out.push(y);
        }
    }
    Ok(if o.dtype.is_float() {
        from_f32(o, out.into_iter().map(|x| x as f32).collect())
    } else {
        from_i64(o, out.into_iter().map(|x| x as i64).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::{Data, Shape};

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn ty(shape: &[u64]) -> TensorType {
        TensorType::f32(Shape::new(shape.iter().copied()))
    }

    #[test]
    fn two_by_two() {
        // [[1,2],[3,4]]·[[5,6],[7,8]] = [[1·5+2·7, 1·6+2·8],[3·5+4·7, 3·6+4·8]] = [[19,22],[43,50]].
        let a = f(&[2, 2], &[1., 2., 3., 4.]);
        let b = f(&[2, 2], &[5., 6., 7., 8.]);
        assert_eq!(matmul(&a, &b, &ty(&[2, 2])).unwrap().to_f32(), vec![19., 22., 43., 50.]);
    }

    #[test]
    fn vectors_and_batches() {
        // [1,2]·[[5,6],[7,8]] = [19,22]; [[1,2],[3,4]]·[1,1] = [3,7]; [1,2]·[3,4] = 11.
        let v = f(&[2], &[1., 2.]);
        let m = f(&[2, 2], &[5., 6., 7., 8.]);
        assert_eq!(matmul(&v, &m, &ty(&[2])).unwrap().to_f32(), vec![19., 22.]);
        let m2 = f(&[2, 2], &[1., 2., 3., 4.]);
        assert_eq!(matmul(&m2, &f(&[2], &[1., 1.]), &ty(&[2])).unwrap().to_f32(), vec![3., 7.]);
        assert_eq!(matmul(&v, &f(&[2], &[3., 4.]), &ty(&[])).unwrap().to_f32(), vec![11.]);
        // Batch [2,1,2] x [2,1]: each row dotted with [1,-1]: [[1-2],[3-4]] → [[-1],[-1]].
        let a = f(&[2, 1, 2], &[1., 2., 3., 4.]);
        let y = matmul(&a, &f(&[2, 1], &[1., -1.]), &ty(&[2, 1, 1])).unwrap();
        assert_eq!(y.to_f32(), vec![-1., -1.]);
    }

    #[test]
    fn integer_matmul() {
        let a = Tensor::new(vec![1, 2], Data::I32(vec![3, -2])).unwrap();
        let b = Tensor::new(vec![2, 1], Data::I32(vec![4, 5])).unwrap();
        // 3·4 + (−2)·5 = 2.
        let o = TensorType::new(smelt_ir::DType::I32, Shape::new([1u64, 1]));
        assert_eq!(matmul(&a, &b, &o).unwrap().data(), &Data::I32(vec![2]));
    }

    #[test]
    fn gemm_trans_alpha_beta() {
        // aᵀ with a = [[1,3],[2,4]] is [[1,2],[3,4]]; times I = same; ·2 + 10·[1, 0] (c broadcast per row)
        // = [[2+10, 4], [6+10, 8]].
        let g = Gemm { trans_a: true, trans_b: false, alpha: 2.0, beta: 10.0 };
        let a = f(&[2, 2], &[1., 3., 2., 4.]);
        let i = f(&[2, 2], &[1., 0., 0., 1.]);
        let c = f(&[2], &[1., 0.]);
        let y = gemm(&g, &a, &i, Some(&c), &ty(&[2, 2])).unwrap();
        assert_eq!(y.to_f32(), vec![12., 4., 16., 8.]);
    }
}
