//! Dynamic post-training quantization as a graph edit ([`insert_dynamic`]): a
//! `matmul` or `gemm` with a constant weight becomes an integer matmul whose
//! activation is quantized with parameters computed from the data at run time,
//! as ONNX Runtime's `quantize_dynamic` (`DynamicQuantizeLinear` →
//! `MatMulInteger` → rescale) does. No calibration is needed.
//!
//! For an activation `x` (f32, any rank ≥ 2) and a weight `W` [K, N]:
//!
//! ```text
//! lo = min(min(x), 0)    hi = max(max(x), 0)          one reduction each
//! s  = max(hi − lo, ε) / 255                          asymmetric (u8: q ∈ [0, 255])
//! zp = clip(round(qmin − lo / s), qmin, qmin + 255)
//! xq = quantize(x · (1/s) + zp, scale 1, zero point 0)   the integers themselves
//! y  = (f32(qmatmul(xq, Wq)) − zp · colsum(Wq)) · (s · sw)
//! ```
//!
//! Symmetric activations use `s = max(|lo|, |hi|) / 127` and the dtype's middle
//! as zero point (128 for u8, 0 for i8). `Wq` is the weight quantized to i8,
//! symmetric, per output column (or per tensor) with scales `sw`; `colsum` is the
//! sum of each of its columns, so the activation's zero point costs one vector
//! subtraction rather than a second GEMM. All of these are ordinary ops, so the
//! result runs on every backend and the interpreter is its oracle. One chain of
//! parameters is shared by the layers that read the same activation.

use super::insert::{Layer, quantize_weight};
use crate::classic::{add_weight, fresh_name, known_value, replace_node};
use smelt_ir::ops::{QuantizeAttrs, ReduceKind, Requant};
use smelt_ir::{BinaryOp, DType, Data, Graph, NodeId, Op, Quant, Tensor, UnaryOp, Value};
use std::collections::HashMap;

/// How activations and weights are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicScheme {
    /// u8 (default, the VNNI-friendly form) or i8.
    pub activations: DType,
    /// Symmetric activation ranges (zero point at the dtype's middle).
    pub symmetric: bool,
    /// Weight scales per output column (else per tensor).
    pub per_channel: bool,
    /// 7-bit weights (see [`super::insert::WeightScheme::reduce_range`]).
    pub reduce_range: bool,
}

/// Whether [`insert_dynamic`] can rewrite `l`: matmuls and gemms (not
/// `trans_a`); convolutions are left to static quantization.
pub fn supports(g: &Graph, l: &Layer) -> bool {
    match &g.node(l.node).op {
        Op::MatMul => true,
        Op::Gemm(gm) => !gm.trans_a,
        _ => false,
    }
}

/// The run-time quantization of one activation.
#[derive(Clone, Copy)]
struct DynAct {
    /// The integers, typed as quantized with scale 1 and zero point 0.
    q: Value,
    /// The scale (f32 scalar).
    scale: Value,
    /// The zero point (f32 scalar), absent when it is 0.
    zero_point: Option<Value>,
}

fn node(g: &mut Graph, op: Op, ins: &[Value], name: &str) -> Value {
    let n = fresh_name(g, name);
    let id = g.add_node(op, ins, vec![n]);
    // Inputs are typed; a failure is caught by the verifier after the pass.
    let _ = g.infer_node(id);
    Value { node: id, output: 0 }
}

fn scalar(g: &mut Graph, name: &str, x: f32) -> Value {
    let n = fresh_name(g, name);
    g.add_const(n, Tensor::scalar_f32(x))
}

fn vector(g: &mut Graph, name: &str, v: Vec<f32>) -> Value {
    let t = Tensor::new(vec![v.len()], Data::F32(v)).expect("1-d");
    let n = fresh_name(g, name);
    g.add_const(n, t)
}

fn bin(g: &mut Graph, op: BinaryOp, a: Value, b: Value, name: &str) -> Value {
    node(g, Op::Binary(op), &[a, b], name)
}

