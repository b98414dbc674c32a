//! ONNX Attention (opset 23). The plain case — 3-d inputs, as many key/value heads
//! as query heads, no cache, no softcap, no extra outputs — maps onto smelt's
//! `attention` op. Everything else (4-d inputs, grouped-query heads, past keys and
//! values with the present outputs, softcap, boolean or short masks, causal masks
//! with a cache, the `qk_matmul_output` modes) is written with matmul, softmax and
//! elementwise ops in the `[B, heads, S, head_size]` layout, as ONNX's reference
//! computes it.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{Attention, PadMode};
use smelt_ir::{BinaryOp, DType, Data, Dim, Op, Tensor, UnaryOp, Value};

type Out = Result<Vec<Value>>;

fn fixed(cx: &Ctx, n: &NodeRef, v: Value) -> Result<Vec<usize>> {
    cx.fixed_dims(n, v, "Attention")
}

/// The most elements of a mask built at import time (an 8192 × 8192 causal mask).
const MAX_MASK: usize = 1 << 26;

/// The element count of a `rows × cols` mask made here, checked against [`MAX_MASK`].
fn mask_size(n: &NodeRef, rows: usize, cols: usize, what: &str) -> Result<usize> {
    match rows.checked_mul(cols) {
        Some(k) if k <= MAX_MASK => Ok(k),
        _ => Err(n.unsupported(format!("a {what} mask of {rows} × {cols} (at most {MAX_MASK} elements)"))),
    }
}

/// A head count attribute (required for 3-d inputs).
fn heads(n: &NodeRef, name: &str) -> Result<usize> {
    let h = n.int_opt(name)?.ok_or_else(|| n.err(format!("3-d inputs need {name}")))?;
    usize::try_from(h).map_err(|_| n.err(format!("{name} {h} is negative")))
}

/// `[B, S, H·D]` → `[B, H, S, D]`.
fn heads4(cx: &mut Ctx, v: Value, h: usize) -> Result<Value> {
    let d = cx.dims(v);
    let e = d[2].fixed().unwrap_or(0) as usize;
    let y = cx.reshape(v, &[d[0].clone(), d[1].clone(), Dim::Fixed(h as u64), Dim::Fixed((e / h.max(1)) as u64)])?;
    cx.op(Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, &[y])
}

