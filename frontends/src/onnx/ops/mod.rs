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
    Some(match op {
        "Sum" | "Mean" | "Max" | "Min" => math::variadic,
        "Clip" => math::clip,
        "MatMul" => math::matmul,
        "Gemm" => math::gemm,
        "Softmax" | "LogSoftmax" => math::softmax,
        "Conv" => nn::conv,
        "CausalConvWithState" => causal_conv::causal_conv_with_state,
        "ConvTranspose" => conv_transpose::conv_transpose,
        "MaxPool" | "AveragePool" => nn::pool,
        "LpPool" => nn::lp_pool,
        "GlobalAveragePool" | "GlobalMaxPool" => nn::global_pool,
        "BatchNormalization" => nn::batch_norm,
        "LayerNormalization" => nn::layer_norm,
        "InstanceNormalization" => nn::instance_norm,
        "GroupNormalization" => nn::group_norm,
        "RMSNormalization" => nn::rms_norm,
        "ArgMax" | "ArgMin" => reduce::arg,
        "TopK" => reduce::topk,
        "Reshape" => tensor::reshape,
        "Transpose" => tensor::transpose,
        "Concat" => tensor::concat,
        "Split" => tensor::split,
        "Slice" => tensor::slice,
        "Gather" => tensor::gather,
        "Squeeze" => tensor::squeeze,
        "Unsqueeze" => tensor::unsqueeze,
        "Flatten" => tensor::flatten,
        "Expand" => tensor::expand,
        "Tile" => tensor::tile,
        "Pad" => tensor::pad,
        "Where" => tensor::where_,
        "Cast" | "CastLike" => tensor::cast,
        "Identity" => tensor::identity,
        "Dropout" => tensor::dropout,
        "ConstantOfShape" => tensor::constant_of_shape,
        "Range" => tensor::range,
        // Always folded (see `fold`): their importers only run when folding cannot.
        "Constant" | "Shape" | "Size" => unfoldable,
        "LSTM" | "GRU" => rnn::lstm_gru,
        "RNN" => rnn::rnn,
        "QuantizeLinear" => quant::quantize,
        "DequantizeLinear" => quant::dequantize,
        "QLinearMatMul" => quant::qlinear_matmul,
        "QLinearConv" => quant::qlinear_conv,
        "MatMulInteger" | "ConvInteger" => quant::integer,
        "DynamicQuantizeLinear" => quant::dynamic_quantize,
        "Attention" => attention::attention,
        _ => return None,
    })
}

fn unfoldable(_cx: &mut Ctx, n: &NodeRef) -> Result<Vec<Value>> {
    Err(n.unsupported("its input's shape is not known at import time"))
}

/// Every op type the importer knows (default domain), sorted.
pub fn supported() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = [math::UNARY, math::BINARY, reduce::REDUCE].concat();
    v.extend([
        "Sum",
        "Mean",
        "Max",
        "Min",
        "Clip",
        "MatMul",
        "Gemm",
        "Softmax",
        "LogSoftmax",
        "Conv",
        "ConvTranspose",
        "CausalConvWithState",
        "MaxPool",
        "AveragePool",
        "LpPool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "LayerNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "ArgMax",
        "ArgMin",
        "TopK",
        "Reshape",
        "Transpose",
        "Concat",
        "Split",
        "Slice",
        "Gather",
        "Squeeze",
        "Unsqueeze",
        "Flatten",
        "Expand",
        "Tile",
        "Pad",
        "Where",
        "Cast",
        "CastLike",
        "Identity",
        "Dropout",
        "ConstantOfShape",
        "Range",
        "Constant",
        "Shape",
        "Size",
        "LSTM",
        "GRU",
        "RNN",
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearMatMul",
        "QLinearConv",
        "MatMulInteger",
        "ConvInteger",
        "DynamicQuantizeLinear",
        "Attention",
    ]);
    v.sort_unstable();
    v
}
