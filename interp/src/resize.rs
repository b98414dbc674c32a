//! Interpreter: resize (ONNX Resize). Separable, as the ONNX reference: each
//! resized axis in turn, every output coordinate the weighted sum of its taps
//! ([`smelt_ir::ops::resize::axis_taps`]) or the extrapolation value, in f64;
//! stored in the node's dtype.

use super::Arg;
use super::util::{dims, from_f32};
use smelt_ir::ops::resize::axis_taps;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let Op::Resize(r) = op else {
        return Err(format!("{} is not a resize op", op.name()));
    };
    let o = out.first().ok_or("resize needs an output type")?;
    let x = ins.first().ok_or("resize needs an input")?.value;
    let out_shape = dims(o);
    let mut shape = x.shape().to_vec();
    if shape.len() != out_shape.len() {
        return Err(format!("resize of {shape:?} to {out_shape:?} changes the rank"));
    }
    let mut v: Vec<f64> = x.to_f32().into_iter().map(f64::from).collect();
    for axis in r.resized_axes(x.shape(), &out_shape) {
        let (len, n) = (shape[axis], out_shape[axis]);
        if len == 0 && n > 0 {
            return Err(format!("resize of an empty axis {axis} to {n}"));
        }
        let t = axis_taps(r, axis, shape.len(), len, n);
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let mut next = vec![0.0; outer * n * inner];
        for b in 0..outer {
            for k in 0..n {
                for i in 0..inner {
                    next[(b * n + k) * inner + i] = if t.outside[k] {
                        r.extrapolation as f64
                    } else {
                        (0..t.taps)
                            .map(|j| t.w[k * t.taps + j] * v[(b * len + t.idx[k * t.taps + j]) * inner + i])
                            .sum()
                    };
                }
            }
        }
        v = next;
        shape[axis] = n;
    }
    Ok(vec![from_f32(o, v.into_iter().map(|x| x as f32).collect())])
}
