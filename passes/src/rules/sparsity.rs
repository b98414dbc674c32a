//! Sparsity rules: a product with a constant weight that holds enough zeros
//! gets its compressed form as an equal e-node, and extraction keeps whichever
//! the cost model says is faster (`CostTarget::sparse_csr` / `_bsr` / `_wide`: the
//! share of the dense GEMM's rate a sparse kernel reaches on the target).
//!
//! - `matmul(x, W)` → `sparse_matmul(x, values, indices, offsets)`;
//! - `fused_matmul(x, W, e…) {epilogue}` → `elementwise(sparse_matmul(x, …), e…)
//!   {epilogue}` (the sparse kernel has no epilogue of its own yet: one more
//!   pass over the output, which the cost model counts);
//! - `gemm(x, W, c)` with `alpha = beta = 1` and no transposed `x` →
//!   `add(sparse_matmul(x, Wᵀ or W), c)`.
//!
//! The format follows the zeros: the largest block (`1×16`, `1×8`, `4×4`,
//! `16×1`, …) whose stored blocks are at least 90% nonzero, else CSR. Weights
//! with fewer than a quarter of zeros are not considered (the scan and the
//! compressed copy would be wasted). The compressed arrays are new params
//! (`W.sparse.values`, `.indices`, `.offsets`), made once per weight.

use super::{Rw, add_op, rw_ops, ty};
use crate::egraph::analysis::{EG, SparseForm};
use crate::egraph::lang::{ENode, Head};
use egg::Id;
use smelt_ir::ops::{BinaryOp, SparseFormat, SparseMatMul};
use smelt_ir::{DType, Op, Tensor};
use std::sync::Arc;

/// Weights with a smaller share of zeros are left dense without a look.
pub const MIN_SPARSITY: f64 = 0.25;

/// The block shapes tried, largest first: rows × columns of W `[K, N]`.
const BLOCKS: [[usize; 2]; 8] = [[1, 16], [16, 1], [4, 4], [1, 8], [8, 1], [2, 2], [1, 4], [4, 1]];

pub fn rules() -> Vec<Rw> {
    vec![rw_ops("sparse-weight", vec!["matmul", "fused_matmul", "gemm"], sparse_weight)]
}

fn sparse_weight(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let (x, w) = (kids[0], kids[1]);
    let xt = ty(eg, x)?;
    if xt.dtype != DType::F32 || xt.rank() < 1 {
        return None;
    }
    let transpose = match op {
        Op::MatMul | Op::FusedMatMul { .. } => false,
        Op::Gemm(g) if !g.trans_a && g.alpha == 1.0 && (g.beta == 1.0 || kids.len() == 2) => g.trans_b,
        _ => return None,
    };
    let form = form(eg, w, transpose)?;
    let [v, i, o] = form.params.clone().map(|(name, t)| leaf(eg, &name, t));
    let s = add_op(eg, Op::SparseMatMul(form.op.clone()), vec![x, v, i, o])?;
    match op {
        Op::MatMul => Some(s),
        Op::Gemm(_) if kids.len() == 2 => Some(s),
        Op::Gemm(_) => add_op(eg, Op::Binary(BinaryOp::Add), vec![s, kids[2]]),
        Op::FusedMatMul { epilogue } => {
            let mut k = vec![s];
            k.extend_from_slice(&kids[2..]);
            add_op(eg, Op::Elementwise { expr: epilogue.clone() }, k)
        }
        _ => None,
    }
}

/// A param leaf made by this rule, its type and value registered.
fn leaf(eg: &mut EG, name: &str, t: Arc<Tensor>) -> Id {
    let name: Arc<str> = name.into();
    eg.analysis.leaf_types.entry(name.clone()).or_insert_with(|| t.tensor_type());
    eg.analysis.weights.entry(name.clone()).or_insert(t);
    eg.add(ENode::param(&name))
}

