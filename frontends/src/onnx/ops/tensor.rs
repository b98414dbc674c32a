//! ONNX tensor ops: Reshape, Transpose, Concat, Split, Slice, Gather, Squeeze,
//! Unsqueeze, Flatten, Expand, Tile, Pad, Where, Cast, CastLike, Identity, Dropout,
//! Constant, ConstantOfShape, Range. Shape-like inputs must be known at import time
//! (folded constants, possibly with symbolic dims).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use super::super::tensor::{dtype, from_proto};
use smelt_ir::attr::DimSpec;
use smelt_ir::ops::{PadMode, Slice, shape::reshape_dims};
use smelt_ir::shape::normalize_axis;
use smelt_ir::{Data, Dim, Op, Tensor, Value};

type Out = Result<Vec<Value>>;

/// The value of a `Constant` node.
pub fn constant(n: &NodeRef) -> Result<Tensor> {
    if let Some(t) = n.tensor("value")? {
        return from_proto(t, None);
    }
    if let Some(f) = n.float_opt("value_float")? {
        return Ok(Tensor::scalar_f32(f));
    }
    if let Some(v) = n.floats("value_floats")? {
        return Tensor::f32(vec![v.len()], v).map_err(|e| n.err(e.to_string()));
    }
    if let Some(i) = n.int_opt("value_int")? {
        return Tensor::i64(vec![], vec![i]).map_err(|e| n.err(e.to_string()));
    }
    if let Some(v) = n.ints("value_ints")? {
        return Tensor::i64(vec![v.len()], v).map_err(|e| n.err(e.to_string()));
    }
    Err(n.unsupported("only tensor, float and int constants are supported (not strings or sparse tensors)"))
}

/// ONNX Reshape's target dims for input dims `dims`: `0` copies (unless
/// `allowzero`), `-1` is inferred; symbols are kept.
pub fn onnx_reshape(n: &NodeRef, dims: &[Dim], spec: &[DimSpec], allowzero: bool) -> Result<Vec<Dim>> {
    if allowzero && spec.contains(&DimSpec::Int(0)) {
        let out = spec
            .iter()
            .map(|d| match d {
                DimSpec::Int(k) if (0..=smelt_ir::shape::MAX_DIM as i64).contains(k) => Ok(Dim::Fixed(*k as u64)),
                DimSpec::Int(k) if *k > 0 => Err(n.err(format!("reshape target size {k} is too large"))),
                DimSpec::Sym(s) => Ok(Dim::sym(s)),
                _ => Err(n.err("allowzero reshape with -1")),
            })
            .collect::<Result<Vec<Dim>>>()?;
        if out.iter().filter_map(Dim::fixed).try_fold(1u64, |a, k| a.checked_mul(k)).is_none() {
            return Err(n.err(format!("reshape target {} has too many elements", smelt_ir::Shape(out))));
        }
        // The target has no elements: neither may the input.
        if let Some(k) = prod_dim(dims).and_then(|d| d.fixed())
            && k != 0
        {
            return Err(n.err(format!("cannot reshape {k} elements to {}", smelt_ir::Shape(out))));
        }
        return Ok(out);
    }
    reshape_dims(dims, spec).map_err(|e| n.err(e))
}

/// Dims after inserting 1s at `axes` (counted in the output rank).
pub fn unsqueeze_dims(n: &NodeRef, dims: &[Dim], axes: &[i64]) -> Result<Vec<Dim>> {
    let r = dims.len() + axes.len();
    let mut at = Vec::new();
    for &a in axes {
        let k = normalize_axis(a, r).ok_or_else(|| n.err(format!("axis {a} is out of range for rank {r}")))?;
        if at.contains(&k) {
            return Err(n.err(format!("axis {a} is given twice")));
        }
        at.push(k);
    }
    let mut src = dims.iter();
    Ok((0..r)
        .map(|i| if at.contains(&i) { Dim::Fixed(1) } else { src.next().cloned().unwrap_or(Dim::Fixed(1)) })
        .collect())
}

