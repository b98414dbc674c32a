//! A small evaluator for constant folding and batch-norm folding: the ops whose
//! inputs are weights in real models (elementwise arithmetic and regions, casts
//! between floats, reshape, transpose, expand, matmul). It computes as the reference
//! interpreter does (f32, matmul accumulating in f64) and declines — returns `None`
//! — for anything else, so folding never guesses.

use smelt_ir::{DType, Data, Expr, Op, Tensor, TensorType};

/// For each element of `out` (row-major), the index of the element of an input of
/// shape `s` that numpy broadcasting reads.
pub fn broadcast_index(out: &[usize], s: &[usize]) -> Vec<usize> {
    let r = out.len();
    let n: usize = out.iter().product();
    let off = r - s.len();
    // Strides of the input, 0 on broadcast dims, aligned to the output's rank.
    let mut stride = vec![0usize; r];
    let mut acc = 1;
    for i in (0..s.len()).rev() {
        stride[off + i] = if s[i] == 1 { 0 } else { acc };
        acc *= s[i];
    }
    let mut idx = vec![0usize; r];
    let mut out_ix = Vec::with_capacity(n);
    let mut cur = 0usize;
    for _ in 0..n {
        out_ix.push(cur);
        // Increment the multi-index.
        for d in (0..r).rev() {
            idx[d] += 1;
            cur += stride[d];
            if idx[d] < out[d] {
                break;
            }
            cur -= stride[d] * idx[d];
            idx[d] = 0;
        }
    }
    out_ix
}

/// Picks elements of `d` by index, keeping the dtype.
fn gather(d: &Data, ix: &[usize]) -> Data {
    fn g<T: Copy>(v: &[T], ix: &[usize]) -> Vec<T> {
        ix.iter().map(|&i| v[i]).collect()
    }
    match d {
        Data::F32(v) => Data::F32(g(v, ix)),
        Data::F16(v) => Data::F16(g(v, ix)),
        Data::BF16(v) => Data::BF16(g(v, ix)),
        Data::I8(v) => Data::I8(g(v, ix)),
        Data::U8(v) => Data::U8(g(v, ix)),
        Data::I32(v) => Data::I32(g(v, ix)),
        Data::I64(v) => Data::I64(g(v, ix)),
        Data::Bool(v) => Data::Bool(g(v, ix)),
    }
}

/// The source index of each output element of a transpose.
fn transpose_index(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let r = shape.len();
    let mut in_stride = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        in_stride[i] = in_stride[i + 1] * shape[i + 1];
    }
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let stride: Vec<usize> = perm.iter().map(|&p| in_stride[p]).collect();
    let n: usize = out.iter().product();
    let mut ix = Vec::with_capacity(n);
    let mut idx = vec![0usize; r];
    let mut cur = 0;
    for _ in 0..n {
        ix.push(cur);
        for d in (0..r).rev() {
            idx[d] += 1;
            cur += stride[d];
            if idx[d] < out[d] {
                break;
            }
            cur -= stride[d] * idx[d];
            idx[d] = 0;
        }
    }
    ix
}

