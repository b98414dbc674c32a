//! One importer per ONNX op family, as ONNX groups them: [`math`] (elementwise,
//! MatMul, Gemm, Softmax), [`nn`] (convolution, pooling, normalization),
//! [`conv_transpose`], [`causal_conv`], [`tensor`] (shape and data movement), [`indexing`] (GatherElements, scatters, Trilu), [`reduce`], [`resize`], [`rnn`]
//! (LSTM, GRU, RNN), [`quant`], [`attention`], [`loss`], [`spectral`] (DFT, STFT, windows),
//! [`layout`] (DepthToSpace, Col2Im, …), [`grid`] (GridSample, AffineGrid), [`rotary`], [`linear_attention`], [`tfidf`],
//! [`detect`] (NonMaxSuppression), of `ai.onnx.preview`
//! [`flex`] (FlexAttention), of `ai.onnx.ml` [`ml`] and [`trees`], of ONNX Runtime's
//! `com.microsoft` domain, [`moe`]. [`lookup`] maps an op type to its
//! importer; an op it does not know is reported as unsupported.

pub mod attention;
pub mod causal_conv;
pub mod conv_transpose;
pub mod detect;
pub mod einsum;
pub mod flex;
pub mod grid;
pub mod indexing;
pub mod layout;
pub mod linear_attention;
pub mod loss;
pub mod ml;
pub mod math;
pub mod moe;
pub mod nn;
pub mod quant;
pub mod reduce;
pub mod resize;
pub mod rnn;
pub mod rotary;
pub mod spectral;
pub mod tensor;
pub mod tfidf;
pub mod trees;
pub mod trig;

use super::ctx::Ctx;
use super::error::Result;
use super::node::NodeRef;
use smelt_ir::Value;

/// Imports one node: its outputs' values, in order (trailing optional ones may be
/// left out when not requested).
pub(crate) type Importer = fn(&mut Ctx, &NodeRef) -> Result<Vec<Value>>;

/// The importer of an op type of the default domain (or of `com.microsoft`,
/// `ai.onnx.ml` or `ai.onnx.preview`).
pub(crate) fn lookup(domain: &str, op: &str) -> Option<Importer> {
    if domain == "com.microsoft" {
        return moe::MS_IMPORTERS.iter().find(|(name, _)| *name == op).map(|(_, f)| *f);
    }
    if domain == "ai.onnx.ml" {
        return ml::ML_IMPORTERS.iter().find(|(name, _)| *name == op).map(|(_, f)| *f);
    }
    if domain == "ai.onnx.preview" {
        return flex::PREVIEW_IMPORTERS.iter().find(|(name, _)| *name == op).map(|(_, f)| *f);
    }
    if !matches!(domain, "" | "ai.onnx") {
        return None;
    }
    if math::UNARY.contains(&op) {
        return Some(math::unary);
    }
    if math::BINARY.contains(&op) {
        return Some(math::binary);
    }
    if reduce::REDUCE.contains(&op) {
        return Some(reduce::reduce);
    }
    TABLES.iter().flat_map(|t| t.iter()).find(|(name, _)| *name == op).map(|(_, f)| *f)
}

/// The default domain's op types other than the plain elementwise and reduction
/// ones (`math::UNARY`, `math::BINARY`, `reduce::REDUCE`) are in each family's
/// `IMPORTERS` table, one entry per op type, which both [`lookup`] and
/// [`supported`] read; these are the ones of no family, always folded (see
/// `fold`): their importers only run when folding cannot.
const IMPORTERS: &[(&str, Importer)] = &[
    // Imported as the branch it takes when its condition is known
    // (`onnx/control.rs`); this entry makes it known to the importer.
    ("If", run_time_if),
    // Unrolled at import when their trip counts are known (`onnx/control.rs`).
    ("Loop", run_time_loop),
    ("Scan", run_time_loop),
    ("Constant", unfoldable),
    ("Shape", unfoldable),
    ("Size", unfoldable),
];

/// Every family's table of importers.
const TABLES: &[&[(&str, Importer)]] = &[
    IMPORTERS,
    math::IMPORTERS,
    nn::IMPORTERS,
    causal_conv::IMPORTERS,
    conv_transpose::IMPORTERS,
    einsum::IMPORTERS,
    reduce::IMPORTERS,
    resize::IMPORTERS,
    tensor::IMPORTERS,
    indexing::IMPORTERS,
    rnn::IMPORTERS,
    quant::IMPORTERS,
    attention::IMPORTERS,
    loss::IMPORTERS,
    spectral::IMPORTERS,
    layout::IMPORTERS,
    grid::IMPORTERS,
    rotary::IMPORTERS,
    linear_attention::IMPORTERS,
    tfidf::IMPORTERS,
    detect::IMPORTERS,
];
fn unfoldable(_cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    Err(n.unsupported("its input's shape is not known at import time"))
}

fn run_time_loop(_cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    Err(n.unsupported("a loop whose trip count is only known at run time (control flow is not supported yet)"))
}

fn run_time_if(_cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    Err(n.err("If is imported by onnx/control.rs, not by this table"))
}

/// Every op type the importer knows (default domain), sorted.
pub fn supported() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = [math::UNARY, math::BINARY, reduce::REDUCE].concat();
    v.extend(TABLES.iter().flat_map(|t| t.iter()).map(|(name, _)| *name));
    v.sort_unstable();
    v
}
