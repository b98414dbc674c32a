//! Index arithmetic shared by the interpreter's op files: strides, broadcasting,
//! and building output tensors of a node's type.

use smelt_ir::{Data, Tensor, TensorType};

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The multi-index of flat position `flat` in `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        if shape[i] > 0 {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
    }
    idx
}

/// For an output index `out_idx` (of the broadcast shape), the flat index into an
/// operand of shape `shape` (right-aligned; dims of 1 repeat).
pub fn broadcast_offset(out_idx: &[usize], shape: &[usize]) -> usize {
    let off = out_idx.len() - shape.len();
    let st = strides(shape);
    shape.iter().enumerate().map(|(i, &d)| if d == 1 { 0 } else { out_idx[off + i] * st[i] }).sum()
}

/// For each flat output position of `out_shape`, the flat position in an operand of
/// `shape` broadcast to it.
pub fn broadcast_map(out_shape: &[usize], shape: &[usize]) -> Vec<usize> {
    let n: usize = out_shape.iter().product();
    (0..n).map(|f| broadcast_offset(&unravel(f, out_shape), shape)).collect()
}

/// The fixed shape of a (bound) type.
pub fn dims(ty: &TensorType) -> Vec<usize> {
    ty.shape.fixed().expect("the interpreter runs on bound graphs")
}

/// A tensor of type `ty` from f32 values (rounded/saturated into the dtype).
pub fn from_f32(ty: &TensorType, v: Vec<f32>) -> Tensor {
    let d = dims(ty);
    let data = if ty.dtype == smelt_ir::DType::F32 { Data::F32(v) } else { Data::from_f32(ty.dtype, &v) };
    Tensor::new(d, data).expect("output sized by its type")
}

/// A tensor of type `ty` from i64 values (saturated into the dtype).
pub fn from_i64(ty: &TensorType, v: Vec<i64>) -> Tensor {
    Tensor::new(dims(ty), Data::from_i64(ty.dtype, &v)).expect("output sized by its type")
}