/// Evaluates `op` on known inputs; `out` is the node's (fixed) output type. `None`
/// when the op or its dtypes are not handled here.
pub fn eval(op: &Op, ins: &[&Tensor], out: &TensorType) -> Option<Tensor> {
    let od = out.shape.fixed()?;
    let n: usize = od.iter().product();
    // 8- and 32-bit integers to f32 (as a QDQ model's bias and weights are
    // written): `as f32` rounds as the backends' casts do.
    if let Op::Cast { to: DType::F32 } = op
        && matches!(ins[0].dtype(), DType::I8 | DType::U8 | DType::I32)
        && out.quant.is_none()
    {
        let v: Vec<f32> = ins[0].to_i64().into_iter().map(|x| x as i32 as f32).collect();
        return Tensor::new(od, Data::F32(v)).ok();
    }
    if out.quant.is_some() || ins.iter().any(|t| !matches!(t.dtype(), d if d == out.dtype || d.is_float())) {
        return None;
    }
    let float = |v: Vec<f32>| Tensor::new(od.clone(), Data::from_f32(out.dtype, &v)).ok();
    match op {
        Op::Unary(u) if out.dtype.is_float() => float(ins[0].to_f32().into_iter().map(|x| u.eval(x)).collect()),
        Op::Binary(b) if out.dtype.is_float() && ins[0].dtype().is_float() => {
            let (a, c) = (ins[0].to_f32(), ins[1].to_f32());
            let (ia, ic) = (broadcast_index(&od, ins[0].shape()), broadcast_index(&od, ins[1].shape()));
            float((0..n).map(|i| b.eval(a[ia[i]], c[ic[i]])).collect())
        }
        Op::Elementwise { expr } if out.dtype.is_float() && ins.iter().all(|t| t.dtype().is_float()) => {
            let cols: Vec<(Vec<f32>, Vec<usize>)> =
                ins.iter().map(|t| (t.to_f32(), broadcast_index(&od, t.shape()))).collect();
            float(region(expr, &cols, n))
        }
        Op::Cast { to } if to.is_float() && ins[0].dtype().is_float() => float(ins[0].to_f32()),
        Op::Reshape { .. } => Tensor::new(od, ins[0].data().clone()).ok(),
        Op::Expand { .. } => Tensor::new(od.clone(), gather(ins[0].data(), &broadcast_index(&od, ins[0].shape()))).ok(),
        Op::Transpose { perm } => {
            let r = ins[0].rank();
            let p = perm.clone().unwrap_or_else(|| (0..r).rev().collect());
            Tensor::new(od, gather(ins[0].data(), &transpose_index(ins[0].shape(), &p))).ok()
        }
        Op::MatMul if out.dtype.is_float() && ins[0].rank() >= 2 && ins[1].rank() >= 2 => float(matmul(ins[0], ins[1], &od)),
        _ => None,
    }
}

fn region(expr: &Expr, cols: &[(Vec<f32>, Vec<usize>)], n: usize) -> Vec<f32> {
    let mut vals = vec![0f32; cols.len()];
    (0..n)
        .map(|i| {
            for (slot, (v, m)) in vals.iter_mut().zip(cols) {
                *slot = v[m[i]];
            }
            expr.eval(&vals)
        })
        .collect()
}

/// Batched matmul of operands of rank ≥ 2 with broadcast batch dims; `od` is the
/// output shape.
fn matmul(a: &Tensor, b: &Tensor, od: &[usize]) -> Vec<f32> {
    let (sa, sb) = (a.shape(), b.shape());
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let nn = sb[sb.len() - 1];
    let batch: Vec<usize> = od[..od.len() - 2].to_vec();
    let nb: usize = batch.iter().product();
    let ba = broadcast_index(&batch, &sa[..sa.len() - 2]);
    let bb = broadcast_index(&batch, &sb[..sb.len() - 2]);
    let (av, bv) = (a.to_f32(), b.to_f32());
    let mut out = vec![0f32; nb * m * nn];
    for bi in 0..nb {
        let (ao, bo) = (ba[bi] * m * k, bb[bi] * k * nn);
        for i in 0..m {
            for j in 0..nn {
                let mut s = 0f64;
                for t in 0..k {
                    s += av[ao + i * k + t] as f64 * bv[bo + t * nn + j] as f64;
                }
                out[bi * m * nn + i * nn + j] = s as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::ops::BinaryOp;

    #[test]
    fn broadcasting_indices() {
        assert_eq!(broadcast_index(&[2, 3], &[3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_index(&[2, 3], &[2, 1]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[2, 2], &[]), vec![0, 0, 0, 0]);
        assert_eq!(transpose_index(&[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn folds_arithmetic_and_matmul() {
        let a = Tensor::f32(vec![2, 2], vec![1., 2., 3., 4.]).unwrap();
        let b = Tensor::f32(vec![2], vec![10., 20.]).unwrap();
        let t = TensorType::f32([2, 2]);
        let s = eval(&Op::Binary(BinaryOp::Add), &[&a, &b], &t).unwrap();
        assert_eq!(s.to_f32(), vec![11., 22., 13., 24.]);
        let m = eval(&Op::MatMul, &[&a, &a], &t).unwrap();
        assert_eq!(m.to_f32(), vec![7., 10., 15., 22.]);
        let tr = eval(&Op::Transpose { perm: None }, &[&a], &t).unwrap();
        assert_eq!(tr.to_f32(), vec![1., 3., 2., 4.]);
    }
}
