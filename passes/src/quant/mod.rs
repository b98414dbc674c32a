//! Quantization in the optimizer: calibration statistics and range methods
//! ([`calib`]), post-training insertion of quantize/dequantize pairs around the
//! layers that can run in int8 ([`insert`]), dynamic quantization of matmuls with
//! run-time activation parameters ([`dynamic`]), and the `fold-qdq` pass that turns
//! such pairs (ours, or an ONNX QDQ model's) into integer kernels ([`FoldQdq`]).

pub mod calib;
pub mod dynamic;
mod fold;
pub mod insert;

pub use fold::FoldQdq;
