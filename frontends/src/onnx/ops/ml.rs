//! Ops of the `ai.onnx.ml` domain (what scikit-learn models exported by
//! skl2onnx use), written with smelt's ops: Binarizer, ArrayFeatureExtractor,
//! Scaler, Normalizer, LinearRegressor and LinearClassifier (integer class
//! labels; post transforms NONE, LOGISTIC, SOFTMAX); the tree ensembles are in
//! [`super::trees`]. SVMs, string labels and ZipMap are not here yet.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{ArgKind, ReduceKind};
use smelt_ir::{BinaryOp, DType, Dim, Op, Tensor, UnaryOp, Value};

type Out = Result<Vec<Value>>;

pub(crate) const ML_IMPORTERS: &[(&str, super::Importer)] = &[
    ("Binarizer", binarizer),
    ("ArrayFeatureExtractor", array_feature_extractor),
    ("Scaler", scaler),
    ("Normalizer", normalizer),
    ("LinearRegressor", linear_regressor),
    ("LinearClassifier", linear_classifier),
    ("TreeEnsembleRegressor", super::trees::tree_ensemble_regressor),
    ("TreeEnsembleClassifier", super::trees::tree_ensemble_classifier),
];

/// The feature count of `[N, C]` input `x`.
fn features(cx: &Ctx, n: &NodeRef, x: Value) -> Result<usize> {
    match cx.dims(x)[..] {
        [_, Dim::Fixed(c)] => Ok(c as usize),
        _ => Err(n.err(format!("the input must be [N, C] with C fixed, found {}", cx.ty(x)))),
    }
}

/// Scaler: `(x − offset) · scale`, one value for all features or one each.
pub fn scaler(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let x = cx.cast(x, DType::F32)?;
    let c = cx.dims(x).last().and_then(Dim::fixed).ok_or_else(|| n.err("Scaler needs a fixed last dim"))? as usize;
    let mut vec = |name: &str, default: f32| -> Result<Value> {
        let v = n.floats(name)?.unwrap_or_else(|| vec![default]);
        if v.len() != 1 && v.len() != c {
            return Err(n.err(format!("{name} has {} values for {c} features", v.len())));
        }
        Ok(cx.konst(Tensor::f32(vec![v.len()], v).map_err(|e| n.err(e.to_string()))?))
    };
    let (offset, scale) = (vec("offset", 0.0)?, vec("scale", 1.0)?);
    let d = cx.binary(BinaryOp::Sub, x, offset)?;
    Ok(vec![cx.binary(BinaryOp::Mul, d, scale)?])
}

/// Normalizer: each row divided by its max |x|, L1 or L2 norm (at least 1e-30).
pub fn normalizer(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let x = cx.cast(x, DType::F32)?;
    features(cx, n, x)?;
    let a = cx.unary(UnaryOp::Abs, x)?;
    let norm = match n.string("norm")?.as_deref().unwrap_or("MAX") {
        "MAX" => cx.op(Op::Reduce { kind: ReduceKind::Max, axes: vec![1], keepdims: true }, &[a])?,
        "L1" => cx.op(Op::Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: true }, &[a])?,
        "L2" => cx.op(Op::Reduce { kind: ReduceKind::L2, axes: vec![1], keepdims: true }, &[x])?,
        m => return Err(n.err(format!("unknown norm `{m}` (MAX, L1 or L2)"))),
    };
    let tiny = cx.scalar(1e-30, DType::F32);
    let norm = cx.binary(BinaryOp::Max, norm, tiny)?;
    Ok(vec![cx.binary(BinaryOp::Div, x, norm)?])
}

/// `x · Wᵀ + b` for `coefficients` of `rows` rows of `c` features.
fn affine(cx: &mut Ctx, n: &NodeRef, x: Value, rows: usize, c: usize) -> Result<Value> {
    let w = n.floats("coefficients")?.ok_or_else(|| n.err("coefficients are missing"))?;
    if w.len() != rows * c {
        return Err(n.err(format!("{} coefficients for {rows} outputs of {c} features", w.len())));
    }
    // [rows, c] → [c, rows]
    let wt: Vec<f32> = (0..c * rows).map(|e| w[(e % rows) * c + e / rows]).collect();
    let wt = cx.konst(Tensor::f32(vec![c, rows], wt).map_err(|e| n.err(e.to_string()))?);
    let y = cx.op(Op::MatMul, &[x, wt])?;
    match n.floats("intercepts")? {
        Some(b) if b.len() == rows => {
            let b = cx.konst(Tensor::f32(vec![rows], b).map_err(|e| n.err(e.to_string()))?);
            cx.binary(BinaryOp::Add, y, b)
        }
        Some(b) => Err(n.err(format!("{} intercepts for {rows} outputs", b.len()))),
        None => Ok(y),
    }
}