fn quantize_act(g: &mut Graph, x: Value, s: DynamicScheme) -> DynAct {
    let base = g.value_name(x).to_string();
    let nm = |suffix: &str| format!("{base}_{suffix}");
    let all = |kind| Op::Reduce { kind, axes: vec![], keepdims: false };
    let zero = scalar(g, &nm("zero"), 0.0);
    let hi = node(g, all(ReduceKind::Max), &[x], &nm("max"));
    let hi = bin(g, BinaryOp::Max, hi, zero, &nm("hi"));
    let lo = node(g, all(ReduceKind::Min), &[x], &nm("min"));
    let lo = bin(g, BinaryOp::Min, lo, zero, &nm("lo"));
    let qmin = if s.activations == DType::U8 { 0.0 } else { -128.0 };
    let eps = scalar(g, &nm("eps"), 1e-30);
    let (scale, zero_point) = if s.symmetric {
        let neg = node(g, Op::Unary(UnaryOp::Neg), &[lo], &nm("neg_lo"));
        let m = bin(g, BinaryOp::Max, hi, neg, &nm("absmax"));
        let m = bin(g, BinaryOp::Max, m, eps, &nm("absmax_eps"));
        let levels = scalar(g, &nm("levels"), 127.0);
        let scale = bin(g, BinaryOp::Div, m, levels, &nm("scale"));
        let zp = (s.activations == DType::U8).then(|| scalar(g, &nm("zp"), 128.0));
        (scale, zp)
    } else {
        let range = bin(g, BinaryOp::Sub, hi, lo, &nm("range"));
        let range = bin(g, BinaryOp::Max, range, eps, &nm("range_eps"));
        let levels = scalar(g, &nm("levels"), 255.0);
        let scale = bin(g, BinaryOp::Div, range, levels, &nm("scale"));
        let t = bin(g, BinaryOp::Div, lo, scale, &nm("lo_scaled"));
        let qm = scalar(g, &nm("qmin"), qmin);
        let t = bin(g, BinaryOp::Sub, qm, t, &nm("zp_f"));
        let t = node(g, Op::Unary(UnaryOp::Round), &[t], &nm("zp_r"));
        let zp = node(g, Op::Unary(UnaryOp::Clip { min: qmin, max: qmin + 255.0 }), &[t], &nm("zp"));
        (scale, Some(zp))
    };
    let one = scalar(g, &nm("one"), 1.0);
    let inv = bin(g, BinaryOp::Div, one, scale, &nm("inv_scale"));
    let mut xs = bin(g, BinaryOp::Mul, x, inv, &nm("scaled"));
    if let Some(zp) = zero_point {
        xs = bin(g, BinaryOp::Add, xs, zp, &nm("shifted"));
    }
    let attrs = QuantizeAttrs { dtype: s.activations, scale: vec![1.0], zero_point: vec![0], axis: None };
    let q = node(g, Op::Quantize(attrs), &[xs], &nm("dynq"));
    DynAct { q, scale, zero_point }
}

/// Rewrites each supported layer of `layers` (see the module docs). Returns the
/// nodes that now end each rewritten layer.
pub fn insert_dynamic(g: &mut Graph, layers: &[Layer], s: DynamicScheme) -> Vec<NodeId> {
    let mut acts: HashMap<Value, DynAct> = HashMap::new();
    let mut done = vec![];
    for l in layers {
        if !g.contains(l.node) || !supports(g, l) {
            continue;
        }
        let Some(w) = known_value(g, l.weight) else { continue };
        let op = g.node(l.node).op.clone();
        let gemm = match &op {
            Op::Gemm(gm) => Some(gm.clone()),
            _ => None,
        };
        // The weight as [K, N].
        let w = if gemm.as_ref().is_some_and(|gm| gm.trans_b) {
            let (n, k) = (w.shape()[0], w.shape()[1]);
            let v = w.to_f32();
            let t: Vec<f32> = (0..k * n).map(|i| v[(i % n) * k + i / n]).collect();
            Tensor::new(vec![k, n], Data::F32(t)).expect("k×n")
        } else {
            (*w).clone()
        };
        let (k, n) = (w.shape()[0], w.shape()[1]);
        let levels = if s.reduce_range { 63.0 } else { 127.0 };
        let (wq, quant) = quantize_weight(&w, 1, s.per_channel, levels);
        let alpha = gemm.as_ref().map(|gm| gm.alpha).unwrap_or(1.0);
        let sw: Vec<f32> = match &quant {
            Quant::PerAxis { scale, .. } => scale.iter().map(|x| x * alpha).collect(),
            Quant::PerTensor { scale, .. } => vec![scale * alpha],
        };
        let colsum: Vec<f32> = match wq.data() {
            Data::I8(q) => (0..n).map(|j| (0..k).map(|i| q[i * n + j] as f32).sum()).collect(),
            _ => continue,
        };
        let a = match acts.get(&l.act) {
            Some(a) => *a,
            None => {
                let a = quantize_act(g, l.act, s);
                acts.insert(l.act, a);
                a
            }
        };
        let name = l.name.clone();
        let wv = add_weight(g, &format!("{name}_wq"), wq);
        let ty = g.value_type(wv).expect("typed").clone().with_quant(quant);
        g.node_mut(wv.node).types = vec![ty];
        let acc = node(g, Op::QMatMul(Requant::i32()), &[a.q, wv], &format!("{name}_acc"));
        let mut y = node(g, Op::Cast { to: DType::F32 }, &[acc], &format!("{name}_accf"));
        if let Some(zp) = a.zero_point {
            let cs = vector(g, &format!("{name}_colsum"), colsum);
            let corr = bin(g, BinaryOp::Mul, zp, cs, &format!("{name}_zp_colsum"));
            y = bin(g, BinaryOp::Sub, y, corr, &format!("{name}_centered"));
        }
        let swv = vector(g, &format!("{name}_wscale"), sw);
        let scale = bin(g, BinaryOp::Mul, a.scale, swv, &format!("{name}_scale"));
        let bias = match (gemm, g.node_inputs(l.node).get(2).copied()) {
            (Some(gm), Some(c)) if gm.beta != 0.0 => Some(if gm.beta == 1.0 {
                c
            } else {
                let b = scalar(g, &format!("{name}_beta"), gm.beta);
                bin(g, BinaryOp::Mul, c, b, &format!("{name}_bias"))
            }),
            _ => None,
        };
        let last = match bias {
            Some(c) => {
                let y = bin(g, BinaryOp::Mul, y, scale, &format!("{name}_rescaled"));
                replace_node(g, l.node, Op::Binary(BinaryOp::Add), &[y, c])
            }
            None => replace_node(g, l.node, Op::Binary(BinaryOp::Mul), &[y, scale]),
        };
        done.push(last);
    }
    done
}
