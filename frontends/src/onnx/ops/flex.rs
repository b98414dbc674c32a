//! ONNX FlexAttention (domain `ai.onnx.preview`): attention whose scores and
//! probabilities pass through the node's own graphs (`score_mod`, `prob_mod`),
//! imported inline on the whole score tensor. As ONNX's reference: `Q·√s` times
//! `(K·√s)ᵀ`, the key and value heads repeated for grouped queries, softmax over
//! the keys, times V; f16/bf16 inputs are computed in f32 and the result cast
//! back.

use super::super::control::apply_graph;
use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::{BinaryOp, DType, Dim, Op, Value};

type Out = Result<Vec<Value>>;

pub(crate) const PREVIEW_IMPORTERS: &[(&str, super::Importer)] = &[("FlexAttention", flex_attention)];

/// `x` `[B, Hkv, S, E]` with each head repeated `r` times in place: `[B, Hkv·r, S, E]`.
pub fn repeat_heads(cx: &mut Ctx, x: Value, r: usize) -> Result<Value> {
    if r == 1 {
        return Ok(x);
    }
    let d = cx.dims(x);
    let mut five = d.clone();
    five.insert(2, Dim::Fixed(1));
    let x5 = cx.reshape(x, &five)?;
    let mut spec: Vec<_> = five.iter().map(super::tensor::dim_spec).collect();
    spec[2] = smelt_ir::DimSpec::Int(r as i64);
    let e = cx.expand(x5, &spec)?;
    let mut out = d;
    out[1] = Dim::Fixed(out[1].fixed().unwrap_or(0) * r as u64);
    cx.reshape(e, &out)
}

pub fn flex_attention(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (q, k, v) = (cx.input(n, 0)?, cx.input(n, 1)?, cx.input(n, 2)?);
    let vt = cx.ty(v);
    let qd = cx.fixed_dims(n, q, "FlexAttention")?;
    let kd = cx.fixed_dims(n, k, "FlexAttention")?;
    let vd = cx.fixed_dims(n, v, "FlexAttention")?;
    if qd.len() != 4 || kd.len() != 4 || vd.len() != 4 || kd[3] != qd[3] || vd[1] != kd[1] || vd[2] != kd[2] {
        return Err(n.err(format!("Q, K and V must be [B, H, L, E], [B, Hkv, S, E], [B, Hkv, S, Ev], found {}, {} and {vt}", cx.ty(q), cx.ty(k))));
    }
    if kd[1] == 0 || !qd[1].is_multiple_of(kd[1]) {
        return Err(n.err(format!("{} query heads are not a multiple of {} key heads", qd[1], kd[1])));
    }
    let (q, k, v) = (cx.cast(q, DType::F32)?, cx.cast(k, DType::F32)?, cx.cast(v, DType::F32)?);
    let r = qd[1] / kd[1];
    let (k, v) = (repeat_heads(cx, k, r)?, repeat_heads(cx, v, r)?);
    let scale = match n.float_opt("scale")? {
        Some(s) => s as f64,
        None => 1.0 / (qd[3] as f64).sqrt(),
    };
    let root = cx.scalar(scale.sqrt(), DType::F32);
    let (qs, ks) = (cx.binary(BinaryOp::Mul, q, root)?, cx.binary(BinaryOp::Mul, k, root)?);
    let kt = cx.op(Op::Transpose { perm: Some(vec![0, 1, 3, 2]) }, &[ks])?;
    let mut scores = cx.op(Op::MatMul, &[qs, kt])?;
    if let Some(s) = apply_graph(cx, n, "score_mod", &[scores])? {
        scores = s;
    }
    let mut probs = cx.op(Op::Softmax { axis: -1, log: false }, &[scores])?;
    if let Some(p) = apply_graph(cx, n, "prob_mod", &[probs])? {
        probs = p;
    }
    let out = cx.op(Op::MatMul, &[probs, v])?;
    Ok(vec![cx.cast(out, vt.dtype)?])
}
