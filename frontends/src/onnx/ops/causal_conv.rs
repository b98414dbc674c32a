//! ONNX CausalConvWithState: a depthwise causal 1-d convolution that carries its
//! left context between calls. Written exactly as the reference defines it: the
//! input is prefixed with the past state (zeros without one), convolved with
//! `groups = channels` and no padding, optionally passed through SiLU; the present
//! state is the last `k − 1` positions of the prefixed input.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{Conv, PadMode, Slice};
use smelt_ir::{Dim, Op, UnaryOp, Value};

pub fn causal_conv_with_state(cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    let x = cx.input(n, 0)?;
    let w = cx.input(n, 1)?;
    let b = cx.opt_input(n, 2)?;
    let past = cx.opt_input(n, 3)?;
    let act = match n.string("activation")?.as_deref().unwrap_or("none") {
        "none" => None,
        "silu" | "swish" => Some(UnaryOp::Silu),
        a => return Err(n.err(format!("unknown activation `{a}` (none, silu or swish)"))),
    };
    let xd = cx.dims(x);
    let wd = cx.fixed_dims(n, w, "CausalConvWithState weights")?;
    let c = match (xd.len(), xd.get(1).and_then(Dim::fixed)) {
        (3, Some(c)) => c as usize,
        _ => return Err(n.unsupported(format!("input {} (expected [B, C, L] with a fixed C)", cx.ty(x)))),
    };
    if c == 0 {
        return Err(n.err(format!("input {} has no channels", cx.ty(x))));
    }
    if wd.len() != 3 || wd[0] != c || wd[1] != 1 || wd[2] == 0 {
        return Err(n.err(format!("weights {} do not fit [{c}, 1, k]", cx.ty(w))));
    }
    let k = wd[2];
    let padded = match past {
        Some(p) => cx.op(Op::Concat { axis: 2 }, &[p, x])?,
        None if k > 1 => cx.op(Op::Pad { pads: vec![0, 0, k - 1, 0, 0, 0], mode: PadMode::Constant, value: 0.0 }, &[x])?,
        None => x,
    };
    let conv = Conv { stride: vec![1], pad: vec![0, 0], dilation: vec![1], groups: c };
    let ins: Vec<Value> = [padded, w].into_iter().chain(b).collect();
    let mut y = cx.op(Op::Conv(conv), &ins)?;
    if let Some(a) = act {
        y = cx.unary(a, y)?;
    }
    let mut outs = vec![y];
    if n.has_output(1) {
        // The last k − 1 positions (none for k = 1: the start clamps to the end).
        let start = if k == 1 { i64::MAX } else { 1 - k as i64 };
        let s = Slice { starts: vec![start], ends: vec![i64::MAX], axes: Some(vec![2]), steps: None };
        outs.push(cx.op(Op::Slice(s), &[padded])?);
    }
    Ok(outs)
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("CausalConvWithState", causal_conv_with_state),
];