pub fn attention(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (q, k, v) = (cx.input(n, 0)?, cx.input(n, 1)?, cx.input(n, 2)?);
    let mask = cx.opt_input(n, 3)?;
    let (past_k, past_v) = (cx.opt_input(n, 4)?, cx.opt_input(n, 5)?);
    let three = cx.rank(q) == 3;
    for t in [q, k, v] {
        if cx.rank(t) != cx.rank(q) || !(3..=4).contains(&cx.rank(t)) {
            return Err(n.err(format!(
                "Q, K and V must all be 3-d or all 4-d, found {}, {} and {}",
                cx.ty(q),
                cx.ty(k),
                cx.ty(v)
            )));
        }
    }
    let causal = n.bool("is_causal", false)?;
    let softcap = n.float("softcap", 0.0)?;
    let mode = n.int("qk_matmul_output_mode", 0)?;
    let dt = cx.ty(q).dtype;
    let qd = fixed(cx, n, q)?;
    let (hq, hk) =
        if three { (heads(n, "q_num_heads")?, heads(n, "kv_num_heads")?) } else { (qd[1], fixed(cx, n, k)?[1]) };
    if hq == 0 || hk == 0 || hq % hk != 0 {
        return Err(n.err(format!("{hq} query heads do not group over {hk} key heads")));
    }
    let scale = n.float_opt("scale")?;
    let (sq, skv) = (if three { qd[1] } else { qd[2] }, fixed(cx, n, k)?[if three { 1 } else { 2 }]);
    let extra_out = (1..4).any(|i| n.has_output(i));
    let mask_ok = mask.is_none_or(|m| cx.dims(m).last() == Some(&Dim::Fixed(skv as u64)));
    if three
        && hq == hk
        && past_k.is_none()
        && softcap == 0.0
        && !extra_out
        && !n.has_input(6)
        && mask_ok
        && (!causal || sq == skv)
    {
        let m = match mask {
            Some(m) => Some(additive(cx, m, dt)?),
            None => None,
        };
        let a = Attention { heads: hq, scale, causal };
        let ins: Vec<Value> = [q, k, v].into_iter().chain(m).collect();
        return Ok(vec![cx.op(Op::Attention(a), &ins)?]);
    }

    let (q4, k4, v4) = if three { (heads4(cx, q, hq)?, heads4(cx, k, hk)?, heads4(cx, v, hk)?) } else { (q, k, v) };
    let head = fixed(cx, n, q4)?[3];
    let present = |cx: &mut Ctx, past: Option<Value>, cur: Value| -> Result<Value> {
        match past {
            Some(p) => cx.op(Op::Concat { axis: 2 }, &[p, cur]),
            None => Ok(cur),
        }
    };
    let pk = present(cx, past_k, k4)?;
    let pv = present(cx, past_v, v4)?;
    let past_len = match past_k {
        Some(p) => fixed(cx, n, p)?[2],
        None => 0,
    };
    let total = fixed(cx, n, pk)?[2];
    // Grouped-query attention: each key/value head serves hq/hk query heads.
    let repeat = |cx: &mut Ctx, x: Value| -> Result<Value> {
        if hq == hk {
            return Ok(x);
        }
        let d = fixed(cx, n, x)?;
        let d5: Vec<Dim> = [d[0], d[1], 1, d[2], d[3]].iter().map(|&v| Dim::Fixed(v as u64)).collect();
        let y = cx.reshape(x, &d5)?;
        let spec: Vec<_> =
            [d[0], d[1], hq / hk, d[2], d[3]].iter().map(|&v| smelt_ir::attr::DimSpec::Int(v as i64)).collect();
        let y = cx.expand(y, &spec)?;
        cx.reshape(y, &[d[0], hq, d[2], d[3]].map(|v| Dim::Fixed(v as u64)))
    };
    let kr = repeat(cx, pk)?;
    let vr = repeat(cx, pv)?;
    let kt = cx.op(Op::Transpose { perm: Some(vec![0, 1, 3, 2]) }, &[kr])?;
    let s = cx.op(Op::MatMul, &[q4, kt])?;
    let sc = cx.scalar(scale.unwrap_or(1.0 / (head as f32).sqrt()) as f64, dt);
    let mut scores = cx.binary(BinaryOp::Mul, s, sc)?;
    if softcap > 0.0 {
        let c = cx.scalar(softcap as f64, dt);
        let y = cx.binary(BinaryOp::Div, scores, c)?;
        let y = cx.unary(UnaryOp::Tanh, y)?;
        scores = cx.binary(BinaryOp::Mul, y, c)?;
    }
    let mut bias: Option<Value> = match mask {
        Some(m) => {
            let last = *fixed(cx, n, m)?.last().ok_or_else(|| n.err("a 0-d mask"))?;
            let m = if last < total {
                let r = cx.rank(m);
                let mut pads = vec![0i64; 2 * r];
                pads[2 * r - 1] = (total - last) as i64;
                let fill = if cx.ty(m).dtype == DType::Bool { 0.0 } else { f32::NEG_INFINITY };
                super::tensor::pad_crop(cx, m, &pads, PadMode::Constant, fill)?
            } else {
                m
            };
            Some(additive(cx, m, dt)?)
        }
        None => None,
    };
    if causal {
        let size = mask_size(n, sq, total, "causal")?;
        let v: Vec<f32> =
            (0..size).map(|f| if f % total > past_len + f / total { f32::NEG_INFINITY } else { 0.0 }).collect();
        let t = Tensor::new(vec![sq, total], Data::from_f32(dt, &v)).map_err(|e| n.err(e.to_string()))?;
        let c = cx.konst(t);
        bias = Some(match bias {
            Some(b) => cx.binary(BinaryOp::Add, b, c)?,
            None => c,
        });
    }
    if n.has_input(6) {
        let lens = cx.need_ints(n, 6, "non-pad key/value lengths")?;
        let b = qd[0];
        if lens.len() != b || lens.iter().any(|&l| l < 0) {
            return Err(n.err(format!("non-pad key/value lengths {lens:?} for a batch of {b}")));
        }
        let size = mask_size(n, b, total, "key/value length")?;
        let v: Vec<f32> =
            (0..size).map(|f| if (f % total) < lens[f / total] as usize { 0.0 } else { f32::NEG_INFINITY }).collect();
        let t = Tensor::new(vec![b, 1, 1, total], Data::from_f32(dt, &v)).map_err(|e| n.err(e.to_string()))?;
        let c = cx.konst(t);
        bias = Some(match bias {
            Some(bb) => cx.binary(BinaryOp::Add, bb, c)?,
            None => c,
        });
    }
    let with_bias = match bias {
        Some(b) => cx.binary(BinaryOp::Add, scores, b)?,
        None => scores,
    };
    let p = cx.op(Op::Softmax { axis: -1, log: false }, &[with_bias])?;
    let mut y = cx.op(Op::MatMul, &[p, vr])?;
    if three {
        let yd = cx.dims(y);
        let t = cx.op(Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, &[y])?;
        let e = yd[1].fixed().unwrap_or(0) * yd[3].fixed().unwrap_or(0);
        y = cx.reshape(t, &[yd[0].clone(), yd[2].clone(), Dim::Fixed(e)])?;
    }
    let qk = match mode {
        0 | 1 => scores,
        2 => with_bias,
        3 => p,
        m => return Err(n.unsupported(format!("qk_matmul_output_mode {m}"))),
    };
    Ok(vec![y, pk, pv, qk])
}

/// A mask as an additive float bias: booleans become 0 (keep) or −inf.
fn additive(cx: &mut Ctx, m: Value, dt: DType) -> Result<Value> {
    if cx.ty(m).dtype != DType::Bool {
        return cx.cast(m, dt);
    }
    let z = cx.scalar(0.0, dt);
    let inf = cx.scalar(f64::NEG_INFINITY, dt);
    cx.op(Op::Where, &[m, z, inf])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("Attention", attention),
];
