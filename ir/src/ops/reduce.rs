//! Reductions over axes (sum, mean, max, min, prod, l2) and arg-reductions.

use super::Op;
use crate::attr::{AttrReader, AttrValue};
use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L2,
}

const REDUCE: &[(&str, ReduceKind)] = &[
    ("reduce_sum", ReduceKind::Sum),
    ("reduce_mean", ReduceKind::Mean),
    ("reduce_max", ReduceKind::Max),
    ("reduce_min", ReduceKind::Min),
    ("reduce_prod", ReduceKind::Prod),
    ("reduce_l2", ReduceKind::L2),
];

impl ReduceKind {
    pub fn name(&self) -> &'static str {
        REDUCE.iter().find(|(_, k)| k == self).map(|(n, _)| *n).expect("listed")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArgKind {
    Max,
    Min,
}

impl ArgKind {
    pub fn name(&self) -> &'static str {
        match self {
            ArgKind::Max => "argmax",
            ArgKind::Min => "argmin",
        }
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    if let Some((_, kind)) = REDUCE.iter().find(|(n, _)| *n == name) {
        return Some(Op::Reduce { kind: *kind, axes: a.ints("axes", Some(vec![])), keepdims: a.bool("keepdims", true) });
    }
    let kind = match name {
        "argmax" => ArgKind::Max,
        "argmin" => ArgKind::Min,
        _ => return None,
    };
    Some(Op::ArgReduce { kind, axis: a.int("axis", Some(0)), keepdims: a.bool("keepdims", true) })
}

pub(super) fn attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    let mut v = vec![];
    match op {
        Op::Reduce { axes, keepdims, .. } => {
            if !axes.is_empty() {
                v.push(("axes", AttrValue::ints(axes)));
            }
            if !keepdims {
                v.push(("keepdims", AttrValue::bool(false)));
            }
        }
        Op::ArgReduce { axis, keepdims, .. } => {
            if *axis != 0 {
                v.push(("axis", AttrValue::Int(*axis)));
            }
            if !keepdims {
                v.push(("keepdims", AttrValue::bool(false)));
            }
        }
        _ => {}
    }
    v
}

/// Resolves reduction axes (empty = all), sorted and deduplicated.
pub fn reduce_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut out = Vec::new();
    for &a in axes {
        let n = crate::shape::normalize_axis(a, rank).ok_or_else(|| format!("axis {a} is out of range for rank {rank}"))?;
        if out.contains(&n) {
            return Err(format!("axis {a} is given twice"));
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

fn reduced(x: &TensorType, axes: &[usize], keepdims: bool) -> Shape {
    Shape(
        x.dims()
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                if axes.contains(&i) {
                    keepdims.then_some(Dim::Fixed(1))
                } else {
                    Some(d.clone())
                }
            })
            .collect(),
    )
}

pub(super) fn infer(op: &Op, x: &TensorType) -> Result<TensorType, String> {
    let name = op.name();
    if x.quant.is_some() || x.dtype == DType::Bool {
        return Err(format!("{name} does not take {x}"));
    }
    match op {
        Op::Reduce { kind, axes, keepdims } => {
            if matches!(kind, ReduceKind::Mean | ReduceKind::L2) && !x.dtype.is_float() {
                return Err(format!("{name} expects a float input, found {x}"));
            }
            let ax = reduce_axes(axes, x.rank()).map_err(|e| format!("{name}: {e}"))?;
            Ok(TensorType::new(x.dtype, reduced(x, &ax, *keepdims)))
        }
        Op::ArgReduce { axis, keepdims, .. } => {
            let a = x.shape.axis(*axis).ok_or_else(|| format!("{name} axis {axis} is out of range for {x}"))?;
            if x.dims()[a] == Dim::Fixed(0) {
                return Err(format!("{name} over an empty axis"));
            }
            Ok(TensorType::new(DType::I64, reduced(x, &[a], *keepdims)))
        }
        _ => unreachable!("reduce::infer on {name}"),
    }
}
