//! Constant folding at import time: a node whose inputs are all known is evaluated
//! here instead of becoming smelt ops, so that shape subgraphs (`Shape → Gather →
//! Unsqueeze → Concat → Reshape`), constant weights rearranged by the exporter, and
//! parameter inputs (axes, pads, k) become plain constants. Shape vectors may hold
//! symbolic dims ([`Known::Dims`]); the data-movement ops carry them through.
//!
//! This is a small evaluator of its own: the frontends depend only on `smelt-ir`,
//! not on the runtime's interpreter. It folds integer arithmetic and pure data
//! movement; float math is left to the graph.

use super::ctx::{Ctx, Known};
use super::error::Result;
use super::node::NodeRef;
use super::ops::tensor::{onnx_reshape, squeeze_dims, unsqueeze_dims};
use smelt_ir::attr::DimSpec;
use smelt_ir::ops::Slice;
use smelt_ir::shape::normalize_axis;
use smelt_ir::{BinaryOp, DType, Data, Dim, Tensor, UnaryOp};

/// The largest tensor folding produces (elements).
const MAX_FOLD: usize = 1 << 24;

/// Folds `n` when possible: `Some(outputs)`, or `None` to import it as ops.
pub fn fold(cx: &Ctx, n: &NodeRef) -> Result<Option<Vec<Known>>> {
    let op = n.op_type();
    if op == "Constant" {
        return super::ops::tensor::constant(n).map(|t| Some(vec![Known::T(t)]));
    }
    if op == "Shape" || op == "Size" {
        return shape_of(cx, n);
    }
    if !FOLDABLE.contains(&op) || n.num_outputs() != 1 {
        return Ok(None);
    }
    let mut ins: Vec<Option<Known>> = Vec::new();
    for i in 0..n.num_inputs() {
        match n.input_name(i) {
            None => ins.push(None),
            Some(name) => match cx.known(name) {
                Some(k) => ins.push(Some(k.clone())),
                None => return Ok(None),
            },
        }
    }
    if ins.iter().flatten().all(|k| matches!(k, Known::T(_))) {
        let ts: Vec<Option<Tensor>> = ins.iter().map(|k| k.as_ref().and_then(Known::tensor)).collect();
        return Ok(fold_tensors(cx, n, &ts)?.map(|t| vec![Known::T(t)]));
    }
    Ok(fold_dims(n, &ins)?.map(|k| vec![k]))
}

const FOLDABLE: &[&str] = &[
    "Identity",
    "Cast",
    "Gather",
    "Concat",
    "Unsqueeze",
    "Squeeze",
    "Slice",
    "Reshape",
    "Flatten",
    "Transpose",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Abs",
    "Equal",
    "Less",
    "Greater",
    "Not",
    "Where",
    "Range",
    "ConstantOfShape",
    "Min",
    "Max",
    "ReduceProd",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "Expand",
    "Mod",
    "And",
    "Or",
    "Xor",
    "LessOrEqual",
    "GreaterOrEqual",
    "Floor",
    "Ceil",
    "Round",
    "Sqrt",
    "Relu",
    "Reciprocal",
];

/// `Shape` and `Size` of any value whose dims are known (symbols included).
fn shape_of(cx: &Ctx, n: &NodeRef) -> Result<Option<Vec<Known>>> {
    let Some(name) = n.input_name(0) else { return Err(n.err("missing input")) };
    let dims: Vec<Dim> = match cx.known(name).and_then(Known::tensor) {
        Some(t) => t.shape().iter().map(|&d| Dim::Fixed(d as u64)).collect(),
        None => {
            let Some(v) = cx.value_peek(name) else { return Ok(None) };
            cx.dims(v)
        }
    };
    let spec: Vec<DimSpec> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(k) => DimSpec::Int(*k as i64),
            Dim::Sym(s) => DimSpec::Sym(s.to_string()),
        })
        .collect();
    if n.op_type() == "Size" {
        let Some(sh) = smelt_ir::Shape(dims.clone()).fixed() else {
            return Err(n.unsupported("Size of a value with symbolic dims"));
        };
        let size = numel(&sh)
            .and_then(|k| i64::try_from(k).ok())
            .ok_or_else(|| n.err(format!("Size of {} overflows", smelt_ir::Shape(dims))))?;
        let t = Tensor::i64(vec![], vec![size]).expect("scalar");
        return Ok(Some(vec![Known::T(t)]));
    }
    let r = spec.len() as i64;
    let clampi = |x: i64| (if x < 0 { x + r } else { x }).clamp(0, r) as usize;
    let (s, e) = (clampi(n.int("start", 0)?), clampi(n.int("end", r)?));
    let spec = if s < e { spec[s..e].to_vec() } else { vec![] };
    Ok(Some(vec![Known::from_dims(spec, false)]))
}