/// Dims after removing `axes` (all size-1 dims when `None`).
pub fn squeeze_dims(n: &NodeRef, dims: &[Dim], axes: Option<&[i64]>) -> Result<Vec<Dim>> {
    let r = dims.len();
    let drop: Vec<usize> = match axes {
        None => (0..r).filter(|&i| dims[i] == Dim::Fixed(1)).collect(),
        Some(ax) => ax
            .iter()
            .map(|&a| {
                let k = normalize_axis(a, r).ok_or_else(|| n.err(format!("axis {a} is out of range for rank {r}")))?;
                match &dims[k] {
                    Dim::Fixed(1) | Dim::Sym(_) => Ok(k),
                    d => Err(n.err(format!("cannot squeeze axis {a} of size {d}"))),
                }
            })
            .collect::<Result<_>>()?,
    };
    Ok(dims.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, d)| d.clone()).collect())
}

/// The product of dims: fixed, or a single symbol times 1.
pub fn prod_dim(dims: &[Dim]) -> Option<Dim> {
    let mut f = 1u64;
    let mut sym = None;
    for d in dims {
        match d {
            Dim::Fixed(k) => f = f.checked_mul(*k)?,
            s if sym.is_none() => sym = Some(s.clone()),
            _ => return None,
        }
    }
    match sym {
        None => Some(Dim::Fixed(f)),
        Some(s) if f == 1 => Some(s),
        _ => None,
    }
}

/// The axes of a node: from input `i` (newer opsets) or the `axes` attribute.
pub fn axes_of(cx: &Ctx, n: &NodeRef, i: usize) -> Result<Option<Vec<i64>>> {
    if n.has_input(i) {
        return cx.need_ints(n, i, "axes").map(Some);
    }
    n.ints("axes")
}

pub fn reshape(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let spec: Vec<DimSpec> = if n.has_input(1) {
        cx.need_known(n, 1, "target shape")?.dims().ok_or_else(|| n.err("the shape must be a 1-d int tensor"))?
    } else {
        n.ints("shape")?.ok_or_else(|| n.err("no target shape"))?.into_iter().map(DimSpec::Int).collect()
    };
    let dims = onnx_reshape(n, &cx.dims(x), &spec, n.bool("allowzero", false)?)?;
    Ok(vec![cx.reshape(x, &dims)?])
}

pub fn squeeze(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let axes = axes_of(cx, n, 1)?;
    let dims = squeeze_dims(n, &cx.dims(x), axes.as_deref())?;
    Ok(vec![cx.reshape(x, &dims)?])
}

pub fn unsqueeze(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let axes = axes_of(cx, n, 1)?.ok_or_else(|| n.err("no axes"))?;
    let dims = unsqueeze_dims(n, &cx.dims(x), &axes)?;
    Ok(vec![cx.reshape(x, &dims)?])
}

pub fn flatten(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let dims = cx.dims(x);
    let r = dims.len() as i64;
    let a = n.int("axis", 1)?;
    let a = if a < 0 { a + r } else { a };
    if !(0..=r).contains(&a) {
        return Err(n.err(format!("axis {a} is out of range for rank {r}")));
    }
    let (h, t) = dims.split_at(a as usize);
    let spec = match (prod_dim(h), prod_dim(t)) {
        (Some(h), Some(t)) => vec![h, t],
        (Some(h), None) => reshape_dims(&dims, &[dim_spec(&h), DimSpec::Int(-1)]).map_err(|e| n.err(e))?,
        (None, Some(t)) => reshape_dims(&dims, &[DimSpec::Int(-1), dim_spec(&t)]).map_err(|e| n.err(e))?,
        _ => return Err(n.unsupported(format!("flatten of {} at axis {a} with symbolic dims on both sides", cx.ty(x)))),
    };
    Ok(vec![cx.reshape(x, &spec)?])
}

pub fn dim_spec(d: &Dim) -> DimSpec {
    match d {
        Dim::Fixed(k) => DimSpec::Int(*k as i64),
        Dim::Sym(s) => DimSpec::Sym(s.to_string()),
    }
}

pub fn transpose(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let perm = n.usizes("perm")?;
    Ok(vec![cx.op(Op::Transpose { perm: perm.or_else(|| Some((0..cx.rank(x)).rev().collect())) }, &[x])?])
}

