//! smelt: an ML compiler and graph optimizer — this crate is the facade over its
//! parts, and the `smelt` command line.
//!
//! The entry point is the engine ([`engine`]; [`compile`] and [`Options`] here):
//! load a model (a `.smelt` or `.onnx` file, ONNX bytes, or a [`Graph`]),
//! optimize it (`-O2` by default), compile it for a backend (the interpreter,
//! Cranelift, LLVM or WGSL) and run it. The parts below it: the IR ([`ir`]: types,
//! the op catalogue, graphs and their builder, the canonical text format, the
//! verifier, safetensors weights); the reference interpreter ([`interp`], which
//! every backend, pass and rewrite is tested against); the frontends
//! ([`frontends`]: the ONNX importer and the model builders); the optimizer
//! ([`passes`]: classic passes and equality saturation with egg — fusion and
//! algebra — extracted by a cost model); the backends ([`codegen`]: kernel IR
//! lowered to Cranelift, LLVM or WGSL); and the executors ([`runtime`]: memory
//! plans and kernel calls on the CPU, wgpu on the GPU, AOT C libraries).
//!
//! ```
//! use smelt::{BackendKind, Options, Tensor, compile, parse};
//! use std::collections::BTreeMap;
//!
//! let g = parse("graph g(x: f32[N, 3]) -> (y) {\n  y = relu(x)\n}\n").unwrap();
//! let m = compile(g.clone(), &Options::backend(BackendKind::Cranelift)).unwrap();
//! let x = Tensor::f32(vec![2, 3], vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]).unwrap();
//! let out = m.run(&BTreeMap::from([("x".to_string(), x)])).unwrap();
//! assert_eq!(out["y"].to_f32(), [0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
//! assert_eq!(smelt::print(&g), "graph g(x: f32[N, 3]) -> (y) {\n  y = relu(x)  # f32[N, 3]\n}\n");
//! ```

pub use smelt_codegen as codegen;
pub use smelt_engine as engine;
pub use smelt_frontends as frontends;
pub use smelt_ir as ir;
pub use smelt_passes as passes;
pub use smelt_runtime as runtime;

pub use smelt_ir::text::{parse, print};
pub use smelt_engine::{BackendKind, CompiledModel, Options, compile};
pub use smelt_interp as interp;
pub use smelt_ir::{DType, Graph, GraphBuilder, Op, Tensor, TensorType, load_model};
pub use smelt_runtime::run;