/// Folds on shape vectors that hold symbols.
fn fold_dims(n: &NodeRef, ins: &[Option<Known>]) -> Result<Option<Known>> {
    let d = |i: usize| ins.get(i).and_then(|k| k.as_ref()).and_then(Known::dims);
    let scalar = |i: usize| match ins.get(i) {
        Some(Some(Known::Dims { scalar, .. })) => *scalar,
        Some(Some(Known::T(t))) => t.rank() == 0,
        _ => false,
    };
    let Some(x) = d(0) else { return Ok(None) };
    Ok(match n.op_type() {
        "Identity" => Some(Known::from_dims(x, scalar(0))),
        "Cast" => {
            let to = super::tensor::dtype(n.int("to", 1)? as i32).ok();
            if !matches!(to, Some(DType::I64 | DType::I32)) {
                return Ok(None);
            }
            Some(Known::from_dims(x, scalar(0)))
        }
        "Gather" if !scalar(0) && n.int("axis", 0)? == 0 => {
            let Some(idx) = d(1) else { return Ok(None) };
            let mut out = Vec::new();
            for i in idx {
                let DimSpec::Int(i) = i else { return Ok(None) };
                let k = normalize_axis(i, x.len()).ok_or_else(|| n.err(format!("index {i} is out of range")))?;
                out.push(x[k].clone());
            }
            Some(Known::from_dims(out, scalar(1)))
        }
        "Concat" => {
            let mut out = Vec::new();
            for i in 0..ins.len() {
                match d(i) {
                    Some(v) if !scalar(i) => out.extend(v),
                    _ => return Ok(None),
                }
            }
            Some(Known::from_dims(out, false))
        }
        "Unsqueeze" if scalar(0) => Some(Known::from_dims(x, false)),
        "Squeeze" if !scalar(0) && x.len() == 1 => Some(Known::from_dims(x, true)),
        "Slice" if !scalar(0) => {
            let Some(s) = slice_of(n, ins)? else { return Ok(None) };
            let r = s.resolve(&[x.len() as u64]).map_err(|e| n.err(e))?;
            let (_, start, step, count) = r.first().copied().unwrap_or((0, 0, 1, x.len() as u64));
            let out = (0..count as i64).map(|i| x[(start + i * step) as usize].clone()).collect();
            Some(Known::from_dims(out, false))
        }
        _ => None,
    })
}

/// Slice bounds from inputs (opset ≥ 10) or attributes.
fn slice_of(n: &NodeRef, ins: &[Option<Known>]) -> Result<Option<Slice>> {
    let get = |i: usize| -> Option<Vec<i64>> {
        ins.get(i).and_then(|k| k.as_ref()).and_then(Known::tensor).map(|t| t.to_i64())
    };
    let s = if ins.len() > 1 || !n.has_attr("starts") {
        let (Some(starts), Some(ends)) = (get(1), get(2)) else { return Ok(None) };
        Slice { starts, ends, axes: get(3), steps: get(4) }
    } else {
        Slice {
            starts: n.ints("starts")?.unwrap_or_default(),
            ends: n.ints("ends")?.unwrap_or_default(),
            axes: n.ints("axes")?,
            steps: None,
        }
    };
    let k = s.starts.len();
    if s.ends.len() != k
        || s.axes.as_ref().is_some_and(|a| a.len() != k)
        || s.steps.as_ref().is_some_and(|a| a.len() != k)
    {
        return Err(n.err(format!(
            "starts, ends, axes and steps differ in length: {:?}, {:?}, {:?}, {:?}",
            s.starts, s.ends, s.axes, s.steps
        )));
    }
    if s.steps.as_ref().is_some_and(|v| v.contains(&0)) {
        return Err(n.err("slice step 0"));
    }
    Ok(Some(s))
}