pub fn concat(cx: &mut Ctx, n: &NodeRef) -> Out {
    let mut ins = Vec::new();
    for i in 0..n.num_inputs() {
        if let Some(v) = cx.opt_input(n, i)? {
            ins.push(v);
        }
    }
    let axis = n.int_opt("axis")?.ok_or_else(|| n.err("Concat needs `axis`"))?;
    // Empty pieces add nothing (and may have other dims elsewhere in ONNX).
    let r = ins.first().map(|&v| cx.rank(v)).unwrap_or(0);
    if let Some(a) = normalize_axis(axis, r) {
        let nonempty: Vec<Value> = ins.iter().copied().filter(|&v| cx.dims(v).get(a) != Some(&Dim::Fixed(0))).collect();
        if !nonempty.is_empty() {
            ins = nonempty;
        }
    }
    if ins.len() == 1 {
        return Ok(vec![cx.copy(ins[0])?]);
    }
    Ok(vec![cx.op(Op::Concat { axis }, &ins)?])
}

pub fn split(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let axis = n.int("axis", 0)?;
    let a = normalize_axis(axis, cx.rank(x)).ok_or_else(|| n.err(format!("axis {axis} is out of range")))?;
    let len = cx.dims(x)[a].fixed().ok_or_else(|| n.unsupported("split of a symbolic axis"))? as usize;
    let k = n.num_outputs();
    let sizes: Vec<usize> = if n.has_input(1) {
        let v = cx.need_ints(n, 1, "split sizes")?;
        v.iter()
            .map(|&s| usize::try_from(s).map_err(|_| n.err(format!("split sizes {v:?} hold a negative size"))))
            .collect::<Result<_>>()?
    } else if let Some(s) = n.usizes("split")? {
        s
    } else if let Some(m) = n.int_opt("num_outputs")? {
        if m < 1 || m as u64 != k as u64 {
            return Err(n.err(format!("num_outputs {m} for {k} outputs")));
        }
        let m = m as usize;
        let each = len.div_ceil(m);
        (0..m).map(|i| each.min(len.saturating_sub(i * each))).collect()
    } else {
        if k == 0 || !len.is_multiple_of(k) {
            return Err(n.err(format!("cannot split {len} into {k} equal parts")));
        }
        vec![len / k; k]
    };
    if sizes.len() != k || sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s)) != Some(len) {
        return Err(n.err(format!("split sizes {sizes:?} do not give {k} outputs covering {len}")));
    }
    cx.op_multi(Op::Split { axis, sizes }, &[x])
}

/// Slice bounds from inputs (opset ≥ 10) or attributes.
pub fn slice_spec(cx: &Ctx, n: &NodeRef) -> Result<Slice> {
    if n.has_input(1) {
        let opt = |i: usize, what: &str| if n.has_input(i) { cx.need_ints(n, i, what).map(Some) } else { Ok(None) };
        Ok(Slice {
            starts: cx.need_ints(n, 1, "starts")?,
            ends: cx.need_ints(n, 2, "ends")?,
            axes: opt(3, "axes")?,
            steps: opt(4, "steps")?,
        })
    } else {
        Ok(Slice {
            starts: n.ints("starts")?.unwrap_or_default(),
            ends: n.ints("ends")?.unwrap_or_default(),
            axes: n.ints("axes")?,
            steps: None,
        })
    }
}

pub fn slice(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let s = slice_spec(cx, n)?;
    let k = s.starts.len();
    if s.ends.len() != k
        || s.axes.as_ref().is_some_and(|a| a.len() != k)
        || s.steps.as_ref().is_some_and(|a| a.len() != k)
    {
        return Err(n.err("starts, ends, axes and steps differ in length"));
    }
    if s.steps.as_ref().is_some_and(|v| v.contains(&0)) {
        return Err(n.err("slice step 0"));
    }
    if k == 0 {
        return Ok(vec![cx.copy(x)?]);
    }
    Ok(vec![cx.op(Op::Slice(s), &[x])?])
}

pub fn gather(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (x, i) = (cx.input(n, 0)?, cx.input(n, 1)?);
    Ok(vec![cx.op(Op::Gather { axis: n.int("axis", 0)? }, &[x, i])?])
}

pub fn expand(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let shape =
        cx.need_known(n, 1, "target shape")?.dims().ok_or_else(|| n.err("the shape must be a 1-d int tensor"))?;
    Ok(vec![cx.expand(x, &shape)?])
}

