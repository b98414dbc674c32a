//! Post-training quantization as a graph edit: the layers that can run in int8
//! ([`layers`]) and the insertion of quantize/dequantize pairs around them
//! ([`insert_qdq`]), in the QDQ form ONNX Runtime's `quantize_static` writes.
//! [`super::FoldQdq`] then turns each pair-wrapped layer into an integer kernel.
//!
//! A layer is a `conv1d/2d/3d`, a `matmul` with a rank-2 constant right operand, or
//! a `gemm` (not `trans_a`) with a constant `b`, all in f32. Its activation is
//! quantized per tensor with calibrated parameters (one quantize per tensor, shared
//! by the layers reading it); its weights per output channel (or per tensor),
//! symmetric in i8 over ±127 (or ±63, [`WeightScheme::reduce_range`]) with zero
//! point 0.

use crate::classic::{add_weight, fresh_name, known_value, replace_node};
use smelt_ir::{DType, Data, Graph, NodeId, Op, Quant, Tensor, Value, ops::QuantizeAttrs};
use std::collections::HashMap;

/// A layer that can be quantized.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub node: NodeId,
    /// The node's (first output's) name.
    pub name: String,
    /// `conv2d`, `matmul`, `gemm`, …
    pub op: &'static str,
    /// The activation input (quantized per tensor).
    pub act: Value,
    /// The constant weight input.
    pub weight: Value,
    /// Multiply-accumulates per run (for the report; 0 when shapes are symbolic).
    pub macs: u64,
}

/// The quantizable layers of `g`, in topological order.
pub fn layers(g: &Graph) -> Vec<Layer> {
    let Some(order) = g.topo_order() else { return vec![] };
    let mut out = vec![];
    for id in order {
        let n = g.node(id);
        let ins = g.node_inputs(id);
        let (Some(&act), Some(&weight)) = (ins.first(), ins.get(1)) else { continue };
        let ok = match &n.op {
            Op::Conv(_) => true,
            Op::MatMul => g.value_type(weight).is_some_and(|t| t.rank() == 2) && g.value_type(act).is_some_and(|t| t.rank() >= 2),
            Op::Gemm(gm) => !gm.trans_a,
            _ => false,
        };
        let float = |v: Value| g.value_type(v).is_some_and(|t| t.dtype == DType::F32 && t.quant.is_none());
        if !ok || !float(act) || !float(weight) || known_value(g, weight).is_none() {
            continue;
        }
        let out_numel = g.value_type(Value { node: id, output: 0 }).and_then(|t| t.shape.numel()).unwrap_or(0);
        let wt = g.value_type(weight).expect("typed");
        let k = match &n.op {
            Op::Conv(_) => wt.shape.numel().unwrap_or(0) / wt.dims()[0].fixed().unwrap_or(1).max(1),
            Op::Gemm(gm) if gm.trans_b => wt.dims()[1].fixed().unwrap_or(0),
            _ => wt.dims()[0].fixed().unwrap_or(0),
        };
        out.push(Layer { node: id, name: n.name().to_string(), op: n.op.name(), act, weight, macs: out_numel * k });
    }
    out
}

/// Calibrated quantization parameters of one activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActParams {
    pub dtype: DType,
    pub scale: f32,
    pub zero_point: i32,
}

/// How weights are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightScheme {
    /// One scale per output channel (else one per tensor).
    pub per_channel: bool,
    /// 7-bit weights (±63, ONNX Runtime's `reduce_range`): a little less
    /// precise, but the integer GEMM of AVX2 hosts without VNNI multiplies them
    /// as u8×s8 quads (`pmaddubsw`) instead of i16 pairs.
    pub reduce_range: bool,
}

impl WeightScheme {
    /// The largest quantized magnitude: 127, or 63 with `reduce_range`.
    pub fn levels(&self) -> f32 {
        if self.reduce_range { 63.0 } else { 127.0 }
    }
}