/// The number of elements of `shape` (`None` when it overflows; 0 when a dim is 0,
/// whatever the others).
fn numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Row-major strides (saturating: they only overflow for a shape with no elements,
/// whose strides are never used).
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

fn unravel(mut f: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        if shape[i] > 0 {
            idx[i] = f % shape[i];
            f /= shape[i];
        }
    }
    idx
}

/// Positions in each operand (shapes `shapes`) of every element of their
/// broadcast, and the broadcast shape; `None` when they do not broadcast or the
/// result has more than `limit` elements.
fn broadcast(shapes: &[&[usize]], limit: usize) -> Option<(Vec<usize>, Vec<Vec<usize>>)> {
    let r = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; r];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[r - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    let n = numel(&out)?;
    if n > limit {
        return None;
    }
    let maps = shapes
        .iter()
        .map(|s| {
            let st = strides(s);
            let off = r - s.len();
            (0..n)
                .map(|f| {
                    let idx = unravel(f, &out);
                    s.iter().enumerate().map(|(i, &d)| if d == 1 { 0 } else { idx[off + i] * st[i] }).sum()
                })
                .collect()
        })
        .collect();
    Some((out, maps))
}

fn mk(shape: Vec<usize>, d: Data) -> Option<Tensor> {
    Tensor::new(shape, d).ok()
}

