//! The ONNX protobuf messages (`ModelProto`, `GraphProto`, `NodeProto`, `TensorProto`,
//! …), generated at build time by prost from the vendored `proto/onnx.proto`.
//! proto2 optional fields come out as `Option<…>` with accessor methods that return
//! the default when absent.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
