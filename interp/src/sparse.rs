//! Interpreter: `sparse_matmul`, `x[.., K] · W[K, cols]` with W stored as CSR or BSR.
//! The index arrays are data, so they are validated here and bad ones are errors.

use super::{Arg, util};
use smelt_ir::ops::{SparseFormat, SparseMatMul};
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    match op {
        Op::SparseMatMul(s) => sparse_matmul(s, ins, out),
        _ => Err(format!("sparse::eval does not run {}", op.name())),
    }
}

/// One stored block: its block row, block column, and the offset of its `br·bc`
/// values.
struct Block {
    row: usize,
    col: usize,
    at: usize,
}

/// Checks the offsets and indices and lists the stored blocks.
fn blocks(
    offsets: &[i64],
    indices: &[i64],
    block_rows: usize,
    block_cols: usize,
    nnz: usize,
) -> Result<Vec<Block>, String> {
    if offsets.len() != block_rows + 1 {
        return Err(format!("sparse_matmul expects {} offsets, found {}", block_rows + 1, offsets.len()));
    }
    if indices.len() != nnz {
        return Err(format!(
            "sparse_matmul expects {nnz} indices (one per stored value/block), found {}",
            indices.len()
        ));
    }
    let mut out = Vec::with_capacity(nnz);
    for r in 0..block_rows {
        let (lo, hi) = (offsets[r], offsets[r + 1]);
        if lo < 0 || hi < lo || hi as u64 > nnz as u64 {
            return Err(format!(
                "sparse_matmul offsets must be non-decreasing within 0..={nnz}; offsets[{r}] = {lo}, offsets[{}] = {hi}",
                r + 1
            ));
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let cols = indices.get(lo..hi).ok_or("sparse_matmul offsets run past the indices")?;
        for (p, &c) in (lo..hi).zip(cols) {
            if c < 0 || c as u64 >= block_cols as u64 {
                return Err(format!("sparse_matmul index {p} is column {c}, outside 0..{block_cols}"));
            }
            out.push(Block { row: r, col: c as usize, at: p });
        }
    }
    Ok(out)
}

fn sparse_matmul(s: &SparseMatMul, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let [x, values, indices, offsets] = ins else {
        return Err(format!("sparse_matmul expects 4 inputs, found {}", ins.len()));
    };
    let [br, bc] = match s.format {
        SparseFormat::Csr => [1, 1],
        SparseFormat::Bsr => s.block,
    };
    let k = *x.value.shape().last().ok_or("sparse_matmul expects x [.., K]")?;
    let cols = s.cols;
    if br == 0 || bc == 0 || !k.is_multiple_of(br) || !cols.is_multiple_of(bc) {
        return Err(format!("sparse_matmul: W {k}×{cols} does not split into {br}×{bc} blocks"));
    }
    let vs = values.value.shape();
    let nnz = vs.first().copied().unwrap_or(0);
    let want_vs: Vec<usize> = if s.format == SparseFormat::Csr { vec![nnz] } else { vec![nnz, br, bc] };
    if vs != want_vs {
        return Err(format!("sparse_matmul expects values {want_vs:?}, found {vs:?}"));
    }
    let list = blocks(&offsets.value.to_i64(), &indices.value.to_i64(), k / br, cols / bc, nnz)?;
    let (xv, wv) = (x.value.to_f32(), values.value.to_f32());
    let rows = xv.len().checked_div(k).unwrap_or(0);
    let mut acc = vec![0.0f64; rows * cols];
    for row in 0..rows {
        for b in &list {
            for r in 0..br {
                let xk = xv[row * k + b.row * br + r] as f64;
                for c in 0..bc {
                    acc[row * cols + b.col * bc + c] += xk * wv[(b.at * br + r) * bc + c] as f64;
                }
            }
        }
    }
    let ty = out.first().ok_or("sparse_matmul has one output")?;
    Ok(vec![util::from_f32(ty, acc.into_iter().map(|v| v as f32).collect())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::{Data, Shape};

    fn call(s: &SparseMatMul, x: Tensor, values: Tensor, indices: &[i32], offsets: &[i32]) -> Result<Tensor, String> {
        let idx = Tensor::new(vec![indices.len()], Data::I32(indices.to_vec())).expect("sized");
        let off = Tensor::new(vec![offsets.len()], Data::I32(offsets.to_vec())).expect("sized");
        let ts = [&x, &values, &idx, &off];
        let tys: Vec<TensorType> = ts.iter().map(|t| t.tensor_type()).collect();
        let ins: Vec<Arg> = ts.iter().zip(&tys).map(|(t, ty)| Arg { value: t, ty }).collect();
        let mut od = x.shape().to_vec();
        if let Some(l) = od.last_mut() {
            *l = s.cols;
        }
        let out = TensorType::f32(Shape::from(&od[..]));
        eval(&Op::SparseMatMul(s.clone()), &ins, &[out]).map(|mut v| v.remove(0))
    }

    /// W (2×3) = [[1, 0, 2], [0, 3, 0]]: values [1, 2, 3], indices [0, 2, 1], offsets [0, 2, 3].
    /// x = [[1, 1], [2, −1]]: row 0 = [1, 3, 2]; row 1 = [2, −3, 4].
    #[test]
    fn csr_2x3() {
        let s = SparseMatMul { format: SparseFormat::Csr, cols: 3, block: [1, 1] };
        let x = Tensor::f32(vec![2, 2], vec![1.0, 1.0, 2.0, -1.0]).expect("sized");
        let v = Tensor::f32(vec![3], vec![1.0, 2.0, 3.0]).expect("sized");
        let y = call(&s, x, v, &[0, 2, 1], &[0, 2, 3]).expect("runs");
        assert_eq!(y.to_f32(), vec![1.0, 3.0, 2.0, 2.0, -3.0, 4.0]);
    }

    /// BSR with 1×2 blocks, W (2×4): row 0 has block column 1 = [5, 6]; row 1 has block
    /// column 0 = [7, 8]. W = [[0, 0, 5, 6], [7, 8, 0, 0]]; x = [1, 2] → [14, 16, 5, 6].
    #[test]
    fn bsr_1x2() {
        let s = SparseMatMul { format: SparseFormat::Bsr, cols: 4, block: [1, 2] };
        let x = Tensor::f32(vec![2], vec![1.0, 2.0]).expect("sized");
        let v = Tensor::f32(vec![2, 1, 2], vec![5.0, 6.0, 7.0, 8.0]).expect("sized");
        let y = call(&s, x, v, &[1, 0], &[0, 1, 2]).expect("runs");
        assert_eq!(y.to_f32(), vec![14.0, 16.0, 5.0, 6.0]);
    }

    #[test]
    fn bad_indices_are_errors() {
        let s = SparseMatMul { format: SparseFormat::Csr, cols: 3, block: [1, 1] };
        let x = || Tensor::f32(vec![2], vec![1.0, 1.0]).expect("sized");
        let v = || Tensor::f32(vec![3], vec![1.0, 2.0, 3.0]).expect("sized");
        let e = call(&s, x(), v(), &[0, 3, 1], &[0, 2, 3]).expect_err("column 3");
        assert!(e.contains("column 3"), "{e}");
        let e = call(&s, x(), v(), &[0, 1, 1], &[0, 2, 1]).expect_err("decreasing");
        assert!(e.contains("non-decreasing"), "{e}");
        let e = call(&s, x(), v(), &[0, 1, 1], &[0, 2, 4]).expect_err("past nnz");
        assert!(e.contains("offsets"), "{e}");
        let e = call(&s, x(), v(), &[0, -1, 1], &[-1, 2, 3]).expect_err("negative");
        assert!(e.contains("offsets"), "{e}");
    }
}