/// Folds ops whose inputs are all known tensors.
fn fold_tensors(cx: &Ctx, n: &NodeRef, ins: &[Option<Tensor>]) -> Result<Option<Tensor>> {
    let Some(Some(x)) = ins.first() else { return Ok(None) };
    let get = |i: usize| ins.get(i).and_then(|t| t.as_ref());
    let ints = |i: usize| get(i).map(|t| t.to_i64());
    let is_int = |t: &Tensor| t.dtype().is_int() || t.dtype() == DType::Bool;
    let xs = x.shape().to_vec();
    let op = n.op_type();
    Ok(match op {
        "Identity" => Some(x.clone()),
        "Cast" => {
            let to = super::tensor::dtype(n.int("to", 1)? as i32).map_err(|e| n.unsupported(e))?;
            let data = if x.dtype().is_float() && !to.is_float() && to != DType::Bool {
                Data::from_i64(to, &x.to_i64())
            } else if x.dtype().is_float() || to.is_float() {
                Data::from_f32(to, &x.to_f32())
            } else {
                Data::from_i64(to, &x.to_i64())
            };
            mk(xs, data)
        }
        "Gather" => {
            let (Some(idx), axis) = (get(1), n.int("axis", 0)?) else { return Ok(None) };
            let a = normalize_axis(axis, xs.len()).ok_or_else(|| n.err(format!("axis {axis} is out of range")))?;
            let ks = idx
                .to_i64()
                .iter()
                .map(|&i| normalize_axis(i, xs[a]).ok_or_else(|| n.err(format!("gather index {i} is out of range"))))
                .collect::<Result<Vec<usize>>>()?;
            let mut shape = xs[..a].to_vec();
            shape.extend(idx.shape());
            shape.extend(&xs[a + 1..]);
            // Larger than its input only through repeated indices: left to the graph.
            let Some(count) = numel(&shape).filter(|&c| c <= MAX_FOLD.max(x.numel())) else { return Ok(None) };
            let mut pos = Vec::with_capacity(count);
            if count > 0 {
                let (outer, inner): (usize, usize) = (xs[..a].iter().product(), strides(&xs)[a]);
                for o in 0..outer {
                    for &k in &ks {
                        pos.extend((0..inner).map(|j| o * xs[a] * inner + k * inner + j));
                    }
                }
            }
            mk(shape, x.data().take(&pos))
        }
        "Concat" => {
            let parts: Vec<&Tensor> = ins.iter().flatten().collect();
            let axis = n.int("axis", 0)?;
            let a = normalize_axis(axis, xs.len()).ok_or_else(|| n.err(format!("axis {axis} is out of range")))?;
            let fits = |p: &&Tensor| {
                p.rank() == xs.len() && p.dtype() == x.dtype() && (0..xs.len()).all(|i| i == a || p.shape()[i] == xs[i])
            };
            if !parts.iter().all(fits) {
                return Err(n.err("concat inputs differ outside the axis, or in rank or dtype"));
            }
            let mut vals: Vec<Data> = Vec::new();
            let mut shape = xs.clone();
            shape[a] = parts.iter().map(|p| p.shape()[a]).sum();
            // No elements: no chunks (whose sizes could overflow).
            let outer: usize = if numel(&shape) == Some(0) { 0 } else { xs[..a].iter().product() };
            for o in 0..outer {
                for p in &parts {
                    let chunk: usize = p.shape()[a..].iter().product();
                    vals.push(p.data().take(&(o * chunk..(o + 1) * chunk).collect::<Vec<_>>()));
                }
            }
            let mut flat = Data::zeros(x.dtype(), 0);
            for v in vals {
                flat = join(flat, v);
            }
            mk(shape, flat)
        }
        "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => {
            let dims: Vec<Dim> = xs.iter().map(|&d| Dim::Fixed(d as u64)).collect();
            let axes = if n.num_inputs() > 1 { ints(1) } else { n.ints("axes")? };
            let out = match op {
                "Unsqueeze" => unsqueeze_dims(n, &dims, &axes.unwrap_or_default())?,
                "Squeeze" => squeeze_dims(n, &dims, axes.as_deref())?,
                "Flatten" => {
                    let a = n.int("axis", 1)?;
                    let a = if a < 0 { a + xs.len() as i64 } else { a }.clamp(0, xs.len() as i64) as usize;
                    let (Some(h), Some(t)) = (numel(&xs[..a]), numel(&xs[a..])) else { return Ok(None) };
                    vec![Dim::Fixed(h as u64), Dim::Fixed(t as u64)]
                }
                _ => {
                    let Some(sh) = ints(1) else { return Ok(None) };
                    let spec: Vec<DimSpec> = sh.into_iter().map(DimSpec::Int).collect();
                    onnx_reshape(n, &dims, &spec, n.bool("allowzero", false)?)?
                }
            };
            let shape: Vec<usize> = out.iter().map(|d| d.fixed().unwrap_or(0) as usize).collect();
            mk(shape, x.data().clone())
        }
        "Transpose" => {
            let r = xs.len();
            let perm: Vec<usize> = match n.ints("perm")? {
                Some(p) => p.iter().map(|&i| i as usize).collect(),
                None => (0..r).rev().collect(),
            };
            let mut seen = vec![false; r];
            if perm.len() != r || perm.iter().any(|&i| i >= r || std::mem::replace(&mut seen[i], true)) {
                return Err(n.err(format!("perm {perm:?} is not a permutation of 0..{r}")));
            }
            let shape: Vec<usize> = perm.iter().map(|&i| xs[i]).collect();
            let st = strides(&xs);
            let pos: Vec<usize> =
                (0..x.numel()).map(|f| unravel(f, &shape).iter().zip(&perm).map(|(i, &p)| i * st[p]).sum()).collect();
            mk(shape, x.data().take(&pos))
        }
        "Slice" => {
            let ks: Vec<Option<Known>> = ins.iter().map(|t| t.clone().map(Known::T)).collect();
            let Some(s) = slice_of(n, &ks)? else { return Ok(None) };
            let r = s.resolve(&xs.iter().map(|&d| d as u64).collect::<Vec<_>>()).map_err(|e| n.err(e))?;
            let mut spec: Vec<(i64, i64, usize)> = xs.iter().map(|&d| (0, 1, d)).collect();
            for (a, start, step, count) in r {
                spec[a] = (start, step, count as usize);
            }
            let shape: Vec<usize> = spec.iter().map(|s| s.2).collect();
            let st = strides(&xs);
            let count = numel(&shape).ok_or_else(|| n.err(format!("a slice of {xs:?} has too many elements")))?;
            let pos: Vec<usize> = (0..count)
                .map(|f| {
                    let idx = unravel(f, &shape);
                    idx.iter().enumerate().map(|(k, &i)| ((spec[k].0 + i as i64 * spec[k].1) as usize) * st[k]).sum()
                })
                .collect();
            mk(shape, x.data().take(&pos))
        }
        "ConstantOfShape" => {
            let shape = sizes(n, &x.to_i64(), "shape")?;
            let Some(numel) = numel(&shape).filter(|&k| k <= 4096) else { return Ok(None) };
            let v = match n.tensor("value")? {
                Some(t) => super::tensor::from_proto(t, None)?,
                None => Tensor::scalar_f32(0.0),
            };
            let data = if v.dtype().is_float() {
                Data::from_f32(v.dtype(), &vec![v.to_f32().first().copied().unwrap_or(0.0); numel])
            } else {
                Data::from_i64(v.dtype(), &vec![v.to_i64().first().copied().unwrap_or(0); numel])
            };
            mk(shape, data)
        }
        "Range" => {
            let (Some(l), Some(d)) = (get(1), get(2)) else { return Ok(None) };
            if !is_int(x) {
                return Ok(None);
            }
            let one = |t: &Tensor, what: &str| match t.to_i64()[..] {
                [v] => Ok(v),
                _ => Err(n.err(format!("the {what} must be one value, found {}", t.tensor_type()))),
            };
            let (s, l, d) = (one(x, "start")?, one(l, "limit")?, one(d, "delta")?);
            if d == 0 {
                return Err(n.err("Range with delta 0"));
            }
            let count = ((l as f64 - s as f64) / d as f64).ceil().max(0.0) as usize;
            if count > MAX_FOLD {
                return Ok(None);
            }
            let v: Vec<i64> = (0..count as i64).map(|i| s.wrapping_add(i.wrapping_mul(d))).collect();
            mk(vec![count], Data::from_i64(x.dtype(), &v))
        }
        "Expand" => {
            let Some(sh) = ints(1) else { return Ok(None) };
            let target = sizes(n, &sh, "target shape")?;
            let Some((shape, maps)) = broadcast(&[&xs, &target], 4096) else { return Ok(None) };
            mk(shape, x.data().take(&maps[0]))
        }
        "ReduceProd" | "ReduceSum" | "ReduceMax" | "ReduceMin" => return reduce(n, x, ints(1)),
        _ if ins.iter().flatten().all(is_int) => return elementwise(cx, n, ins),
        _ => return float_elementwise(n, ins),
    })
}

