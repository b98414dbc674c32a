//! Shape ops: reshape, transpose, concat, split, slice, gather, pad, expand.

use super::Op;
use crate::attr::{AttrReader, AttrValue, DimSpec};
use crate::dtype::DType;
use crate::shape::{Dim, Shape, normalize_axis};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
    /// Circular: position `i` of the padded dim reads `(i − begin) mod n`.
    Wrap,
}

const PAD_MODES: &[(&str, PadMode)] = &[
    ("constant", PadMode::Constant),
    ("reflect", PadMode::Reflect),
    ("edge", PadMode::Edge),
    ("wrap", PadMode::Wrap),
];

impl PadMode {
    pub fn name(&self) -> &'static str {
        PAD_MODES.iter().find(|(_, m)| m == self).map(|(n, _)| *n).expect("listed")
    }
}

/// ONNX Slice with constant bounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slice {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    /// `None`: the first `starts.len()` axes.
    pub axes: Option<Vec<i64>>,
    /// `None`: all 1.
    pub steps: Option<Vec<i64>>,
}

impl Slice {
    /// The (start, step, count) of each sliced axis for an input of `dims`, resolved
    /// as ONNX does (negative from the end, clamped). Axes not sliced are absent.
    pub fn resolve(&self, dims: &[u64]) -> Result<Vec<(usize, i64, i64, u64)>, String> {
        let rank = dims.len();
        let axes: Vec<i64> = self.axes.clone().unwrap_or_else(|| (0..self.starts.len() as i64).collect());
        let steps = self.steps.clone().unwrap_or_else(|| vec![1; self.starts.len()]);
        let mut out: Vec<(usize, i64, i64, u64)> = Vec::new();
        for (i, &a) in axes.iter().enumerate() {
            let ax = normalize_axis(a, rank).ok_or_else(|| format!("slice axis {a} is out of range for rank {rank}"))?;
            if out.iter().any(|o| o.0 == ax) {
                return Err(format!("slice axis {a} is given twice"));
            }
            // i128: the bounds may be anything an i64 holds.
            let d = dims[ax] as i128;
            let step = steps[i];
            let st = step as i128;
            let (mut s, mut e) = (self.starts[i] as i128, self.ends[i] as i128);
            if s < 0 {
                s += d;
            }
            if e < 0 {
                e += d;
            }
            let count = if st > 0 {
                s = s.clamp(0, d);
                e = e.clamp(0, d);
                if e > s { (e - s + st - 1) / st } else { 0 }
            } else {
                s = s.clamp(-1, d - 1);
                e = e.clamp(-1, d - 1);
                if s > e { (s - e + (-st) - 1) / (-st) } else { 0 }
            };
            let s = s as i64;
            out.push((ax, s, step, count as u64));
        }
        Ok(out)
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    Some(match name {
        "reshape" => Op::Reshape { shape: a.dim_specs("shape") },
        "transpose" => Op::Transpose { perm: a.opt_usizes("perm") },
        "concat" => Op::Concat { axis: a.int("axis", None) },
        "split" => Op::Split { axis: a.int("axis", Some(0)), sizes: a.usizes("sizes", None) },
        "slice" => {
            let s = Slice {
                starts: a.ints("starts", None),
                ends: a.ints("ends", None),
                axes: a.opt_ints("axes"),
                steps: a.opt_ints("steps"),
            };
            let n = s.starts.len();
            if s.ends.len() != n
                || s.axes.as_ref().is_some_and(|x| x.len() != n)
                || s.steps.as_ref().is_some_and(|x| x.len() != n)
            {
                a.error("slice expects `starts`, `ends`, `axes` and `steps` of one length");
            }
            if s.steps.as_ref().is_some_and(|x| x.contains(&0)) {
                a.error("slice steps must not be 0");
            }
            Op::Slice(s)
        }
        "gather" => Op::Gather { axis: a.int("axis", Some(0)) },
        "pad" => Op::Pad {
            pads: a.usizes("pads", None),
            mode: a.choice("mode", PAD_MODES, Some(PadMode::Constant)).unwrap_or(PadMode::Constant),
            value: a.float("value", Some(0.0)),
        },
        "expand" => Op::Expand { shape: a.dim_specs("shape") },
        "nonzero" => Op::NonZero { count: a.dim_spec("count") },
        _ => return None,
    })
}

pub(super) fn attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    let mut v = vec![];
    match op {
        Op::Reshape { shape } => v.push(("shape", DimSpec::to_attr(shape))),
        Op::Transpose { perm } => {
            if let Some(p) = perm {
                v.push(("perm", AttrValue::usizes(p)));
            }
        }
        Op::Concat { axis } => v.push(("axis", AttrValue::Int(*axis))),
        Op::Split { axis, sizes } => {
            if *axis != 0 {
                v.push(("axis", AttrValue::Int(*axis)));
            }
            v.push(("sizes", AttrValue::usizes(sizes)));
        }
        Op::Slice(s) => {
            v.push(("starts", AttrValue::ints(&s.starts)));
            v.push(("ends", AttrValue::ints(&s.ends)));
            if let Some(a) = &s.axes {
                v.push(("axes", AttrValue::ints(a)));
            }
            if let Some(st) = &s.steps {
                v.push(("steps", AttrValue::ints(st)));
            }
        }
        Op::Gather { axis } => {
            if *axis != 0 {
                v.push(("axis", AttrValue::Int(*axis)));
            }
        }
        Op::Pad { pads, mode, value } => {
            v.push(("pads", AttrValue::usizes(pads)));
            if *mode != PadMode::Constant {
                v.push(("mode", AttrValue::ident(mode.name())));
            }
            if value.to_bits() != 0f32.to_bits() {
                v.push(("value", AttrValue::Float(*value)));
            }
        }
        Op::Expand { shape } => v.push(("shape", DimSpec::to_attr(shape))),
        Op::NonZero { count } => v.push(("count", count.one_attr())),
        _ => {}
    }
    v
}