pub fn tile(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let reps = cx.need_ints(n, 1, "repeats")?;
    let dims = cx.dims(x);
    if reps.len() != dims.len() || reps.iter().any(|&r| r < 0) {
        return Err(n.err(format!("repeats {reps:?} do not fit rank {}", dims.len())));
    }
    // [.., d, ..] → [.., 1, d, ..] → expand to [.., r, d, ..] → [.., r·d, ..]
    let mut inter = Vec::new();
    let mut big = Vec::new();
    let mut out = Vec::new();
    for (d, &r) in dims.iter().zip(&reps) {
        inter.extend([Dim::Fixed(1), d.clone()]);
        big.extend([DimSpec::Int(r), dim_spec(d)]);
        out.push(match d {
            Dim::Fixed(k) => Dim::Fixed(
                k.checked_mul(r as u64)
                    .filter(|&t| t <= smelt_ir::shape::MAX_DIM)
                    .ok_or_else(|| n.err(format!("tiling {} by {reps:?} is too large", cx.ty(x))))?,
            ),
            s if r == 1 => s.clone(),
            _ => return Err(n.unsupported("tile of a symbolic dim")),
        });
    }
    let y = cx.reshape(x, &inter)?;
    let y = cx.expand(y, &big)?;
    Ok(vec![cx.reshape(y, &out)?])
}

pub fn pad(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let r = cx.rank(x);
    let mode = match n.string("mode")?.as_deref().unwrap_or("constant") {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        m => return Err(n.unsupported(format!("pad mode `{m}`"))),
    };
    let raw = if n.has_input(1) {
        cx.need_ints(n, 1, "pads")?
    } else {
        n.ints("pads")?.or(n.ints("paddings")?).ok_or_else(|| n.err("no pads"))?
    };
    let value = if n.has_input(2) {
        cx.need_tensor(n, 2, "constant value")?.to_f32().first().copied().unwrap_or(0.0)
    } else {
        n.float("value", 0.0)?
    };
    let axes: Vec<usize> = match axes_of(cx, n, 3)? {
        Some(a) if n.has_input(3) => a
            .iter()
            .map(|&a| normalize_axis(a, r).ok_or_else(|| n.err(format!("axis {a} is out of range"))))
            .collect::<Result<_>>()?,
        _ => (0..r).collect(),
    };
    if raw.len() != 2 * axes.len() {
        return Err(n.err(format!("{} pads for {} axes", raw.len(), axes.len())));
    }
    if let Some(a) = axes.iter().enumerate().find_map(|(k, a)| axes[..k].contains(a).then_some(a)) {
        return Err(n.err(format!("axis {a} is given twice")));
    }
    let mut pads = vec![0i64; 2 * r];
    for (k, &a) in axes.iter().enumerate() {
        pads[a] = raw[k];
        pads[r + a] = raw[axes.len() + k];
    }
    for (a, d) in cx.dims(x).iter().enumerate() {
        let size = d.fixed().map(|d| i128::from(d) + i128::from(pads[a]) + i128::from(pads[r + a]));
        if let Some(size) = size.filter(|s| !(0..=i128::from(smelt_ir::shape::MAX_DIM)).contains(s)) {
            return Err(n.err(format!("pads {raw:?} make axis {a} of {} size {size}", cx.ty(x))));
        }
    }
    let y = pad_crop(cx, x, &pads, mode, value)?;
    Ok(vec![y])
}

/// Pads (positive entries) and crops (negative ones), begins then ends.
pub fn pad_crop(cx: &mut Ctx, x: Value, pads: &[i64], mode: PadMode, value: f32) -> Result<Value> {
    let r = pads.len() / 2;
    let mut y = x;
    if pads.iter().any(|&p| p > 0) {
        let pos: Vec<usize> = pads.iter().map(|&p| p.max(0) as usize).collect();
        y = cx.op(Op::Pad { pads: pos, mode, value }, &[y])?;
    }
    if pads.iter().any(|&p| p < 0) {
        let (mut starts, mut ends, mut axes) = (vec![], vec![], vec![]);
        for a in 0..r {
            // A crop past any size crops all of it, as one of MAX_DIM does (which,
            // unlike i64::MIN, negates).
            let (b, e) = (pads[a].clamp(-(smelt_ir::shape::MAX_DIM as i64), 0), pads[r + a].min(0));
            if b < 0 || e < 0 {
                starts.push(-b);
                ends.push(if e < 0 { e } else { i64::MAX });
                axes.push(a as i64);
            }
        }
        y = cx.op(Op::Slice(Slice { starts, ends, axes: Some(axes), steps: None }), &[y])?;
    }
    if y == x { cx.copy(x) } else { Ok(y) }
}