/// ReduceSum, ReduceProd (integers: they wrap, as in the graph), ReduceMax and
/// ReduceMin (integers and floats; NaN wins) of a small known tensor over
/// `axes` — an attribute before opset 18, input 1 since; none: every axis
/// unless `noop_with_empty_axes`. Exporters sum shape entries and take the
/// largest image size of a batch this way. Float sums and products are left
/// to the graph (their rounding depends on the order).
fn reduce(n: &NodeRef, x: &Tensor, axes_input: Option<Vec<i64>>) -> Result<Option<Tensor>> {
    let op = n.op_type();
    let float = x.dtype().is_float();
    if (float && matches!(op, "ReduceSum" | "ReduceProd")) || (matches!(op, "ReduceMax" | "ReduceMin") && x.numel() == 0) {
        return Ok(None);
    }
    let xs = x.shape().to_vec();
    let given = match n.ints("axes")? {
        Some(a) => Some(a),
        None => axes_input,
    };
    let axes: Vec<i64> = match given {
        Some(a) if !a.is_empty() => a,
        // An axes input not known at import.
        None if n.has_input(1) => return Ok(None),
        _ if n.int("noop_with_empty_axes", 0)? != 0 => return Ok(Some(x.clone())),
        _ => (0..xs.len() as i64).collect(),
    };
    let mut red = vec![false; xs.len()];
    for a in axes {
        red[normalize_axis(a, xs.len()).ok_or_else(|| n.err(format!("axis {a} is out of range")))?] = true;
    }
    let out: Vec<usize> = xs.iter().zip(&red).map(|(&d, &r)| if r { 1 } else { d }).collect();
    let (ost, xst) = (strides(&out), strides(&xs));
    // The output element each input element reduces into.
    let target = |f: usize| -> usize { (0..xs.len()).filter(|&d| !red[d]).map(|d| f / xst[d] % xs[d] * ost[d]).sum() };
    let shape: Vec<usize> =
        if n.bool("keepdims", true)? { out.clone() } else { xs.iter().zip(&red).filter(|(_, r)| !**r).map(|(&d, _)| d).collect() };
    let total: usize = out.iter().product();
    Ok(if float {
        let max = op == "ReduceMax";
        let mut r = vec![if max { f32::NEG_INFINITY } else { f32::INFINITY }; total];
        for (f, &e) in x.to_f32().iter().enumerate() {
            let t = target(f);
            r[t] = if e.is_nan() || r[t].is_nan() { f32::NAN } else if max { r[t].max(e) } else { r[t].min(e) };
        }
        mk(shape, Data::from_f32(x.dtype(), &r))
    } else {
        let (init, f): (i64, fn(i64, i64) -> i64) = match op {
            "ReduceSum" => (0, i64::wrapping_add),
            "ReduceProd" => (1, i64::wrapping_mul),
            "ReduceMax" => (i64::MIN, i64::max),
            _ => (i64::MAX, i64::min),
        };
        let mut r = vec![init; total];
        for (i, &e) in x.to_i64().iter().enumerate() {
            let t = target(i);
            r[t] = f(r[t], e);
        }
        mk(shape, Data::from_i64(x.dtype(), &r))
    })
}

