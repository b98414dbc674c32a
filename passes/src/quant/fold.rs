//! `fold-qdq`: quantize/dequantize pairs around float layers become integer
//! kernels, so a quantized model (ONNX QDQ, or what `smelt quantize` writes) never
//! runs its convolutions and matmuls in float.
//!
//! 1. `conv(dequantize(qx), dequantize(qw), b)` with `qx` quantized per tensor and
//!    `qw` per output channel (or per tensor) becomes
//!    `cast(qconv(qx, qw) : i32) · S + b` with `S[m] = sx·sw[m]` (the accumulators'
//!    scale); likewise a `matmul` whose `b` is quantized per column, and a `gemm`
//!    (not `trans_a`; with `trans_b` its constant integer `b` is transposed, and
//!    `α`, `β·C` are applied after). Exact up to f32 rounding: the integer
//!    products are exact, and the float ones were rounded.
//! 2. `quantize([relu](cast(acc) · S [+ b]))` where `acc` is such an integer
//!    kernel, every link used once, becomes one kernel that requantizes its
//!    accumulators (`round(acc·sx·sw[m]/so) + zo`, clamped) with the bias
//!    rounded to i32 (`round(b/S)`, as the QDQ bias convention). The ReLU folds
//!    when the output zero point is the dtype's minimum (the clamp is the ReLU).
//! 3. `quantize(dequantize(q))` with `q`'s own parameters is `q`, and
//!    `quantize(S(dequantize(q)))` is `S(q)` for a shape op `S` (reshape,
//!    transpose, expand, slice) that moves the integers as they are.

use crate::classic::{add_weight, fresh_name, replace_node};
use crate::error::Result;
use crate::manager::{Pass, PassReport};
use smelt_ir::ops::{BinaryOp, Conv, Requant, UnaryOp};
use smelt_ir::{DType, Data, DimSpec, Graph, NodeId, Op, Quant, Tensor, Value};
use std::sync::Arc;

#[derive(Debug, Default, Clone, Copy)]
pub struct FoldQdq;

impl Pass for FoldQdq {
    fn name(&self) -> &'static str {
        "fold-qdq"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let Some(order) = g.topo_order() else { return Ok(PassReport::default()) };
        let (mut kernels, mut requant, mut pairs) = (0, 0, 0);
        for &id in &order {
            if g.contains(id) && matches!(g.node(id).op, Op::Conv(_) | Op::MatMul | Op::Gemm(_)) && fold_layer(g, id).is_some() {
                kernels += 1;
            }
        }
        let Some(order) = g.topo_order() else { return Ok(PassReport::default()) };
        for id in order {
            if !g.contains(id) || !matches!(g.node(id).op, Op::Quantize(_)) {
                continue;
            }
            if cancel_pair(g, id).is_some() || through_shape_op(g, id).is_some() {
                pairs += 1;
            } else if fuse_requant(g, id).is_some() {
                requant += 1;
            }
        }
        let mut notes = vec![];
        if kernels > 0 {
            notes.push(format!("{kernels} layers to integer kernels"));
        }
        if requant > 0 {
            notes.push(format!("{requant} requantizations fused"));
        }
        if pairs > 0 {
            notes.push(format!("{pairs} quantize(dequantize) pairs cancelled"));
        }
        Ok(PassReport { notes, eqsat: None })
    }
}

/// The quantized value a `dequantize` reads.
fn dq_source(g: &Graph, v: Value) -> Option<Value> {
    matches!(g.node(v.node).op, Op::Dequantize).then(|| g.node_inputs(v.node)[0])
}

/// A weight's value, quantized or not (a param with its weight, or a constant).
fn value_of(g: &Graph, v: Value) -> Option<Arc<Tensor>> {
    match &g.node(v.node).op {
        Op::Const(t) => Some(t.clone()),
        Op::Param => g.weight(g.node(v.node).name()).cloned(),
        _ => None,
    }
}

/// Per-channel scales of `q` for `n` channels along `axis` (per-tensor repeats).
fn scales(q: &Quant, axis: usize, n: usize) -> Option<Vec<f32>> {
    match q {
        Quant::PerTensor { scale, .. } => Some(vec![*scale; n]),
        Quant::PerAxis { axis: a, scale, .. } if *a == axis && scale.len() == n => Some(scale.clone()),
        _ => None,
    }
}