/// The axis of a layer's weight that holds its output channels.
fn channel_axis(op: &Op) -> usize {
    match op {
        Op::Conv(_) => 0,
        Op::Gemm(gm) if gm.trans_b => 0,
        _ => 1,
    }
}

/// Symmetric i8 quantization of `w` per index of `axis` (or per tensor), over
/// ±`levels` (127, or 63 for 7-bit weights).
pub fn quantize_weight(w: &Tensor, axis: usize, per_channel: bool, levels: f32) -> (Tensor, Quant) {
    let v = w.to_f32();
    let shape = w.shape();
    let (c, inner) = if per_channel {
        (shape[axis], shape[axis + 1..].iter().product::<usize>())
    } else {
        (1, v.len().max(1))
    };
    let chan = |i: usize| if per_channel { (i / inner) % c } else { 0 };
    let mut m = vec![0f32; c];
    for (i, &x) in v.iter().enumerate() {
        if x.is_finite() {
            m[chan(i)] = m[chan(i)].max(x.abs());
        }
    }
    let scale: Vec<f32> = m.iter().map(|&m| if m > 0.0 { m / levels } else { 1.0 }).collect();
    let q: Vec<i8> = v.iter().enumerate().map(|(i, &x)| (x / scale[chan(i)]).round_ties_even().clamp(-levels, levels) as i8).collect();
    let t = Tensor::new(shape.to_vec(), Data::I8(q)).expect("same shape");
    let quant = if per_channel {
        Quant::PerAxis { axis, zero_point: vec![0; c], scale }
    } else {
        Quant::PerTensor { scale: scale[0], zero_point: 0 }
    };
    (t, quant)
}

/// Wraps each layer's activation in `quantize` → `dequantize` with its
/// parameters in `act` (layers without an entry are left alone) and replaces its
/// weight by the dequantization of an i8 param. Returns the layers changed.
pub fn insert_qdq(g: &mut Graph, layers: &[Layer], act: &HashMap<Value, ActParams>, w: WeightScheme) -> Vec<NodeId> {
    let mut dq_of: HashMap<Value, Value> = HashMap::new();
    let mut done = vec![];
    for l in layers {
        let Some(p) = act.get(&l.act) else { continue };
        if !g.contains(l.node) {
            continue;
        }
        let Some(wt) = known_value(g, l.weight) else { continue };
        let dx = match dq_of.get(&l.act) {
            Some(&v) => v,
            None => {
                let base = g.value_name(l.act).to_string();
                let q = QuantizeAttrs { dtype: p.dtype, scale: vec![p.scale], zero_point: vec![p.zero_point], axis: None };
                let qn = fresh_name(g, &format!("{base}_q"));
                let q = g.add_node(Op::Quantize(q), &[l.act], vec![qn]);
                let _ = g.infer_node(q);
                let dn = fresh_name(g, &format!("{base}_dq"));
                let d = g.add_node(Op::Dequantize, &[Value { node: q, output: 0 }], vec![dn]);
                let _ = g.infer_node(d);
                let v = Value { node: d, output: 0 };
                dq_of.insert(l.act, v);
                v
            }
        };
        let op = g.node(l.node).op.clone();
        let (wq, quant) = quantize_weight(&wt, channel_axis(&op), w.per_channel, w.levels());
        let wv = add_weight(g, &format!("{}_wq", l.name), wq);
        let ty = g.value_type(wv).expect("typed").clone().with_quant(quant);
        g.node_mut(wv.node).types = vec![ty];
        let dn = fresh_name(g, &format!("{}_wdq", l.name));
        let dw = g.add_node(Op::Dequantize, &[wv], vec![dn]);
        let _ = g.infer_node(dw);
        let mut ins = g.node_inputs(l.node);
        ins[0] = dx;
        ins[1] = Value { node: dw, output: 0 };
        done.push(replace_node(g, l.node, op, &ins));
    }
    done
}