/// Float elementwise ops on small known tensors (shape arithmetic done in
/// floats, as exporters write a Resize's sizes or a Range's count), with the
/// IR's scalar semantics (`UnaryOp::eval`, `BinaryOp::eval`): what the graph
/// would compute, computed at import.
fn float_elementwise(n: &NodeRef, ins: &[Option<Tensor>]) -> Result<Option<Tensor>> {
    let ts: Vec<&Tensor> = ins.iter().flatten().collect();
    let op = n.op_type();
    // Where's condition is bool; every other operand a float.
    let data = if op == "Where" { &ts[1.min(ts.len())..] } else { &ts[..] };
    if ts.is_empty() || data.is_empty() || !data.iter().all(|t| t.dtype().is_float()) {
        return Ok(None);
    }
    let shapes: Vec<&[usize]> = ts.iter().map(|t| t.shape()).collect();
    let Some((shape, maps)) = broadcast(&shapes, 4096) else { return Ok(None) };
    let Some(count) = numel(&shape) else { return Ok(None) };
    let vals: Vec<Vec<f32>> = ts.iter().map(|t| t.to_f32()).collect();
    let at = |k: usize, f: usize| vals[k][maps[k][f]];
    let d = data[0].dtype();
    let unary = |u: UnaryOp| -> Option<Vec<f32>> { (ts.len() == 1).then(|| (0..count).map(|f| u.eval(at(0, f))).collect()) };
    let binary = |b: BinaryOp| -> Option<Vec<f32>> { (ts.len() == 2).then(|| (0..count).map(|f| b.eval(at(0, f), at(1, f))).collect()) };
    let cmp = |b: BinaryOp| -> Option<Vec<bool>> { (ts.len() == 2).then(|| (0..count).map(|f| b.eval(at(0, f), at(1, f)) != 0.0).collect()) };
    let floats = |v: Option<Vec<f32>>| v.and_then(|v| mk(shape.clone(), Data::from_f32(d, &v)));
    let bools = |v: Option<Vec<bool>>| v.and_then(|v| mk(shape.clone(), Data::Bool(v)));
    Ok(match op {
        "Add" => floats(binary(BinaryOp::Add)),
        "Sub" => floats(binary(BinaryOp::Sub)),
        "Mul" => floats(binary(BinaryOp::Mul)),
        "Div" => floats(binary(BinaryOp::Div)),
        "Min" => floats(binary(BinaryOp::Min)),
        "Max" => floats(binary(BinaryOp::Max)),
        "Neg" => floats(unary(UnaryOp::Neg)),
        "Abs" => floats(unary(UnaryOp::Abs)),
        "Floor" => floats(unary(UnaryOp::Floor)),
        "Ceil" => floats(unary(UnaryOp::Ceil)),
        "Round" => floats(unary(UnaryOp::Round)),
        "Sqrt" => floats(unary(UnaryOp::Sqrt)),
        "Relu" => floats(unary(UnaryOp::Relu)),
        "Reciprocal" => floats(unary(UnaryOp::Reciprocal)),
        "Equal" => bools(cmp(BinaryOp::Equal)),
        "Less" => bools(cmp(BinaryOp::Less)),
        "Greater" => bools(cmp(BinaryOp::Greater)),
        "LessOrEqual" => bools(cmp(BinaryOp::LessEqual)),
        "GreaterOrEqual" => bools(cmp(BinaryOp::GreaterEqual)),
        "Where" if ts.len() == 3 && ts[0].dtype() == DType::Bool => {
            floats(Some((0..count).map(|f| if at(0, f) != 0.0 { at(1, f) } else { at(2, f) }).collect()))
        }
        _ => None,
    })
}