fn per_tensor(q: Option<&Quant>) -> Option<(f32, i32)> {
    match q? {
        Quant::PerTensor { scale, zero_point } => Some((*scale, *zero_point)),
        _ => None,
    }
}

/// `[c]` as shape `[c, 1, …]` with `trailing` ones (the channel axis of a conv's output).
fn channel_tensor(v: Vec<f32>, trailing: usize) -> Tensor {
    let mut shape = vec![v.len()];
    shape.extend(std::iter::repeat_n(1, trailing));
    Tensor::new(shape, Data::F32(v)).expect("shape matches")
}

/// An integer kernel for a layer: its op and inputs, its accumulators' per-channel
/// weight scales, the number of trailing dims after the channel axis of its
/// output, `α`, and an addend after the rescale (bias or `C`, with its factor).
type KernelPlan = (Op, Vec<Value>, Vec<f32>, usize, f32, Option<(Value, f32)>);

fn fold_layer(g: &mut Graph, id: NodeId) -> Option<()> {
    let ins = g.node_inputs(id);
    let qx = dq_source(g, ins[0])?;
    let qw = dq_source(g, *ins.get(1)?)?;
    let (sx, _) = per_tensor(g.value_type(qx)?.quant.as_ref())?;
    let wty = g.value_type(qw)?.clone();
    let wq = wty.quant.clone()?;
    let out_rank = g.value_type(Value { node: id, output: 0 })?.rank();
    let name = g.node(id).name().to_string();
    let op = g.node(id).op.clone();
    // The integer kernel, its accumulators' scale, and what comes after.
    let (kernel, kins, s, trailing, alpha, extra): KernelPlan = match &op {
        Op::Conv(c) => {
            let m = wty.dims()[0].fixed()? as usize;
            let sw = scales(&wq, 0, m)?;
            let bias = ins.get(2).map(|&b| (b, 1.0));
            (Op::QConv(c.clone(), Requant::i32()), vec![qx, qw], sw, out_rank - 2, 1.0, bias)
        }
        Op::MatMul => {
            if wty.rank() != 2 {
                return None;
            }
            let n = wty.dims()[1].fixed()? as usize;
            (Op::QMatMul(Requant::i32()), vec![qx, qw], scales(&wq, 1, n)?, 0, 1.0, None)
        }
        Op::Gemm(gm) if !gm.trans_a && wty.rank() == 2 => {
            let c = ins.get(2).map(|&c| (c, gm.beta));
            if gm.trans_b {
                // [N, K] quantized per row → [K, N] per column, as a new param.
                let t = value_of(g, qw)?;
                let (n, k) = (t.shape()[0], t.shape()[1]);
                let idx: Vec<usize> = (0..k).flat_map(|kk| (0..n).map(move |nn| nn * k + kk)).collect();
                let tt = Tensor::new(vec![k, n], t.data().take(&idx)).ok()?;
                let q = match &wq {
                    Quant::PerAxis { axis: 0, scale, zero_point } => {
                        Quant::PerAxis { axis: 1, scale: scale.clone(), zero_point: zero_point.clone() }
                    }
                    Quant::PerTensor { .. } => wq.clone(),
                    _ => return None,
                };
                let sw = scales(&q, 1, n)?;
                let v = add_weight(g, &format!("{name}_wt"), tt);
                let ty = g.value_type(v)?.clone().with_quant(q);
                g.node_mut(v.node).types = vec![ty];
                (Op::QMatMul(Requant::i32()), vec![qx, v], sw, 0, gm.alpha, c)
            } else {
                let n = wty.dims()[1].fixed()? as usize;
                (Op::QMatMul(Requant::i32()), vec![qx, qw], scales(&wq, 1, n)?, 0, gm.alpha, c)
            }
        }
        _ => return None,
    };
    let acc_name = fresh_name(g, &format!("{name}_acc"));
    let acc = g.add_node(kernel, &kins, vec![acc_name]);
    if g.infer_node(acc).is_err() {
        g.remove_node(acc);
        return None;
    }
    let cast_name = fresh_name(g, &format!("{name}_accf"));
    let cast = g.add_node(Op::Cast { to: DType::F32 }, &[Value { node: acc, output: 0 }], vec![cast_name]);
    let _ = g.infer_node(cast);
    let scale: Vec<f32> = s.iter().map(|&w| sx * w * alpha).collect();
    let sv = add_weight(g, &format!("{name}_scale"), channel_tensor(scale, trailing));
    let castv = Value { node: cast, output: 0 };
    match extra {
        None => {
            replace_node(g, id, Op::Binary(BinaryOp::Mul), &[castv, sv]);
        }
        Some((b, beta)) => {
            let mul_name = fresh_name(g, &format!("{name}_scaled"));
            let mul = g.add_node(Op::Binary(BinaryOp::Mul), &[castv, sv], vec![mul_name]);
            let _ = g.infer_node(mul);
            // A conv's bias [M] broadcasts along the channel axis: as [M, 1, …].
            let b = match (trailing, value_of(g, b)) {
                (0, _) if beta == 1.0 => b,
                (_, Some(t)) if t.dtype() == DType::F32 => {
                    let v: Vec<f32> = t.to_f32().iter().map(|x| x * beta).collect();
                    let t = if trailing > 0 { channel_tensor(v, trailing) } else { Tensor::new(t.shape().to_vec(), Data::F32(v)).ok()? };
                    add_weight(g, &format!("{name}_bias"), t)
                }
                (_, _) if beta == 1.0 && g.value_type(b).is_some_and(|t| t.dtype == DType::F32) => {
                    // A computed bias [M]: reshaped to [M, 1, …].
                    let m = g.value_type(b)?.dims().first()?.fixed()? as i64;
                    let mut shape = vec![DimSpec::Int(m)];
                    shape.extend(std::iter::repeat_n(DimSpec::Int(1), trailing));
                    let rn = fresh_name(g, &format!("{name}_bias"));
                    let r = g.add_node(Op::Reshape { shape }, &[b], vec![rn]);
                    let _ = g.infer_node(r);
                    Value { node: r, output: 0 }
                }
                _ => {
                    // Anything else: undo (the float layer stays).
                    g.remove_node(mul);
                    g.remove_node(cast);
                    g.remove_node(acc);
                    return None;
                }
            };
            replace_node(g, id, Op::Binary(BinaryOp::Add), &[Value { node: mul, output: 0 }, b]);
        }
    }
    Some(())
}

