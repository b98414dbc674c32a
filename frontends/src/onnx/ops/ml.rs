//! Ops of the `ai.onnx.ml` domain that smelt's ops express (more of the domain
//! — trees, linear models, scalers — is still to come): Binarizer and
//! ArrayFeatureExtractor.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::{BinaryOp, DType, Dim, Op, Value};

type Out = Result<Vec<Value>>;

pub(crate) const ML_IMPORTERS: &[(&str, super::Importer)] =
    &[("Binarizer", binarizer), ("ArrayFeatureExtractor", array_feature_extractor)];

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