/// Sizes given as ints (a shape input): none may be negative.
fn sizes(n: &NodeRef, v: &[i64], what: &str) -> Result<Vec<usize>> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| n.err(format!("the {what} {v:?} has a negative size {d}"))))
        .collect()
}

/// `a` followed by `b` (same dtype; a mismatch keeps `a`, checked by the caller).
fn join(a: Data, b: Data) -> Data {
    macro_rules! cat {
        ($($v:ident),*) => {
            match (a, b) {
                $((Data::$v(mut x), Data::$v(y)) => {
                    x.extend(y);
                    Data::$v(x)
                })*
                (a, _) => a,
            }
        };
    }
    cat!(F32, F16, BF16, I8, U8, I32, I64, Bool)
}

/// Integer (and bool) elementwise ops with broadcasting.
fn elementwise(_cx: &Ctx, n: &NodeRef, ins: &[Option<Tensor>]) -> Result<Option<Tensor>> {
    let ts: Vec<&Tensor> = ins.iter().flatten().collect();
    if ts.is_empty() {
        return Ok(None);
    }
    let shapes: Vec<&[usize]> = ts.iter().map(|t| t.shape()).collect();
    let Some((shape, maps)) = broadcast(&shapes, MAX_FOLD) else { return Ok(None) };
    let vals: Vec<Vec<i64>> = ts.iter().map(|t| t.to_i64()).collect();
    let at = |k: usize, f: usize| vals[k][maps[k][f]];
    let Some(numel) = numel(&shape) else { return Ok(None) };
    let d = ts[0].dtype();
    let bin = |b: BinaryOp| -> Result<Vec<i64>> {
        if ts.len() != 2 {
            return Err(n.err(format!("{} expects 2 inputs, found {}", n.op_type(), ts.len())));
        }
        (0..numel).map(|f| b.eval_int(at(0, f), at(1, f)).ok_or_else(|| n.err("integer division by zero or out of range"))).collect()
    };
    let (out, od) = match n.op_type() {
        "Add" => (bin(BinaryOp::Add)?, d),
        "Sub" => (bin(BinaryOp::Sub)?, d),
        "Mul" => (bin(BinaryOp::Mul)?, d),
        "Div" => (bin(BinaryOp::Div)?, d),
        "Equal" => (bin(BinaryOp::Equal)?, DType::Bool),
        "Less" => (bin(BinaryOp::Less)?, DType::Bool),
        "Greater" => (bin(BinaryOp::Greater)?, DType::Bool),
        "LessOrEqual" => (bin(BinaryOp::LessEqual)?, DType::Bool),
        "GreaterOrEqual" => (bin(BinaryOp::GreaterEqual)?, DType::Bool),
        "And" => (bin(BinaryOp::And)?, DType::Bool),
        "Or" => (bin(BinaryOp::Or)?, DType::Bool),
        "Xor" => (bin(BinaryOp::Xor)?, DType::Bool),
        "Mod" if ts.len() == 2 => {
            let fmod = n.bool("fmod", false)?;
            let v: Option<Vec<i64>> = (0..numel)
                .map(|f| {
                    let (a, b) = (at(0, f), at(1, f));
                    // i64::MIN % −1 overflows in Rust; its remainder is 0.
                    let r = if b == 0 { None } else { Some(a.wrapping_rem(b)) }?;
                    Some(if !fmod && r != 0 && (r < 0) != (b < 0) { r + b } else { r })
                })
                .collect();
            (v.ok_or_else(|| n.err("integer modulo by zero"))?, d)
        }
        "Min" | "Max" if ts.len() == 2 => (bin(if n.op_type() == "Min" { BinaryOp::Min } else { BinaryOp::Max })?, d),
        "Neg" => ((0..numel).map(|f| at(0, f).wrapping_neg()).collect(), d),
        "Abs" => ((0..numel).map(|f| at(0, f).wrapping_abs()).collect(), d),
        "Not" => ((0..numel).map(|f| (at(0, f) == 0) as i64).collect(), DType::Bool),
        "Where" if ts.len() == 3 && ts[1].dtype().is_int() => {
            ((0..numel).map(|f| if at(0, f) != 0 { at(1, f) } else { at(2, f) }).collect(), ts[1].dtype())
        }
        _ => return Ok(None),
    };
    Ok(mk(shape, Data::from_i64(od, &out)))
}
