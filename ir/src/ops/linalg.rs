//! Linear algebra: numpy `matmul` (batched, broadcast batch dims) and ONNX `gemm`.

use super::{Op, want_dim_eq, want_rank};
use crate::attr::{AttrReader, AttrValue};
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

/// `alpha·op(a)·op(b) + beta·c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gemm {
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
}

impl Default for Gemm {
    fn default() -> Gemm {
        Gemm { trans_a: false, trans_b: false, alpha: 1.0, beta: 1.0 }
    }
}

impl Gemm {
    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![];
        if self.trans_a {
            v.push(("trans_a", AttrValue::bool(true)));
        }
        if self.trans_b {
            v.push(("trans_b", AttrValue::bool(true)));
        }
        if self.alpha != 1.0 {
            v.push(("alpha", AttrValue::Float(self.alpha)));
        }
        if self.beta != 1.0 {
            v.push(("beta", AttrValue::Float(self.beta)));
        }
        v
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    match name {
        "matmul" => Some(Op::MatMul),
        "gemm" => Some(Op::Gemm(Gemm {
            trans_a: a.bool("trans_a", false),
            trans_b: a.bool("trans_b", false),
            alpha: a.float("alpha", Some(1.0)),
            beta: a.float("beta", Some(1.0)),
        })),
        _ => None,
    }
}

/// The output shape of numpy matmul of shapes `a` and `b`.
pub fn matmul_shape(a: &Shape, b: &Shape) -> Result<Shape, String> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err(format!("matmul does not take scalars, found {a} and {b}"));
    }
    let a2 = if a.rank() == 1 { Shape(vec![Dim::Fixed(1), a.0[0].clone()]) } else { a.clone() };
    let b2 = if b.rank() == 1 { Shape(vec![b.0[0].clone(), Dim::Fixed(1)]) } else { b.clone() };
    let (ra, rb) = (a2.rank(), b2.rank());
    let k_a = &a2.0[ra - 1];
    let k_b = &b2.0[rb - 2];
    if k_a != k_b {
        return Err(format!("matmul: inner dims must agree, found {a} and {b}"));
    }
    let batch = Shape(a2.0[..ra - 2].to_vec())
        .broadcast(&Shape(b2.0[..rb - 2].to_vec()))
        .ok_or_else(|| format!("matmul cannot broadcast batch dims of {a} and {b}"))?;
    let mut out = batch.0;
    if a.rank() > 1 {
        out.push(a2.0[ra - 2].clone());
    }
    if b.rank() > 1 {
        out.push(b2.0[rb - 1].clone());
    }
    Ok(Shape(out))
}

pub(super) fn infer(op: &Op, ins: &[&TensorType]) -> Result<TensorType, String> {
    let (a, b) = (ins[0], ins[1]);
    if a.dtype != b.dtype || a.quant.is_some() || b.quant.is_some() {
        return Err(format!("{} expects two unquantized operands of one dtype, found {a} and {b}", op.name()));
    }
    if !(a.dtype.is_float() || matches!(a.dtype, crate::DType::I32 | crate::DType::I64)) {
        return Err(format!("{} does not take {} operands", op.name(), a.dtype));
    }
    match op {
        Op::MatMul => Ok(TensorType::new(a.dtype, matmul_shape(&a.shape, &b.shape)?)),
        Op::Gemm(g) => {
            want_rank("gemm", "a", a, 2)?;
            want_rank("gemm", "b", b, 2)?;
            let (m, ka) = if g.trans_a { (&a.dims()[1], &a.dims()[0]) } else { (&a.dims()[0], &a.dims()[1]) };
            let (kb, n) = if g.trans_b { (&b.dims()[1], &b.dims()[0]) } else { (&b.dims()[0], &b.dims()[1]) };
            want_dim_eq("gemm", "inner dims", ka, kb)?;
            let out = Shape(vec![m.clone(), n.clone()]);
            if let Some(c) = ins.get(2) {
                if c.dtype != a.dtype {
                    return Err(format!("gemm expects c of dtype {}, found {c}", a.dtype));
                }
                match c.shape.broadcast(&out) {
                    Some(s) if s == out => {}
                    _ => return Err(format!("gemm cannot broadcast c {} to {out}", c.shape)),
                }
            }
            Ok(TensorType::new(a.dtype, out))
        }
        _ => unreachable!("linalg::infer called on {}", op.name()),
    }
}