/// LinearRegressor: `x · Wᵀ + b` (post transform NONE).
pub fn linear_regressor(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let x = cx.cast(x, DType::F32)?;
    let c = features(cx, n, x)?;
    if n.string("post_transform")?.as_deref().unwrap_or("NONE") != "NONE" {
        return Err(n.unsupported("a post transform other than NONE"));
    }
    let targets = n.int("targets", 1)?;
    if !(1..=1 << 20).contains(&targets) {
        return Err(n.err(format!("targets {targets} is out of range")));
    }
    Ok(vec![affine(cx, n, x, targets as usize, c)?])
}

/// LinearClassifier: scores `x · Wᵀ + b` (a single score column with two class
/// labels becomes `[−s, s]`), the post transform, and the label of the largest
/// score (or, with one column, of a score above 0 — 0.5 after a transform).
pub fn linear_classifier(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let x = cx.cast(x, DType::F32)?;
    let c = features(cx, n, x)?;
    if n.has_attr("classlabels_strings") {
        return Err(n.unsupported("string class labels (smelt has no string tensors)"));
    }
    let labels = n.ints("classlabels_ints")?;
    let w = n.floats("coefficients")?.ok_or_else(|| n.err("coefficients are missing"))?;
    if c == 0 || w.len() % c != 0 {
        return Err(n.err(format!("{} coefficients do not fit {c} features", w.len())));
    }
    let rows = w.len() / c;
    let mut scores = affine(cx, n, x, rows, c)?;
    let classes = labels.as_ref().map_or(0, Vec::len);
    if rows == 1 && classes == 2 {
        let neg = cx.unary(UnaryOp::Neg, scores)?;
        scores = cx.op(Op::Concat { axis: 1 }, &[neg, scores])?;
    }
    let transform = n.string("post_transform")?.unwrap_or_else(|| "NONE".into());
    scores = match transform.as_str() {
        "NONE" => scores,
        "LOGISTIC" => cx.unary(UnaryOp::Sigmoid, scores)?,
        "SOFTMAX" => cx.op(Op::Softmax { axis: 1, log: false }, &[scores])?,
        t => return Err(n.unsupported(format!("post transform {t}"))),
    };
    let cols = cx.dims(scores)[1].fixed().unwrap_or(1) as usize;
    let label = if cols > 1 {
        let i = cx.op(Op::ArgReduce { kind: ArgKind::Max, axis: 1, keepdims: false }, &[scores])?;
        match labels {
            Some(l) if l.len() == cols => {
                let table = cx.konst(Tensor::i64(vec![cols], l).map_err(|e| n.err(e.to_string()))?);
                cx.op(Op::Gather { axis: 0 }, &[table, i])?
            }
            Some(l) => return Err(n.err(format!("{} class labels for {cols} scores", l.len()))),
            None => i,
        }
    } else {
        let threshold = cx.scalar(if transform == "NONE" { 0.0 } else { 0.5 }, DType::F32);
        let s = cx.reshape(scores, &[cx.dims(scores)[0].clone()])?;
        let hit = cx.binary(BinaryOp::GreaterEqual, s, threshold)?;
        let one = labels.as_ref().and_then(|l| l.first().copied()).unwrap_or(1);
        let (on, off) = (cx.konst(Tensor::i64(vec![], vec![one]).expect("scalar")), cx.konst(Tensor::i64(vec![], vec![0]).expect("scalar")));
        cx.op(Op::Where, &[hit, on, off])?
    };
    Ok(vec![label, scores])
}

/// Binarizer: 1 where `x > threshold`, else 0, in x's dtype.
pub fn binarizer(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let d = cx.ty(x).dtype;
    let t = cx.scalar(n.float("threshold", 0.0)? as f64, d);
    let above = cx.binary(BinaryOp::Greater, x, t)?;
    Ok(vec![cx.cast(above, d)?])
}

/// ArrayFeatureExtractor: the elements of the last axis at the (flattened)
/// indices; a 1-d input gives one row, as ONNX Runtime and the reference do.
pub fn array_feature_extractor(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let idx = cx.input(n, 1)?;
    if !matches!(cx.ty(idx).dtype, DType::I64 | DType::I32) {
        return Err(n.err(format!("the indices must be int64, found {}", cx.ty(idx))));
    }
    let k = cx.ty(idx).shape.numel().ok_or_else(|| n.unsupported("indices of symbolic size"))?;
    let flat = cx.reshape(idx, &[Dim::Fixed(k)])?;
    let mut dims = cx.dims(x);
    let x = if dims.len() == 1 {
        dims.insert(0, Dim::Fixed(1));
        cx.reshape(x, &dims)?
    } else {
        x
    };
    Ok(vec![cx.op(Op::Gather { axis: -1 }, &[x, flat])?])
}
