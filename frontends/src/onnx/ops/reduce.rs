//! ONNX reductions: ReduceSum/Mean/Max/Min/Prod/L2 directly, ReduceL1,
//! ReduceSumSquare, ReduceLogSum and ReduceLogSumExp written with smelt ops; axes
//! from the attribute (older opsets) or the second input (ReduceSum from 13, the
//! rest from 18). Also ArgMax/ArgMin (with `select_last_index`), TopK, CumSum
//! (a constant triangle, multiplied and summed) and CumProd (the elements
//! outside the triangle replaced by 1, multiplied).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{ArgKind, ReduceKind, Slice, TopK, reduce::reduce_axes};
use smelt_ir::{BinaryOp, DType, Dim, Op, UnaryOp, Value};

type Out = Result<Vec<Value>>;

/// The reduction ops this file imports.
pub const REDUCE: &[&str] = &[
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL2",
    "ReduceL1",
    "ReduceSumSquare",
    "ReduceLogSum",
    "ReduceLogSumExp",
];

pub fn reduce(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let axes = if n.has_input(1) { Some(cx.need_ints(n, 1, "axes")?) } else { n.ints("axes")? };
    let keep = n.bool("keepdims", true)?;
    let axes = match axes {
        Some(a) if !a.is_empty() => a,
        _ if n.bool("noop_with_empty_axes", false)? => return Ok(vec![cx.copy(x)?]),
        _ => vec![],
    };
    let r = cx.rank(x);
    let resolved = reduce_axes(&axes, r).map_err(|e| n.err(e))?;
    let red = |cx: &mut Ctx, kind: ReduceKind, v: Value, keepdims: bool| {
        cx.op(Op::Reduce { kind, axes: axes.clone(), keepdims }, &[v])
    };
    let d = cx.ty(x).dtype;
    if d == DType::Bool && matches!(n.op_type(), "ReduceMax" | "ReduceMin") {
        // any / all: on 0/1 as u8.
        let kind = if n.op_type() == "ReduceMax" { ReduceKind::Max } else { ReduceKind::Min };
        let b = cx.cast(x, DType::U8)?;
        let y = red(cx, kind, b, keep)?;
        return Ok(vec![cx.cast(y, DType::Bool)?]);
    }
    let y = match n.op_type() {
        "ReduceSum" => red(cx, ReduceKind::Sum, x, keep)?,
        "ReduceMean" => red(cx, ReduceKind::Mean, x, keep)?,
        "ReduceMax" => red(cx, ReduceKind::Max, x, keep)?,
        "ReduceMin" => red(cx, ReduceKind::Min, x, keep)?,
        "ReduceProd" => red(cx, ReduceKind::Prod, x, keep)?,
        "ReduceL2" => red(cx, ReduceKind::L2, x, keep)?,
        "ReduceL1" => {
            let a = cx.unary(UnaryOp::Abs, x)?;
            red(cx, ReduceKind::Sum, a, keep)?
        }
        "ReduceSumSquare" => {
            let s = cx.binary(BinaryOp::Mul, x, x)?;
            red(cx, ReduceKind::Sum, s, keep)?
        }
        "ReduceLogSum" => {
            let s = red(cx, ReduceKind::Sum, x, keep)?;
            cx.unary(UnaryOp::Log, s)?
        }
        "ReduceLogSumExp" => {
            // m + log Σ exp(x − m), with m the max (finite when x has finite values).
            let m = red(cx, ReduceKind::Max, x, true)?;
            let zero = cx.scalar(0.0, d);
            let fin = cx.binary(BinaryOp::Sub, m, m)?;
            let finite = cx.binary(BinaryOp::Equal, fin, zero)?;
            let m = cx.op(Op::Where, &[finite, m, zero])?;
            let c = cx.binary(BinaryOp::Sub, x, m)?;
            let e = cx.unary(UnaryOp::Exp, c)?;
            let s = red(cx, ReduceKind::Sum, e, true)?;
            let l = cx.unary(UnaryOp::Log, s)?;
            let y = cx.binary(BinaryOp::Add, l, m)?;
            if keep {
                y
            } else {
                let dims: Vec<Dim> =
                    cx.dims(y).into_iter().enumerate().filter(|(i, _)| !resolved.contains(i)).map(|(_, d)| d).collect();
                cx.reshape(y, &dims)?
            }
        }
        _ => return Err(n.unsupported("no importer")),
    };
    Ok(vec![y])
}