/// `quantize(dequantize(q))` with `q`'s parameters and dtype → `q`.
fn cancel_pair(g: &mut Graph, id: NodeId) -> Option<()> {
    let Op::Quantize(qa) = &g.node(id).op else { return None };
    let x = g.node_inputs(id)[0];
    let q = dq_source(g, x)?;
    let qt = g.value_type(q)?;
    let want = qa.quant(qt.rank()).ok()?;
    if qt.dtype != qa.dtype || qt.quant.as_ref() != Some(&want) {
        return None;
    }
    g.replace_uses(Value { node: id, output: 0 }, q);
    g.remove_node(id);
    Some(())
}

/// `quantize(S(dequantize(q)))` with `q`'s per-tensor parameters and `S` a
/// shape op (reshape, transpose, expand, slice), each link used once → `S(q)`:
/// shape ops move the integers as they are.
fn through_shape_op(g: &mut Graph, id: NodeId) -> Option<()> {
    let Op::Quantize(qa) = &g.node(id).op else { return None };
    let qa = qa.clone();
    let s = g.node_inputs(id)[0];
    let sop = g.node(s.node).op.clone();
    if !matches!(sop, Op::Reshape { .. } | Op::Transpose { .. } | Op::Expand { .. } | Op::Slice(_)) {
        return None;
    }
    only_user(g, s)?;
    let sins = g.node_inputs(s.node);
    if sins.len() != 1 {
        return None;
    }
    only_user(g, sins[0])?;
    let q = dq_source(g, sins[0])?;
    let qt = g.value_type(q)?;
    let want = qa.quant(qt.rank()).ok()?;
    if qt.dtype != qa.dtype || qt.quant.as_ref() != Some(&want) || qa.axis.is_some() {
        return None;
    }
    replace_node(g, id, sop, &[q]);
    Some(())
}