/// A product of dims as (fixed factor, sorted symbols).
fn product(dims: &[Dim]) -> Option<(u64, Vec<Arc<str>>)> {
    let mut f = 1u64;
    let mut syms = Vec::new();
    for d in dims {
        match d {
            Dim::Fixed(n) => f = f.checked_mul(*n)?,
            Dim::Sym(s) => syms.push(s.clone()),
        }
    }
    syms.sort();
    Some((f, syms))
}

/// Resolves a reshape target against the input dims.
pub fn reshape_dims(input: &[Dim], spec: &[DimSpec]) -> Result<Vec<Dim>, String> {
    let mut out: Vec<Option<Dim>> = Vec::new();
    let mut infer_at = None;
    for (i, s) in spec.iter().enumerate() {
        match s {
            DimSpec::Int(-1) => {
                if infer_at.is_some() {
                    return Err("reshape allows one -1".into());
                }
                infer_at = Some(i);
                out.push(None);
            }
            DimSpec::Int(0) => out.push(Some(
                input.get(i).cloned().ok_or_else(|| format!("reshape: 0 at position {i} copies no input dim"))?,
            )),
            DimSpec::Int(n) if *n > 0 => out.push(Some(Dim::Fixed(*n as u64))),
            DimSpec::Int(n) => return Err(format!("reshape: bad size {n}")),
            DimSpec::Sym(s) => out.push(Some(Dim::sym(s))),
        }
    }
    let known: Vec<Dim> = out.iter().flatten().cloned().collect();
    let (Some((fin, mut sin)), Some((fout, sout))) = (product(input), product(&known)) else {
        return Err("reshape: sizes overflow".into());
    };
    // Cancel the symbols that appear on both sides.
    let mut rest_out = Vec::new();
    for s in sout {
        if let Some(p) = sin.iter().position(|x| *x == s) {
            sin.remove(p);
        } else {
            rest_out.push(s);
        }
    }
    let shape_in = Shape(input.to_vec());
    let bad = || format!("reshape cannot turn {shape_in} into {}", fmt_spec(spec));
    if !rest_out.is_empty() {
        return Err(bad());
    }
    match infer_at {
        Some(i) => {
            let d = match (sin.len(), fout) {
                (0, f) if f > 0 && fin % f == 0 => Dim::Fixed(fin / f),
                (1, f) if f == fin => Dim::Sym(sin[0].clone()),
                _ => return Err(bad()),
            };
            out[i] = Some(d);
        }
        None => {
            if !sin.is_empty() || fin != fout {
                return Err(bad());
            }
        }
    }
    Ok(out.into_iter().map(|d| d.expect("filled")).collect())
}

fn fmt_spec(spec: &[DimSpec]) -> String {
    DimSpec::to_attr(spec).to_string()
}

