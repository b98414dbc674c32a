//! Recurrent ops: `lstm` and `gru` with ONNX semantics (layout 0, default
//! activations; LSTM peepholes as an optional seventh input); codegen expands them
//! into loops over time.

use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Forward,
    Reverse,
    Bidirectional,
}

const DIRECTIONS: &[(&str, Direction)] =
    &[("forward", Direction::Forward), ("reverse", Direction::Reverse), ("bidirectional", Direction::Bidirectional)];

impl Direction {
    pub fn name(&self) -> &'static str {
        DIRECTIONS.iter().find(|(_, d)| d == self).map(|(n, _)| *n).expect("listed")
    }
    /// Number of directions run (D in the ONNX shapes).
    pub fn count(&self) -> usize {
        if *self == Direction::Bidirectional { 2 } else { 1 }
    }
}

/// Attributes of an LSTM or GRU.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rnn {
    pub hidden: usize,
    pub direction: Direction,
    /// GRU only.
    pub linear_before_reset: bool,
}

impl Rnn {
    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![("hidden", AttrValue::Int(self.hidden as i64))];
        if self.direction != Direction::Forward {
            v.push(("direction", AttrValue::ident(self.direction.name())));
        }
        if self.linear_before_reset {
            v.push(("linear_before_reset", AttrValue::bool(true)));
        }
        v
    }

    pub(crate) fn infer(&self, ins: &[&TensorType], lstm: bool) -> Result<Vec<TensorType>, String> {
        let name = if lstm { "lstm" } else { "gru" };
        let gates = if lstm { 4 } else { 3 } as u64;
        let x = ins[0];
        want_float(name, "input", x)?;
        if x.rank() != 3 {
            return Err(format!("{name} expects input [T, N, I], found {x}"));
        }
        let (t, n, i) = (&x.dims()[0], &x.dims()[1], &x.dims()[2]);
        let d = Dim::Fixed(self.direction.count() as u64);
        let h = self.hidden as u64;
        let expect = |what: &str, k: usize, shape: Vec<Dim>| -> Result<(), String> {
            let t = ins[k];
            if t.dtype != x.dtype || t.shape != Shape(shape.clone()) {
                return Err(format!("{name} expects {what} {}{}, found {t}", x.dtype, Shape(shape)));
            }
            Ok(())
        };
        expect("w", 1, vec![d.clone(), Dim::Fixed(gates * h), i.clone()])?;
        expect("r", 2, vec![d.clone(), Dim::Fixed(gates * h), Dim::Fixed(h)])?;
        expect("b", 3, vec![d.clone(), Dim::Fixed(2 * gates * h)])?;
        let state = vec![d.clone(), n.clone(), Dim::Fixed(h)];
        for k in 4..ins.len().min(6) {
            expect(if k == 4 { "h0" } else { "c0" }, k, state.clone())?;
        }
        if ins.len() > 6 {
            if !lstm {
                return Err(format!("{name} takes at most 5 inputs, found {}", ins.len()));
            }
            expect("p", 6, vec![d.clone(), Dim::Fixed(3 * h)])?;
        }
        let y = TensorType::new(x.dtype, Shape(vec![t.clone(), d, n.clone(), Dim::Fixed(h)]));
        let s = TensorType::new(x.dtype, Shape(state));
        Ok(if lstm { vec![y, s.clone(), s] } else { vec![y, s] })
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    let lstm = match name {
        "lstm" => true,
        "gru" => false,
        _ => return None,
    };
    let has_hidden = a.has("hidden");
    let hidden = a.int("hidden", None);
    if has_hidden && hidden < 1 {
        a.error(format!("{name} expects `hidden` ≥ 1, found {hidden}"));
    }
    let hidden = hidden.max(1) as usize;
    let r = Rnn {
        hidden,
        direction: a.choice("direction", DIRECTIONS, Some(Direction::Forward)).unwrap_or(Direction::Forward),
        linear_before_reset: if lstm { false } else { a.bool("linear_before_reset", false) },
    };
    Some(if lstm { Op::Lstm(r) } else { Op::Gru(r) })
}