/// The constant value of class `w`: a param's weight or an inline constant.
fn value(eg: &EG, w: Id) -> Option<(String, Arc<Tensor>)> {
    eg[w].nodes.iter().find_map(|n| match &n.head {
        Head::Param(name) => eg.analysis.weights.get(name).map(|t| (name.to_string(), t.clone())),
        Head::Op(op) => match &**op {
            Op::Const(t) => Some((String::new(), t.clone())),
            _ => None,
        },
        _ => None,
    })
}

/// The compressed form of weight class `w` (transposed first when asked),
/// computed once per weight.
fn form(eg: &mut EG, w: Id, transpose: bool) -> Option<Arc<SparseForm>> {
    let (name, t) = value(eg, w)?;
    let key = (Arc::as_ptr(&t) as usize, transpose);
    if let Some(f) = eg.analysis.sparse_forms.get(&key) {
        return f.clone();
    }
    let base = if name.is_empty() { format!("sparse{}", eg.analysis.sparse_forms.len()) } else { name };
    let base = if transpose { format!("{base}.t") } else { base };
    let f = compress(&t, transpose, &base).map(Arc::new);
    eg.analysis.sparse_forms.insert(key, f.clone());
    f
}

/// `t` (an f32 matrix `[K, N]`, or `[N, K]` transposed) compressed, when at
/// least [`MIN_SPARSITY`] of it is zero.
pub fn compress(t: &Tensor, transpose: bool, base: &str) -> Option<SparseForm> {
    if t.dtype() != DType::F32 || t.rank() != 2 {
        return None;
    }
    let (r, c) = (t.shape()[0], t.shape()[1]);
    // Borrowed: every constant weight of every compile at -O2 is counted here.
    let smelt_ir::Data::F32(data) = t.data() else { return None };
    let (k, n) = if transpose { (c, r) } else { (r, c) };
    let at = |i: usize, j: usize| if transpose { data[j * c + i] } else { data[i * c + j] };
    let nnz = data.iter().filter(|&&v| v != 0.0).count();
    let total = k * n;
    if total == 0 || ((total - nnz) as f64) < MIN_SPARSITY * total as f64 {
        return None;
    }
    // The largest block whose stored blocks are ≥ 90% full.
    let block = BLOCKS
        .into_iter()
        .filter(|&[br, bc]| k.is_multiple_of(br) && n.is_multiple_of(bc))
        .find(|&[br, bc]| {
            let mut stored = 0usize;
            for bi in 0..k / br {
                for bj in 0..n / bc {
                    if (0..br).any(|i| (0..bc).any(|j| at(bi * br + i, bj * bc + j) != 0.0)) {
                        stored += 1;
                    }
                }
            }
            nnz as f64 >= 0.9 * (stored * br * bc) as f64
        })
        .unwrap_or([1, 1]);
    let [br, bc] = block;
    let (mut vals, mut idx, mut off) = (vec![], vec![], vec![0i32]);
    for bi in 0..k / br {
        for bj in 0..n / bc {
            let cells: Vec<f32> = (0..br).flat_map(|i| (0..bc).map(move |j| (i, j))).map(|(i, j)| at(bi * br + i, bj * bc + j)).collect();
            if cells.iter().any(|&v| v != 0.0) {
                vals.extend(cells);
                idx.push(bj as i32);
            }
        }
        off.push(idx.len() as i32);
    }
    let stored = idx.len();
    let (format, vshape) = if block == [1, 1] { (SparseFormat::Csr, vec![stored]) } else { (SparseFormat::Bsr, vec![stored, br, bc]) };
    let op = SparseMatMul { format, cols: n, block };
    let mk = |s: Vec<usize>, d: smelt_ir::Data| Arc::new(Tensor::new(s, d).expect("sized"));
    let params = [
        (format!("{base}.sparse.values"), mk(vshape, smelt_ir::Data::F32(vals))),
        (format!("{base}.sparse.indices"), mk(vec![stored], smelt_ir::Data::I32(idx))),
        (format!("{base}.sparse.offsets"), mk(vec![off.len()], smelt_ir::Data::I32(off))),
    ];
    Some(SparseForm { op, params })
}