pub(super) fn infer(op: &Op, ins: &[&TensorType]) -> Result<Vec<TensorType>, String> {
    let x = ins[0];
    let name = op.name();
    let same = |s: Vec<Dim>| {
        let mut t = TensorType::new(x.dtype, Shape(s));
        t.quant = x.quant.clone().filter(|q| q.axis().is_none());
        t
    };
    let one = |t| Ok(vec![t]);
    match op {
        Op::Reshape { shape } => one(same(reshape_dims(x.dims(), shape)?)),
        Op::Transpose { perm } => {
            let r = x.rank();
            let p = perm.clone().unwrap_or_else(|| (0..r).rev().collect());
            let mut seen = vec![false; r];
            if p.len() != r || p.iter().any(|&i| i >= r || std::mem::replace(&mut seen[i], true)) {
                return Err(format!("transpose perm {p:?} is not a permutation of 0..{r} for {x}"));
            }
            one(same(p.iter().map(|&i| x.dims()[i].clone()).collect()))
        }
        Op::Concat { axis } => {
            let a = x.shape.axis(*axis).ok_or_else(|| format!("concat axis {axis} is out of range for {x}"))?;
            let mut total = 0u64;
            let mut sym: Option<Dim> = None;
            for (i, t) in ins.iter().enumerate() {
                if t.dtype != x.dtype || t.rank() != x.rank() || t.quant != x.quant {
                    return Err(format!("concat input {i} is {t}, expected {} of rank {}", x.dtype, x.rank()));
                }
                for (j, (d, e)) in t.dims().iter().zip(x.dims()).enumerate() {
                    if j != a && d != e {
                        return Err(format!("concat input {i} {t} does not match {x} outside axis {a}"));
                    }
                }
                match &t.dims()[a] {
                    Dim::Fixed(n) => total += n,
                    d => sym = Some(d.clone()),
                }
            }
            let d = match sym {
                None => Dim::Fixed(total),
                Some(s) if ins.len() == 1 => s,
                Some(_) => return Err(format!("concat along a symbolic axis of {x}; bind it first")),
            };
            let mut dims = x.dims().to_vec();
            dims[a] = d;
            one(same(dims))
        }
        Op::Split { axis, sizes } => {
            let a = x.shape.axis(*axis).ok_or_else(|| format!("split axis {axis} is out of range for {x}"))?;
            let total = sizes.iter().try_fold(0u64, |acc, &n| acc.checked_add(n as u64));
            if sizes.is_empty() || total.is_none_or(|t| x.dims()[a] != Dim::Fixed(t)) {
                let total: u128 = sizes.iter().map(|&n| n as u128).sum();
                return Err(format!("split sizes {sizes:?} (sum {total}) do not cover axis {a} of {x}"));
            }
            Ok(sizes
                .iter()
                .map(|&n| {
                    let mut d = x.dims().to_vec();
                    d[a] = Dim::Fixed(n as u64);
                    same(d)
                })
                .collect())
        }
        Op::Slice(s) => {
            let dims: Vec<u64> = x.dims().iter().map(|d| d.fixed().unwrap_or(u64::MAX / 4)).collect();
            let r = s.resolve(&dims).map_err(|e| format!("slice: {e}"))?;
            let mut out = x.dims().to_vec();
            for (ax, start, step, count) in r {
                if let Dim::Sym(_) = &x.dims()[ax] {
                    // Only the whole range keeps a symbolic dim.
                    if !(start == 0 && step == 1 && count == dims[ax]) {
                        return Err(format!("slice of symbolic dim {} of {x}; bind it first", x.dims()[ax]));
                    }
                } else {
                    out[ax] = Dim::Fixed(count);
                }
            }
            one(same(out))
        }
        Op::Gather { axis } => {
            let idx = ins[1];
            if !matches!(idx.dtype, DType::I32 | DType::I64) {
                return Err(format!("gather expects i32 or i64 indices, found {idx}"));
            }
            let a = x.shape.axis(*axis).ok_or_else(|| format!("gather axis {axis} is out of range for {x}"))?;
            let mut d = x.dims()[..a].to_vec();
            d.extend(idx.dims().iter().cloned());
            d.extend(x.dims()[a + 1..].iter().cloned());
            one(same(d))
        }
        Op::Pad { pads, mode, .. } => {
            let r = x.rank();
            if pads.len() != 2 * r {
                return Err(format!("pad expects {} pads (begins, then ends) for {x}, found {}", 2 * r, pads.len()));
            }
            let mut out = Vec::new();
            for (i, d) in x.dims().iter().enumerate() {
                let (b, e) = (pads[i] as u64, pads[r + i] as u64);
                out.push(match d {
                    Dim::Fixed(n) => {
                        if *mode == PadMode::Reflect && (b >= *n || e >= *n) {
                            return Err(format!("reflect pad of {b}/{e} needs a dim larger than the pad, found {n} in {x}"));
                        }
                        if *mode != PadMode::Constant && *n == 0 && b + e > 0 {
                            return Err(format!("{} pad of an empty dim in {x}", mode.name()));
                        }
                        Dim::Fixed(n.checked_add(b).and_then(|v| v.checked_add(e)).ok_or_else(|| format!("pad of {x} overflows"))?)
                    }
                    s if b + e == 0 => s.clone(),
                    s => return Err(format!("pad of symbolic dim {s} of {x}; bind it first")),
                });
            }
            one(same(out))
        }
        Op::Expand { shape } => {
            let mut target = Vec::new();
            for s in shape {
                target.push(match s {
                    DimSpec::Int(n) if *n >= 0 => Dim::Fixed(*n as u64),
                    DimSpec::Sym(s) => Dim::sym(s),
                    DimSpec::Int(n) => return Err(format!("expand: bad size {n}")),
                });
            }
            let s = x
                .shape
                .broadcast(&Shape(target))
                .ok_or_else(|| format!("expand cannot broadcast {x} to {}", fmt_spec(shape)))?;
            one(same(s.0))
        }
        Op::NonZero { count } => {
            if x.quant.is_some() {
                return Err(format!("nonzero does not take quantized input {x}; dequantize first"));
            }
            let k = super::routing::count_dim("nonzero", count, &[x])?;
            one(TensorType::new(DType::I64, Shape(vec![Dim::Fixed(x.rank() as u64), k])))
        }
        _ => unreachable!("shape::infer on {name}"),
    }
}
