//! smelt-engine: the one API that takes a model to results. The CLI, the
//! benchmarks and the test suites go through it.
//!
//! - [`Source`]: a model file (`.smelt` with its weights, or `.onnx`), ONNX bytes,
//!   or a [`Graph`]; [`load`] reads and verifies it.
//! - [`Options`]: backend ([`BackendKind`]: interp, cranelift, llvm, wgsl),
//!   optimization level (`-O2` by default), threads, typed schedule switches
//!   ([`ScheduleOptions`]), GPU adapter. Explicit: nothing here reads the
//!   environment.
//! - [`prepare`] loads and optimizes into a [`Model`] (enough to [`Model::emit`]
//!   kernel IR, assembly, object files or a C library); [`compile`] also compiles
//!   it into a [`CompiledModel`] with `run`, `run_profiled`, `profile`, its
//!   inputs' and outputs' names and types, and the time each stage took.
//! - [`Backend`] / [`Executable`]: the backends behind one trait ([`Interp`],
//!   [`Native`] for Cranelift and LLVM, `Wgsl`), for callers that compile one
//!   graph many ways (the numerical suite).
//! - [`quantize`]: post-training int8 quantization with calibration, a
//!   per-layer precision choice under an accuracy budget, and its report;
//!   [`prune`]: magnitude pruning with the same budget and report (the sparse
//!   kernels are chosen when the pruned model compiles).
//! - [`bench::bench`]: times a model on seeded random inputs (wall and CPU
//!   time, memory, each kernel's median), as `smelt bench` and Python's
//!   `smelt.bench` report it.
//! - [`Error`]: every failure rendered as the CLI prints it (file, line, column,
//!   node), with an [`ErrorKind`] to branch on.
//!
//! Cargo features: `llvm` (the LLVM backend; needs the LLVM 14 development files)
//! and `wgsl` (the WGSL runtime on wgpu; needs a Vulkan loader at run time), both
//! on by default. Without them those backends fail with
//! [`ErrorKind::NotBuilt`], naming the feature.

pub mod backend;
pub mod bench;
pub mod emit;
pub mod error;
pub mod flops;
pub mod load;
pub mod memory;
mod model;
mod options;
pub mod prune;
pub mod quantize;
mod staged;
pub mod tune;
pub mod zoo;

#[cfg(feature = "wgsl")]
pub use backend::Wgsl;
pub use backend::{Backend, Executable, Interp, Native, Tensors};
pub use emit::{Emit, Emitted, write_library};
pub use error::{Error, ErrorKind, Result};
pub use load::{Source, load};
pub use model::{CompiledModel, IoDesc, Model, Timings, compile, optimize, prepare};
pub use options::{BackendKind, Options};
pub use prune::{PruneOptions, PruneReport, Pruned, prune};
pub use quantize::{QuantizeOptions, QuantizeReport, Quantized, quantize};
pub use smelt_codegen::probe;
pub use smelt_codegen::schedule::{ScheduleOptions, Target, Tuning, Ukernels};
pub use tune::{TuneOptions, TuneReport, TuningDb, tune};
pub use smelt_ir::Graph;
pub use smelt_passes::OptLevel;
pub use smelt_runtime::exec::{KernelTime, PlanStats, Profile};
