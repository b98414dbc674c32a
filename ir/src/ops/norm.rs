//! Normalization: inference batch norm, layer norm, softmax and log-softmax, and
//! local response normalization across channels (`lrn`).

use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::shape::Shape;
use crate::types::TensorType;

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    match name {
        "batch_norm" => Some(Op::BatchNorm { epsilon: a.float("epsilon", Some(1e-5)) }),
        "layer_norm" => Some(Op::LayerNorm { axis: a.int("axis", Some(-1)), epsilon: a.float("epsilon", Some(1e-5)) }),
        "softmax" => Some(Op::Softmax { axis: a.int("axis", Some(-1)), log: false }),
        "log_softmax" => Some(Op::Softmax { axis: a.int("axis", Some(-1)), log: true }),
        "lrn" => {
            let size = a.usize("size", None);
            if size == 0 {
                a.error("lrn size must be at least 1");
            }
            let (alpha, beta, bias) = (a.float("alpha", Some(1e-4)), a.float("beta", Some(0.75)), a.float("bias", Some(1.0)));
            Some(Op::Lrn { size, alpha, beta, bias })
        }
        _ => None,
    }
}

pub(super) fn attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    let mut v = vec![];
    match *op {
        Op::BatchNorm { epsilon } => {
            if epsilon != 1e-5 {
                v.push(("epsilon", AttrValue::Float(epsilon)));
            }
        }
        Op::LayerNorm { axis, epsilon } => {
            if axis != -1 {
                v.push(("axis", AttrValue::Int(axis)));
            }
            if epsilon != 1e-5 {
                v.push(("epsilon", AttrValue::Float(epsilon)));
            }
        }
        Op::Softmax { axis, .. } => {
            if axis != -1 {
                v.push(("axis", AttrValue::Int(axis)));
            }
        }
        Op::Lrn { size, alpha, beta, bias } => {
            v.push(("size", AttrValue::Int(size as i64)));
            for (name, val, default) in [("alpha", alpha, 1e-4), ("beta", beta, 0.75), ("bias", bias, 1.0)] {
                if val != default {
                    v.push((name, AttrValue::Float(val)));
                }
            }
        }
        _ => {}
    }
    v
}

pub(super) fn infer(op: &Op, ins: &[&TensorType]) -> Result<TensorType, String> {
    let name = op.name();
    let x = ins[0];
    want_float(name, "input", x)?;
    match *op {
        Op::BatchNorm { .. } => {
            if x.rank() < 2 {
                return Err(format!("batch_norm expects input of rank ≥ 2 ([N, C, …]), found {x}"));
            }
            let c = &x.dims()[1];
            for (what, t) in ["scale", "bias", "mean", "var"].iter().zip(&ins[1..]) {
                if t.dtype != x.dtype || t.shape != Shape(vec![c.clone()]) {
                    return Err(format!("batch_norm expects {what} {}[{c}], found {t}", x.dtype));
                }
            }
        }
        Op::LayerNorm { axis, .. } => {
            let a = x.shape.axis(axis).ok_or_else(|| format!("layer_norm axis {axis} is out of range for {x}"))?;
            let norm = Shape(x.dims()[a..].to_vec());
            for (what, t) in ["scale", "bias"].iter().zip(&ins[1..]) {
                if t.dtype != x.dtype || t.shape != norm {
                    return Err(format!("layer_norm expects {what} {}{norm}, found {t}", x.dtype));
                }
            }
        }
        Op::Softmax { axis, .. } => {
            x.shape.axis(axis).ok_or_else(|| format!("{name} axis {axis} is out of range for {x}"))?;
        }
        Op::Lrn { .. } => {
            if x.rank() < 2 {
                return Err(format!("lrn expects input of rank ≥ 2 ([N, C, …]), found {x}"));
            }
        }
        _ => unreachable!("norm::infer on {name}"),
    }

    Ok(x.with_dtype(x.dtype))
}
