//! smelt: an ML compiler and graph optimizer — this crate is the facade over its
//! parts, and the `smelt` command line.
//!
//! The parts: the IR ([`ir`]: types, the op catalogue, graphs and their builder,
//! the canonical text format, the verifier, safetensors weights); the frontends
//! ([`frontends`]: the ONNX importer and the model builders); the optimizer
//! ([`passes`]: equality saturation with egg, fusion, quantization, the cost model);
//! the backends ([`codegen`]: kernel IR lowered to Cranelift, LLVM or WGSL); and the
//! runtime ([`runtime`]: the reference interpreter, which every backend is tested
//! against, and the executor that plans memory and runs compiled kernels).
//!
//! ```
//! use smelt::{Tensor, parse, run};
//! use std::collections::BTreeMap;
//!
//! let g = parse("graph g(x: f32[N, 3]) -> (y) {\n  y = relu(x)\n}\n").unwrap();
//! let x = Tensor::f32(vec![2, 3], vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]).unwrap();
//! let out = run(&g, &BTreeMap::from([("x".to_string(), x)])).unwrap();
//! assert_eq!(out["y"].to_f32(), [0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
//! assert_eq!(smelt::print(&g), "graph g(x: f32[N, 3]) -> (y) {\n  y = relu(x)  # f32[N, 3]\n}\n");
//! ```

pub use smelt_codegen as codegen;
pub use smelt_frontends as frontends;
pub use smelt_ir as ir;
pub use smelt_passes as passes;
pub use smelt_runtime as runtime;

pub use smelt_ir::text::{parse, print};
pub use smelt_ir::{DType, Graph, GraphBuilder, Op, Tensor, TensorType, load_model};
pub use smelt_runtime::run;
