//! Routing and mixture of experts: `topk`, `moe_dispatch`, `moe_combine` and the
//! whole-layer `moe`.

use super::elementwise::UnaryOp;
use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopK {
    pub k: usize,
    pub axis: i64,
    pub largest: bool,
    pub sorted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moe {
    pub k: usize,
    pub activation: UnaryOp,
    /// 0: no capacity limit.
    pub capacity_factor: f32,
}

impl Moe {
    /// Slots per expert for `tokens` tokens and `experts` experts (`None`: unlimited).
    pub fn capacity(&self, tokens: usize, experts: usize) -> Option<usize> {
        (self.capacity_factor > 0.0)
            .then(|| ((tokens * self.k) as f64 * self.capacity_factor as f64 / experts as f64).ceil() as usize)
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    Some(match name {
        "topk" => Op::TopK(TopK {
            k: a.usize("k", None),
            axis: a.int("axis", Some(-1)),
            largest: a.bool("largest", true),
            sorted: a.bool("sorted", true),
        }),
        "moe_dispatch" => Op::MoeDispatch { experts: a.usize("experts", None), capacity: a.usize("capacity", None) },
        "moe_combine" => Op::MoeCombine { capacity: a.usize("capacity", None) },
        "moe" => {
            let k = a.usize("k", None);
            let act_name = a.choice(
                "activation",
                &[("relu", "relu"), ("gelu", "gelu"), ("gelu_tanh", "gelu_tanh"), ("silu", "silu"), ("identity", "identity")],
                Some("relu"),
            ).unwrap_or("relu");
            let activation = UnaryOp::from_name(act_name, &[]).unwrap_or(UnaryOp::Relu);
            let capacity_factor = a.float("capacity_factor", Some(0.0));
            if capacity_factor < 0.0 || !capacity_factor.is_finite() {
                a.error(format!("moe capacity_factor must be ≥ 0, found {capacity_factor}"));
            }
            Op::Moe(Moe { k, activation, capacity_factor })
        }
        _ => return None,
    })
}

pub(super) fn attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    let mut v = vec![];
    match op {
        Op::TopK(t) => {
            v.push(("k", AttrValue::Int(t.k as i64)));
            if t.axis != -1 {
                v.push(("axis", AttrValue::Int(t.axis)));
            }
            if !t.largest {
                v.push(("largest", AttrValue::bool(false)));
            }
            if !t.sorted {
                v.push(("sorted", AttrValue::bool(false)));
            }
        }
        Op::MoeDispatch { experts, capacity } => {
            v.push(("experts", AttrValue::Int(*experts as i64)));
            v.push(("capacity", AttrValue::Int(*capacity as i64)));
        }
        Op::MoeCombine { capacity } => v.push(("capacity", AttrValue::Int(*capacity as i64))),
        Op::Moe(m) => {
            v.push(("k", AttrValue::Int(m.k as i64)));
            if m.activation != UnaryOp::Relu {
                v.push(("activation", AttrValue::ident(m.activation.name())));
            }
            if m.capacity_factor != 0.0 {
                v.push(("capacity_factor", AttrValue::Float(m.capacity_factor)));
            }
        }
        _ => {}
    }
    v
}

fn want_idx(op: &str, idx: &TensorType, t: &Dim) -> Result<Dim, String> {
    if idx.dtype != DType::I64 || idx.rank() != 2 || &idx.dims()[0] != t {
        return Err(format!("{op} expects indices i64[{t}, k], found {idx}"));
    }
    Ok(idx.dims()[1].clone())
}

pub(super) fn infer(op: &Op, ins: &[&TensorType]) -> Result<Vec<TensorType>, String> {
    let x = ins[0];
    match op {
        Op::TopK(t) => {
            if x.quant.is_some() || x.dtype == DType::Bool {
                return Err(format!("topk does not take {x}"));
            }
            let a = x.shape.axis(t.axis).ok_or_else(|| format!("topk axis {} is out of range for {x}", t.axis))?;
            match x.dims()[a] {
                Dim::Fixed(n) if (t.k as u64) <= n && t.k > 0 => {}
                ref d => return Err(format!("topk k = {} must be in 1..={d} (axis {a} of {x})", t.k)),
            }
            let mut d = x.dims().to_vec();
            d[a] = Dim::Fixed(t.k as u64);
            Ok(vec![TensorType::new(x.dtype, Shape(d.clone())), TensorType::new(DType::I64, Shape(d))])
        }
        Op::MoeDispatch { experts, capacity } => {
            want_float("moe_dispatch", "input", x)?;
            if x.rank() != 2 {
                return Err(format!("moe_dispatch expects x [T, D], found {x}"));
            }
            want_idx("moe_dispatch", ins[1], &x.dims()[0])?;
            if *experts == 0 {
                return Err("moe_dispatch needs experts ≥ 1".into());
            }
            Ok(vec![TensorType::new(
                x.dtype,
                Shape(vec![Dim::Fixed(*experts as u64), Dim::Fixed(*capacity as u64), x.dims()[1].clone()]),
            )])
        }
        Op::MoeCombine { capacity } => {
            want_float("moe_combine", "input", x)?;
            if x.rank() != 3 || x.dims()[1] != Dim::Fixed(*capacity as u64) {
                return Err(format!("moe_combine expects y [E, {capacity}, D], found {x}"));
            }
            let (idx, w) = (ins[1], ins[2]);
            if idx.rank() != 2 {
                return Err(format!("moe_combine expects indices i64[T, k], found {idx}"));
            }
            let t = idx.dims()[0].clone();
            let k = want_idx("moe_combine", idx, &t)?;
            if w.dtype != x.dtype || w.shape != Shape(vec![t.clone(), k.clone()]) {
                return Err(format!("moe_combine expects weights {}[{t}, {k}], found {w}", x.dtype));
            }
            Ok(vec![TensorType::new(x.dtype, Shape(vec![t, x.dims()[2].clone()]))])
        }
        Op::Moe(m) => {
            want_float("moe", "input", x)?;
            if x.rank() != 2 {
                return Err(format!("moe expects x [T, D], found {x}"));
            }
            let (gate, w1, w2) = (ins[1], ins[2], ins[3]);
            let d = &x.dims()[1];
            if gate.rank() != 2 || &gate.dims()[0] != d || gate.dtype != x.dtype {
                return Err(format!("moe expects gate {}[{d}, E], found {gate}", x.dtype));
            }
            let e = &gate.dims()[1];
            match e.fixed() {
                Some(n) if m.k >= 1 && (m.k as u64) <= n => {}
                _ => return Err(format!("moe k = {} must be in 1..={e}", m.k)),
            }
            if w1.rank() != 3 || &w1.dims()[0] != e || &w1.dims()[1] != d || w1.dtype != x.dtype {
                return Err(format!("moe expects w1 {}[{e}, {d}, H], found {w1}", x.dtype));
            }
            let h = &w1.dims()[2];
            if w2.shape != Shape(vec![e.clone(), h.clone(), d.clone()]) || w2.dtype != x.dtype {
                return Err(format!("moe expects w2 {}[{e}, {h}, {d}], found {w2}", x.dtype));
            }
            Ok(vec![x.with_dtype(x.dtype)])
        }
        _ => unreachable!("routing::infer on {}", op.name()),
    }
}
