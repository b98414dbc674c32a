//! ONNX LinearAttention (opset 27): the recurrent state `S` (`[B, Hkv, dk, dv]`)
//! updated token by token — decayed by `exp(decay)` (`gated` rules), the value
//! corrected by what `S` already holds for the key, times `beta` (`delta`
//! rules), then `S += kᵀ·v` — and each token's output `scale · q·S` (the state's
//! heads repeated for grouped queries), as ONNX's reference. The recurrence is
//! unrolled over the sequence at import (up to [`MAX_UNROLL`] tokens), in f32.

use super::super::control::MAX_UNROLL;
use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use super::flex::repeat_heads;
use smelt_ir::ops::Slice;
use smelt_ir::{BinaryOp, DType, Op, Tensor, UnaryOp, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[("LinearAttention", linear_attention)];

/// `[B, T, H·D]` → `[B, H, T, D]`, in f32.
fn heads(cx: &mut Ctx, x: Value, b: usize, t: usize, h: usize, d: usize) -> Result<Value> {
    let x = cx.cast(x, DType::F32)?;
    let x = cx.reshape_fixed(x, &[b, t, h, d])?;
    cx.op(Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, &[x])
}

/// Token `i` of `x` (`[B, H, T, D]`): `[B, H, 1, D]`.
fn token(cx: &mut Ctx, x: Value, i: usize) -> Result<Value> {
    let i = i as i64;
    cx.op(Op::Slice(Slice { starts: vec![i], ends: vec![i + 1], axes: Some(vec![2]), steps: None }), &[x])
}

pub fn linear_attention(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (q, k, v) = (cx.input(n, 0)?, cx.input(n, 1)?, cx.input(n, 2)?);
    let (past, decay, beta) = (cx.opt_input(n, 3)?, cx.opt_input(n, 4)?, cx.opt_input(n, 5)?);
    let rule = n.string("update_rule")?.unwrap_or_else(|| "gated_delta".into());
    let (gating, delta) = match rule.as_str() {
        "linear" => (false, false),
        "gated" => (true, false),
        "delta" => (false, true),
        "gated_delta" => (true, true),
        r => return Err(n.err(format!("unknown update_rule `{r}` (linear, gated, delta or gated_delta)"))),
    };
    if gating != decay.is_some() || delta != beta.is_some() {
        return Err(n.err(format!("update_rule `{rule}` takes {}decay and {}beta", if gating { "" } else { "no " }, if delta { "" } else { "no " })));
    }
    let (hq, hkv) = (n.int("q_num_heads", 0)?, n.int("kv_num_heads", 0)?);
    if hq < 1 || hkv < 1 || hq % hkv != 0 {
        return Err(n.err(format!("q_num_heads {hq} must be a positive multiple of kv_num_heads {hkv}")));
    }
    let (hq, hkv) = (hq as usize, hkv as usize);
    let qd = cx.fixed_dims(n, q, "LinearAttention")?;
    let kd = cx.fixed_dims(n, k, "LinearAttention")?;
    let vd = cx.fixed_dims(n, v, "LinearAttention")?;
    let shaped = |d: &[usize], h: usize| d.len() == 3 && d[2].is_multiple_of(h) && d[..2] == qd[..2.min(qd.len())];
    if qd.len() != 3 || !shaped(&qd, hq) || !shaped(&kd, hkv) || !shaped(&vd, hkv) || kd[2] / hkv != qd[2] / hq {
        return Err(n.err(format!("query, key and value must be [B, T, heads·D] with the same key size, found {}, {} and {}", cx.ty(q), cx.ty(k), cx.ty(v))));
    }
    let (b, t) = (qd[0], qd[1]);
    let (dk, dv) = (qd[2] / hq, vd[2] / hkv);
    if t > MAX_UNROLL {
        return Err(n.unsupported(format!("a sequence of {t} tokens (the recurrence is unrolled at import, up to {MAX_UNROLL})")));
    }
    let out_dtype = cx.ty(q).dtype;
    let (q4, k4, v4) = (heads(cx, q, b, t, hq, dk)?, heads(cx, k, b, t, hkv, dk)?, heads(cx, v, b, t, hkv, dv)?);
    // decay: [B, T, Hkv] (per head) or [B, T, Hkv·dk] (per key feature) → [B, Hkv, T, 1 or dk].
    let decay4 = match decay {
        Some(g) => {
            let last = cx.fixed_dims(n, g, "decay")?.last().copied().unwrap_or(0);
            let per = if last == hkv { 1 } else if last == hkv * dk { dk } else {
                return Err(n.err(format!("decay's last dim {last} must be kv_num_heads ({hkv}) or kv_num_heads·d_k ({})", hkv * dk)));
            };
            Some(heads(cx, g, b, t, hkv, per)?)
        }
        None => None,
    };
    let beta4 = match beta {
        Some(be) => {
            let last = cx.fixed_dims(n, be, "beta")?.last().copied().unwrap_or(0);
            if last != hkv && last != 1 {
                return Err(n.err(format!("beta's last dim {last} must be kv_num_heads ({hkv}) or 1")));
            }
            Some(heads(cx, be, b, t, last, 1)?)
        }
        None => None,
    };
    let state_dtype = match past {
        Some(p) => cx.ty(p).dtype,
        None => out_dtype,
    };
    let mut state = match past {
        Some(p) => {
            if cx.fixed_dims(n, p, "past_state")? != [b, hkv, dk, dv] {
                return Err(n.err(format!("past_state must be [{b}, {hkv}, {dk}, {dv}], found {}", cx.ty(p))));
            }
            cx.cast(p, DType::F32)?
        }
        None => cx.filled(&Tensor::scalar_f32(0.0), &smelt_ir::Shape::from(&[b, hkv, dk, dv][..]).0)?,
    };
    let scale = match n.float_opt("scale")? {
        Some(s) if s != 0.0 => s as f64,
        _ => 1.0 / (dk as f64).sqrt(),
    };
    let scale = cx.scalar(scale, DType::F32);
    let mut outs = Vec::with_capacity(t);
    let swap = Some(vec![0, 1, 3, 2]);
    for i in 0..t {
        let (q_t, k_t, mut v_t) = (token(cx, q4, i)?, token(cx, k4, i)?, token(cx, v4, i)?);
        if let Some(g) = decay4 {
            // exp(g) along the state's key rows: [B, Hkv, 1 or dk, 1].
            let g_t = token(cx, g, i)?;
            let g_t = cx.op(Op::Transpose { perm: swap.clone() }, &[g_t])?;
            let e = cx.unary(UnaryOp::Exp, g_t)?;
            state = cx.binary(BinaryOp::Mul, state, e)?;
        }
        if let Some(be) = beta4 {
            let held = cx.op(Op::MatMul, &[k_t, state])?;
            let d = cx.binary(BinaryOp::Sub, v_t, held)?;
            let b_t = token(cx, be, i)?;
            v_t = cx.binary(BinaryOp::Mul, b_t, d)?;
        }
        let kc = cx.op(Op::Transpose { perm: swap.clone() }, &[k_t])?;
        let kv = cx.binary(BinaryOp::Mul, kc, v_t)?;
        state = cx.binary(BinaryOp::Add, state, kv)?;
        let read = repeat_heads(cx, state, hq / hkv)?;
        let o = cx.op(Op::MatMul, &[q_t, read])?;
        outs.push(cx.binary(BinaryOp::Mul, o, scale)?);
    }
    let o = if outs.len() == 1 { outs[0] } else { cx.op(Op::Concat { axis: 2 }, &outs)? };
    let o = cx.op(Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, &[o])?;
    let o = cx.reshape_fixed(o, &[b, t, hq * dv])?;
    let o = cx.cast(o, out_dtype)?;
    let present = cx.cast(state, state_dtype)?;
    Ok(vec![o, present])
}
