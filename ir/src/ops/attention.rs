//! Multi-head scaled dot-product attention as one op (the projections stay separate
//! matmuls, which the optimizer may fuse).

use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attention {
    pub heads: usize,
    /// `None`: 1/√(head size).
    pub scale: Option<f32>,
    pub causal: bool,
}

impl Attention {
    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![];
        if self.heads != 1 {
            v.push(("heads", AttrValue::Int(self.heads as i64)));
        }
        if let Some(s) = self.scale {
            v.push(("scale", AttrValue::Float(s)));
        }
        if self.causal {
            v.push(("causal", AttrValue::bool(true)));
        }
        v
    }

    pub(crate) fn infer(&self, ins: &[&TensorType]) -> Result<TensorType, String> {
        let (q, k, v) = (ins[0], ins[1], ins[2]);
        for (what, t) in [("q", q), ("k", k), ("v", v)] {
            want_float("attention", what, t)?;
            if t.rank() != 3 || t.dtype != q.dtype {
                return Err(format!("attention expects {what} {}[B, T, E], found {t}", q.dtype));
            }
        }
        let (b, tq, e) = (&q.dims()[0], &q.dims()[1], &q.dims()[2]);
        if &k.dims()[0] != b || &v.dims()[0] != b {
            return Err(format!("attention: batch dims of q {q}, k {k} and v {v} must agree"));
        }
        if &k.dims()[2] != e {
            return Err(format!("attention: q {q} and k {k} must have one embedding size"));
        }
        if k.dims()[1] != v.dims()[1] {
            return Err(format!("attention: k {k} and v {v} must have one length"));
        }
        let h = self.heads as u64;
        for (what, d) in [("q/k", e), ("v", &v.dims()[2])] {
            match d.fixed() {
                Some(n) if n % h == 0 => {}
                _ => return Err(format!("attention: {what} embedding size {d} does not split into {h} heads")),
            }
        }
        if let Some(m) = ins.get(3) {
            let full = Shape(vec![b.clone(), Dim::Fixed(h), tq.clone(), k.dims()[1].clone()]);
            if m.dtype != q.dtype || full.broadcast(&m.shape).as_ref() != Some(&full) {
                return Err(format!("attention expects a mask that broadcasts to {}{full}, found {m}", q.dtype));
            }
        }
        Ok(TensorType::new(q.dtype, Shape(vec![b.clone(), tq.clone(), v.dims()[2].clone()])))
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    if name != "attention" {
        return None;
    }
    let heads = a.usize("heads", Some(1));
    if heads == 0 {
        a.error("attention expects `heads` ≥ 1");
    }
    Some(Op::Attention(Attention { heads: heads.max(1), scale: a.opt_float("scale"), causal: a.bool("causal", false) }))
}
