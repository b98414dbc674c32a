//! One importer per ONNX op family, as ONNX groups them: [`math`] (elementwise,
//! MatMul, Gemm, Softmax), [`nn`] (convolution, pooling, normalization),
//! [`conv_transpose`], [`causal_conv`], [`tensor`] (shape and data movement), [`reduce`], [`rnn`]
//! (LSTM, GRU, RNN), [`quant`] and [`attention`]. [`lookup`] maps an op type to its
//! importer; an op it does not know is reported as unsupported.

pub mod attention;
pub mod causal_conv;
pub mod conv_transpose;
pub mod math;
pub mod nn;
pub mod quant;
pub mod reduce;
pub mod rnn;
pub mod tensor;

use super::ctx::Ctx;
use super::error::Result;
use super::node::NodeRef;
use smelt_ir::Value;

/// Imports one node: its outputs' values, in order (trailing optional ones may be
/// left out when not requested).
pub(crate) type Importer = fn(&mut Ctx, &NodeRef) -> Result<Vec<Value>>;

/// The importer of an op type of the default domain.
pub(crate) fn lookup(domain: &str, op: &str) -> Option<Importer> {
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
    IMPORTERS.iter().find(|(name, _)| *name == op).map(|(_, f)| *f)
}

/// The importers of the default domain's op types other than the plain
/// elementwise and reduction ones (`math::UNARY`, `math::BINARY`,
/// `reduce::REDUCE`): one entry per op type, what both [`lookup`] and
/// [`supported`] read.
const IMPORTERS: &[(&str, Importer)] = &[
    ("Sum", math::variadic),
    ("Mean", math::variadic),
    ("Max", math::variadic),
    ("Min", math::variadic),
    ("Clip", math::clip),
    ("MatMul", math::matmul),
    ("Gemm", math::gemm),
    ("Softmax", math::softmax),
    ("LogSoftmax", math::softmax),
    ("Conv", nn::conv),
    ("CausalConvWithState", causal_conv::causal_conv_with_state),
    ("ConvTranspose", conv_transpose::conv_transpose),
    ("MaxPool", nn::pool),
    ("AveragePool", nn::pool),
    ("LpPool", nn::lp_pool),
    ("GlobalAveragePool", nn::global_pool),
    ("GlobalMaxPool", nn::global_pool),
    ("BatchNormalization", nn::batch_norm),
    ("LayerNormalization", nn::layer_norm),
    ("InstanceNormalization", nn::instance_norm),
    ("GroupNormalization", nn::group_norm),
    ("RMSNormalization", nn::rms_norm),
    ("ArgMax", reduce::arg),
    ("ArgMin", reduce::arg),
    ("TopK", reduce::topk),
    ("Reshape", tensor::reshape),
    ("Transpose", tensor::transpose),
    ("Concat", tensor::concat),
    ("Split", tensor::split),
    ("Slice", tensor::slice),
    ("Gather", tensor::gather),
    ("Squeeze", tensor::squeeze),
    ("Unsqueeze", tensor::unsqueeze),
    ("Flatten", tensor::flatten),
    ("Expand", tensor::expand),
    ("Tile", tensor::tile),
    ("Pad", tensor::pad),
    ("Where", tensor::where_),
    ("Cast", tensor::cast),
    ("CastLike", tensor::cast),
    ("Identity", tensor::identity),
    ("Dropout", tensor::dropout),
    ("ConstantOfShape", tensor::constant_of_shape),
    ("Range", tensor::range),
    // Always folded (see `fold`): their importers only run when folding cannot.
    ("Constant", unfoldable),
    ("Shape", unfoldable),
    ("Size", unfoldable),
    ("LSTM", rnn::lstm_gru),
    ("GRU", rnn::lstm_gru),
    ("RNN", rnn::rnn),
    ("QuantizeLinear", quant::quantize),
    ("DequantizeLinear", quant::dequantize),
    ("QLinearMatMul", quant::qlinear_matmul),
    ("QLinearConv", quant::qlinear_conv),
    ("MatMulInteger", quant::integer),
    ("ConvInteger", quant::integer),
    ("DynamicQuantizeLinear", quant::dynamic_quantize),
    ("Attention", attention::attention),
];
fn unfoldable(_cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    Err(n.unsupported("its input's shape is not known at import time"))
}

/// Every op type the importer knows (default domain), sorted.
pub fn supported() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = [math::UNARY, math::BINARY, reduce::REDUCE].concat();
    v.extend(IMPORTERS.iter().map(|(name, _)| *name));
    v.sort_unstable();
    v
}