pub fn where_(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (c, a, b) = (cx.input(n, 0)?, cx.input(n, 1)?, cx.input(n, 2)?);
    Ok(vec![cx.op(Op::Where, &[c, a, b])?])
}

pub fn cast(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let to = if n.op_type() == "CastLike" {
        let t = cx.input(n, 1)?;
        cx.ty(t).dtype
    } else {
        dtype(n.int_opt("to")?.ok_or_else(|| n.err("Cast needs `to`"))? as i32).map_err(|e| n.unsupported(e))?
    };
    if cx.ty(x).dtype == to {
        return Ok(vec![x]);
    }
    Ok(vec![cx.cast(x, to)?])
}

pub fn identity(cx: &mut Ctx, n: &NodeRef) -> Out {
    Ok(vec![cx.input(n, 0)?])
}

pub fn dropout(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let training = if n.has_input(2) {
        cx.need_tensor(n, 2, "training mode")?.to_i64().first().copied().unwrap_or(0) != 0
    } else {
        false
    };
    let ratio = if n.has_input(1) {
        cx.need_floats(n, 1, "ratio")?.first().copied().unwrap_or(0.5)
    } else {
        n.float("ratio", 0.5)?
    };
    if training && ratio > 0.0 {
        return Err(n.unsupported("dropout in training mode"));
    }
    let mut outs = vec![x];
    if n.has_output(1) {
        // All true, in x's shape: a ∨ ¬a for a = (x == x).
        let a = cx.binary(smelt_ir::BinaryOp::Equal, x, x)?;
        let na = cx.unary(smelt_ir::UnaryOp::Not, a)?;
        outs.push(cx.binary(smelt_ir::BinaryOp::Or, a, na)?);
    }
    Ok(outs)
}

pub fn constant_of_shape(cx: &mut Ctx, n: &NodeRef) -> Out {
    let dims = cx.need_known(n, 0, "shape")?.dims().ok_or_else(|| n.err("the shape must be a 1-d int tensor"))?;
    let dims: Vec<Dim> = dims
        .iter()
        .map(|d| match d {
            DimSpec::Int(k) => u64::try_from(*k).map(Dim::Fixed).map_err(|_| n.err(format!("negative size {k}"))),
            DimSpec::Sym(s) => Ok(Dim::sym(s)),
        })
        .collect::<Result<_>>()?;
    let v = match n.tensor("value")? {
        Some(t) => from_proto(t, None)?,
        None => Tensor::scalar_f32(0.0),
    };
    Ok(vec![cx.filled(&v, &dims)?])
}

pub fn range(cx: &mut Ctx, n: &NodeRef) -> Out {
    let s = cx.need_tensor(n, 0, "start")?;
    let l = cx.need_floats(n, 1, "limit")?;
    let d = cx.need_floats(n, 2, "delta")?;
    let (s0, l, d) = match (&s.to_f32()[..], &l[..], &d[..]) {
        (&[s0], &[l], &[d]) => (s0, l, d),
        (s0, l, d) => {
            return Err(n.err(format!("start, limit and delta must be one value each, found {s0:?}, {l:?}, {d:?}")));
        }
    };
    if d == 0.0 {
        return Err(n.err("Range with delta 0"));
    }
    let count = ((l - s0) / d).ceil().max(0.0) as usize;
    if count > 1 << 24 {
        return Err(n.unsupported("Range too long"));
    }
    let v: Vec<f32> = (0..count).map(|i| s0 + i as f32 * d).collect();
    let t = Tensor::new(vec![count], Data::from_f32(s.dtype(), &v)).map_err(|e| n.err(e.to_string()))?;
    Ok(vec![cx.konst(t)])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("Reshape", reshape),
    ("Transpose", transpose),
    ("Concat", concat),
    ("Split", split),
    ("Slice", slice),
    ("Gather", gather),
    ("Squeeze", squeeze),
    ("Unsqueeze", unsqueeze),
    ("Flatten", flatten),
    ("Expand", expand),
    ("Tile", tile),
    ("Pad", pad),
    ("Where", where_),
    ("Cast", cast),
    ("CastLike", cast),
    ("Identity", identity),
    ("Dropout", dropout),
    ("ConstantOfShape", constant_of_shape),
    ("Range", range),
];