/// The single user of `v`, if it has exactly one and is no graph output.
fn only_user(g: &Graph, v: Value) -> Option<NodeId> {
    let u = g.users(v);
    (u.len() == 1 && !g.outputs().contains(&v)).then(|| u[0].0)
}

fn fuse_requant(g: &mut Graph, qid: NodeId) -> Option<()> {
    let Op::Quantize(qa) = g.node(qid).op.clone() else { return None };
    if qa.axis.is_some() {
        return None;
    }
    let (so, zo) = (qa.scale[0], qa.zero_point[0]);
    let mut u = g.node_inputs(qid)[0];
    let mut relu = false;
    if matches!(g.node(u.node).op, Op::Unary(UnaryOp::Relu)) {
        only_user(g, u)?;
        relu = true;
        u = g.node_inputs(u.node)[0];
    }
    if relu && zo != if qa.dtype == DType::U8 { 0 } else { -128 } {
        return None;
    }
    // [add(mul(cast(acc), S), b)] or [mul(cast(acc), S)]
    let mut bias: Option<Value> = None;
    if matches!(g.node(u.node).op, Op::Binary(BinaryOp::Add)) {
        only_user(g, u)?;
        let ins = g.node_inputs(u.node);
        bias = Some(ins[1]);
        u = ins[0];
    }
    if !matches!(g.node(u.node).op, Op::Binary(BinaryOp::Mul)) {
        return None;
    }
    only_user(g, u)?;
    let mins = g.node_inputs(u.node);
    let (castv, sv) = (mins[0], mins[1]);
    if !matches!(g.node(castv.node).op, Op::Cast { to: DType::F32 }) {
        return None;
    }
    only_user(g, castv)?;
    let accv = g.node_inputs(castv.node)[0];
    only_user(g, accv)?;
    let acc = accv.node;
    let conv: Option<Conv> = match &g.node(acc).op {
        Op::QConv(c, r) if r.dtype == DType::I32 => Some(c.clone()),
        Op::QMatMul(r) if r.dtype == DType::I32 => None,
        _ => return None,
    };
    let kins = g.node_inputs(acc);
    if kins.len() != 2 {
        return None;
    }
    // S must be the accumulators' scale, channel by channel.
    let (sx, _) = per_tensor(g.value_type(kins[0])?.quant.as_ref())?;
    let wty = g.value_type(kins[1])?;
    let (axis, n) = if conv.is_some() { (0, wty.dims()[0].fixed()?) } else { (1, wty.dims()[1].fixed()?) };
    let sw = scales(wty.quant.as_ref()?, axis, n as usize)?;
    let s = value_of(g, sv)?.to_f32();
    let expect: Vec<f32> = sw.iter().map(|w| sx * w).collect();
    let same = |a: &[f32]| a.len() == expect.len() && a.iter().zip(&expect).all(|(x, y)| (x - y).abs() <= 1e-6 * y.abs());
    let sshape_ok = g.value_type(sv)?.shape.numel() == Some(n);
    if !sshape_ok || !same(&s) {
        return None;
    }
    let mut new_ins = kins.clone();
    if let Some(b) = bias {
        let bt = value_of(g, b)?;
        if bt.dtype() != DType::F32 || bt.numel() != n as usize || g.value_type(b)?.shape.numel() != Some(n) {
            return None;
        }
        let mut bi = Vec::with_capacity(n as usize);
        for (x, sc) in bt.to_f32().iter().zip(&expect) {
            let q = (*x as f64 / *sc as f64).round();
            if !q.is_finite() || q.abs() > i32::MAX as f64 / 2.0 {
                return None;
            }
            bi.push(q as i32);
        }
        let name = g.node(acc).name().to_string();
        new_ins.push(add_weight(g, &format!("{name}_bias32"), Tensor::new(vec![n as usize], Data::I32(bi)).ok()?));
    }
    let r = Requant { dtype: qa.dtype, scale: Some(so), zero_point: zo };
    let op = match conv {
        Some(c) => Op::QConv(c, r),
        None => Op::QMatMul(r),
    };
    replace_node(g, qid, op, &new_ins);
    Some(())
}
