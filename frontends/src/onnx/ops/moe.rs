//! ONNX Runtime's contrib `com.microsoft` `MoE`: `input` `[T, D]` (or `[B, S, D]`),
//! `router_probs` (the router's logits) `[T, E]`, `fc1_experts_weights`
//! `[E, H, D]`, `fc2_experts_weights` `[E, D, H]` and optional
//! `fc3_experts_weights` `[E, H, D]` (the gated form, `act(x·fc1)·(x·fc3)`) —
//! weights as `torch.nn.Linear` stores them, out × in — with `k`,
//! `activation_type` (relu, gelu, silu, identity) and
//! `normalize_routing_weights`. Imported as one smelt `moe` whose weights are
//! the transposes (`[E, D, H]`, `[E, H, D]`), made at import when constant. Expert biases,
//! the interleaved and clamped `swiglu` of ONNX Runtime's CPU kernel, and the
//! sparse mixer are refused with the reason.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{Moe, MoeStrategy};
use smelt_ir::{DType, Dim, Op, Tensor, UnaryOp, Value};

/// The importers of the `com.microsoft` domain.
pub(crate) const MS_IMPORTERS: &[(&str, super::Importer)] = &[("MoE", moe), ("DynamicQuantizeLSTM", super::rnn::dynamic_quantize_lstm)];

fn moe(cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    n.only_outputs(1, "MoE")?;
    for (i, what) in [(3, "fc1_experts_bias"), (5, "fc2_experts_bias"), (7, "fc3_experts_bias")] {
        if n.has_input(i) {
            return Err(n.unsupported(format!("MoE with {what} (expert biases are not supported yet)")));
        }
    }
    if n.int("use_sparse_mixer", 0)? != 0 {
        return Err(n.unsupported("MoE with use_sparse_mixer"));
    }
    let act = n.string("activation_type")?.unwrap_or_else(|| "relu".into());
    let activation = match act.as_str() {
        "relu" => UnaryOp::Relu,
        // ONNX Runtime's MoE kernels take gelu's tanh approximation (checked
        // against its outputs: 2e-7 with it, 3.5e-4 with erf's).
        "gelu" => UnaryOp::GeluTanh,
        "silu" => UnaryOp::Silu,
        "identity" => UnaryOp::Identity,
        other => return Err(n.unsupported(format!("MoE activation_type {other} (relu, gelu, silu and identity are)"))),
    };
    let k = n.int("k", 1)?;
    let normalize = n.int("normalize_routing_weights", 0)? != 0;
    let x = cx.input(n, 0)?;
    let logits = cx.input(n, 1)?;
    let dims = cx.dims(x);
    let d = dims.last().cloned().ok_or_else(|| n.err("MoE input must have a hidden dim"))?;
    let flat = match dims.len() {
        2 => x,
        3 => {
            let t = match (&dims[0], &dims[1]) {
                (Dim::Fixed(b), Dim::Fixed(s)) => Dim::Fixed(b * s),
                (Dim::Fixed(1), s) | (s, Dim::Fixed(1)) => s.clone(),
                _ => return Err(n.unsupported("MoE input [B, S, D] with more than one symbolic dim")),
            };
            cx.reshape(x, &[t, d.clone()])?
        }
        r => return Err(n.err(format!("MoE input must be [T, D] or [B, S, D], found rank {r}"))),
    };
    let k = usize::try_from(k).map_err(|_| n.err(format!("MoE k = {k}")))?;
    // Constant weights are transposed here, into params (folding leaves results
    // over 2^24 elements to run time, and an expert stack is usually larger).
    let swap = |cx: &mut Ctx, i: usize| -> Result<Value> {
        let name = n.input_name(i).unwrap_or_default();
        let known = cx.known(name).and_then(|k| k.tensor()).filter(|t| t.dtype() == DType::F32 && t.shape().len() == 3);
        let Some(t) = known else {
            let w = cx.input(n, i)?;
            return cx.op(Op::Transpose { perm: Some(vec![0, 2, 1]) }, &[w]);
        };
        let [e, a, b] = t.shape()[..] else { unreachable!("rank 3") };
        let v = t.to_f32();
        let mut out = vec![0f32; v.len()];
        for ex in 0..e {
            let (src, dst) = (&v[ex * a * b..(ex + 1) * a * b], &mut out[ex * a * b..(ex + 1) * a * b]);
            for i in 0..a {
                for j in 0..b {
                    dst[j * a + i] = src[i * b + j];
                }
            }
        }
        let t = Tensor::f32(vec![e, b, a], out).map_err(|m| n.err(m.to_string()))?;
        let transposed = format!("{name}.transposed");
        cx.add_initializer(&transposed, t);
        cx.value_of(&transposed)
    };
    let mut ins = vec![flat, logits, swap(cx, 2)?, swap(cx, 4)?];
    if n.has_input(6) {
        ins.push(swap(cx, 6)?);
    }
    let m = Moe { k, activation, normalize, capacity_factor: 0.0, strategy: MoeStrategy::Auto };
    let y = cx.op(Op::Moe(m), &ins)?;
    if dims.len() == 3 {
        return Ok(vec![cx.reshape(y, &dims)?]);
    }
    Ok(vec![y])
}
