//! Quantization in the optimizer: calibration statistics and range methods
//! ([`calib`]), post-training insertion of quantize/dequantize pairs around the
//! layers that can run in int8 ([`insert`]), and the `fold-qdq` pass that turns
//! such pairs (ours, or an ONNX QDQ model's) into integer kernels ([`FoldQdq`]).

pub mod calib;
mod fold;
pub mod insert;

pub use fold::FoldQdq;
