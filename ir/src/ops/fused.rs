//! Fused forms created by the optimizer (and writable by hand): convolution with
//! bias, residual and activation or an elementwise epilogue; matmul with an elementwise epilogue; and one
//! elementwise region.

use super::conv::Conv;
use super::elementwise::UnaryOp;
use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};

use crate::shape::Shape;
use crate::types::TensorType;

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    Some(match name {
        "fused_conv1d" | "fused_conv2d" | "fused_conv3d" => {
            let rank = if name == "fused_conv1d" { 1 } else if name == "fused_conv2d" { 2 } else { 3 };
            let conv = Conv::read(rank, a);
            let act = a.choice(
                "activation",
                &[
                    ("identity", "identity"),
                    ("relu", "relu"),
                    ("gelu", "gelu"),
                    ("gelu_tanh", "gelu_tanh"),
                    ("tanh", "tanh"),
                    ("sigmoid", "sigmoid"),
                    ("silu", "silu"),
                ],
                Some("identity"),
            ).unwrap_or("identity");
            let epilogue = a.has("epilogue").then(|| a.expr("epilogue"));
            Op::FusedConv { conv, activation: UnaryOp::from_name(act, &[]).unwrap_or(UnaryOp::Identity), epilogue }
        }
        "fused_matmul" => Op::FusedMatMul { epilogue: a.expr("epilogue") },
        "elementwise" => Op::Elementwise { expr: a.expr("expr") },
        _ => return None,
    })
}

pub(super) fn attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    match op {
        Op::FusedConv { conv, activation, epilogue } => {
            let mut v = conv.attrs();
            if *activation != UnaryOp::Identity {
                v.push(("activation", AttrValue::ident(activation.name())));
            }
            if let Some(e) = epilogue {
                v.push(("epilogue", AttrValue::Expr(e.clone())));
            }
            v
        }
        Op::FusedMatMul { epilogue } => vec![("epilogue", AttrValue::Expr(epilogue.clone()))],
        Op::Elementwise { expr } => vec![("expr", AttrValue::Expr(expr.clone()))],
        _ => vec![],
    }
}

/// Broadcasts every extra input into `base`, which must stay the result shape.
fn broadcast_into(op: &str, base: &Shape, extra: &[&TensorType]) -> Result<(), String> {
    for t in extra {
        match base.broadcast(&t.shape) {
            Some(s) if &s == base => {}
            _ => return Err(format!("{op}: input {t} does not broadcast to the result {base}")),
        }
    }
    Ok(())
}

pub(super) fn infer(op: &Op, ins: &[&TensorType]) -> Result<TensorType, String> {
    match op {
        Op::FusedConv { conv, activation, epilogue } => {
            let n = op.name();
            let bias = ins.get(2).map(|_| &ins[..3]).unwrap_or(&ins[..2]);
            let out = conv.infer(bias, false).map_err(|e| e.replacen(&format!("conv{}d", conv.rank()), n, 1))?;
            if let Some(e) = epilogue {
                // `$0` the conv with its bias, `$1…` the extras, each of the output's type.
                if *activation != UnaryOp::Identity {
                    return Err(format!("{n} takes an activation or an epilogue, not both"));
                }
                if ins.len() < 3 {
                    return Err(format!("{n} with an epilogue needs a bias"));
                }
                for t in &ins[3..] {
                    if t.dtype != out.dtype || t.shape != out.shape || t.quant.is_some() {
                        return Err(format!("{n} expects epilogue inputs of type {out}, found {t}"));
                    }
                }
                let dts = vec![out.dtype; ins.len() - 2];
                let d = e.dtype(&dts).map_err(|e| format!("{n} epilogue: {e}"))?;
                if d != out.dtype {
                    return Err(format!("{n} epilogue gives {d}, the conv {}", out.dtype));
                }
                return Ok(out);
            }
            if let Some(r) = ins.get(3)
                && (r.dtype != out.dtype || r.shape != out.shape)
            {
                return Err(format!("{n} expects a residual of type {out}, found {r}"));
            }
            Ok(out)
        }
        Op::FusedMatMul { epilogue } => {
            let mm = super::linalg::infer(&Op::MatMul, &ins[..2])?;
            broadcast_into("fused_matmul", &mm.shape, &ins[2..])?;
            let mut dts = vec![mm.dtype];
            dts.extend(ins[2..].iter().map(|t| t.dtype));
            let d = epilogue.dtype(&dts).map_err(|e| format!("fused_matmul epilogue: {e}"))?;
            Ok(TensorType::new(d, mm.shape))
        }
        Op::Elementwise { expr } => {
            let mut shape = Shape::scalar();
            for t in ins {
                if t.quant.is_some() {
                    return Err(format!("elementwise does not take quantized input {t}"));
                }
                shape = shape.broadcast(&t.shape).ok_or_else(|| {
                    format!("elementwise cannot broadcast its inputs ({})", ins.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "))
                })?;
            }
            let dts: Vec<_> = ins.iter().map(|t| t.dtype).collect();
            let d = expr.dtype(&dts).map_err(|e| format!("elementwise expr: {e}"))?;
            Ok(TensorType::new(d, shape))
        }
        _ => {
            let _ = want_float;
            unreachable!("fused::infer on {}", op.name())
        }
    }
}