pub fn arg(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let kind = if n.op_type() == "ArgMax" { ArgKind::Max } else { ArgKind::Min };
    let axis = n.int("axis", 0)?;
    let keepdims = n.bool("keepdims", true)?;
    if !n.bool("select_last_index", false)? {
        return Ok(vec![cx.op(Op::ArgReduce { kind, axis, keepdims }, &[x])?]);
    }
    // The last index of the extreme: the first one in the reversed axis, mirrored.
    let r = cx.rank(x);
    let a = smelt_ir::shape::normalize_axis(axis, r).ok_or_else(|| n.err(format!("axis {axis} is out of range")))?;
    let len = cx.dims(x)[a].fixed().ok_or_else(|| n.unsupported("select_last_index over a symbolic axis"))?;
    let rev = Slice { starts: vec![-1], ends: vec![i64::MIN], axes: Some(vec![a as i64]), steps: Some(vec![-1]) };
    let xr = cx.op(Op::Slice(rev), &[x])?;
    let i = cx.op(Op::ArgReduce { kind, axis, keepdims }, &[xr])?;
    let last = cx.scalar(len as f64 - 1.0, DType::I64);
    Ok(vec![cx.binary(BinaryOp::Sub, last, i)?])
}

pub fn topk(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let k = if n.has_input(1) {
        *cx.need_ints(n, 1, "k")?.first().ok_or_else(|| n.err("empty k"))?
    } else {
        n.int_opt("k")?.ok_or_else(|| n.err("no k"))?
    };
    let k = usize::try_from(k).map_err(|_| n.err(format!("k = {k} is negative")))?;
    let t = TopK { k, axis: n.int("axis", -1)?, largest: n.bool("largest", true)?, sorted: n.bool("sorted", true)? };
    cx.op_multi(Op::TopK(t), &[x])
}

/// CumSum along `axis` (a constant input; its size fixed), `exclusive` and
/// `reverse` as ONNX: `y[.., j, ..] = Σᵢ x[.., i, ..]·M[i, j]` with `M` a
/// constant 0/1 triangle (i ≤ j; i < j exclusive; mirrored reversed), written
/// as a broadcast product summed over `axis` (O(n²) per line, for the short
/// axes models scan).
pub fn cumsum(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let axis = *cx.need_ints(n, 1, "axis")?.first().ok_or_else(|| n.err("empty axis"))?;
    let (exclusive, reverse) = (n.bool("exclusive", false)?, n.bool("reverse", false)?);
    let prod = n.op_type() == "CumProd";
    let dims = cx.dims(x);
    let r = dims.len();
    let a = smelt_ir::shape::normalize_axis(axis, r).ok_or_else(|| n.err(format!("axis {axis} is out of range for rank {r}")))?;
    let len = dims[a].fixed().ok_or_else(|| n.unsupported(format!("{} over a symbolic axis", n.op_type())))? as usize;
    super::indexing::count(n, &[len, len])?;
    let d = cx.ty(x).dtype;
    let takes = |i: usize, j: usize| match (reverse, exclusive) {
        (false, false) => i <= j,
        (false, true) => i < j,
        (true, false) => i >= j,
        (true, true) => i > j,
    };
    // M at dims (a, a + 1) of a rank r + 1 shape, 1 elsewhere.
    let mut mshape = vec![1usize; r + 1];
    mshape[a] = len;
    mshape[a + 1] = len;
    // x with a 1 inserted after `axis`.
    let mut xd = dims.clone();
    xd.insert(a + 1, Dim::Fixed(1));
    let xu = cx.reshape(x, &xd)?;
    let (p, kind) = if prod {
        // The product of the taken elements: the others count as 1.
        let m: Vec<bool> = (0..len * len).map(|e| takes(e / len, e % len)).collect();
        let mk = cx.konst(smelt_ir::Tensor::new(mshape, smelt_ir::Data::Bool(m)).map_err(|e| n.err(format!("{e:?}")))?);
        let one = cx.scalar(1.0, d);
        (cx.op(Op::Where, &[mk, xu, one])?, ReduceKind::Prod)
    } else {
        let m: Vec<f32> = (0..len * len).map(|e| f32::from(u8::from(takes(e / len, e % len)))).collect();
        let mk = cx.konst(smelt_ir::Tensor::new(mshape, smelt_ir::Data::from_f32(d, &m)).map_err(|e| n.err(format!("{e:?}")))?);
        (cx.binary(BinaryOp::Mul, xu, mk)?, ReduceKind::Sum)
    };
    Ok(vec![cx.op(Op::Reduce { kind, axes: vec![a as i64], keepdims: false }, &[p])?])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("CumSum", cumsum),
    ("CumProd", cumsum),
    ("ArgMax", arg),
    ("ArgMin", arg),
    ("TopK", topk),
];
