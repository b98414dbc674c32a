//! The backends the numerical suite runs, through the engine's `Backend` trait:
//! each compiles and runs a graph, or says that it does not support it.

use smelt_engine::{Backend, ErrorKind, Native, ScheduleOptions, Target, Tensors};
use smelt_ir::Graph;

/// Why a backend gave no outputs.
#[derive(Debug)]
pub enum RunError {
    /// The backend does not lower an op of the graph.
    Unsupported(String),
    /// Anything else: a failure of the backend.
    Failed(String),
}

/// Compiles and runs `g` on `b`; an unsupported op is `RunError::Unsupported`.
pub fn run(b: &dyn Backend, g: &Graph, inputs: &Tensors) -> Result<Tensors, RunError> {
    let err = |e: smelt_engine::Error| match e.kind() {
        ErrorKind::Unsupported { .. } => RunError::Unsupported(e.to_string()),
        _ => RunError::Failed(e.to_string()),
    };
    b.compile(g).map_err(err)?.run(inputs).map_err(err)
}

/// Cranelift with its own schedule for this host, on `threads` threads.
pub fn cranelift(threads: usize) -> Native {
    Native::new(smelt_codegen::Backend::Cranelift, threads)
}

/// LLVM with its own schedule for this host, on `threads` threads.
pub fn llvm(threads: usize) -> Native {
    Native::new(smelt_codegen::Backend::Llvm, threads)
}

/// A native JIT with an explicit schedule, for the code paths the backends'
/// own schedules do not take: the GPU lowering (`wgsl::target()`, whose
/// cooperative `workgroup`/`reduce` loops and plain GEMM steps run serially on the
/// CPU, so the kernels the WGSL emitter translates are checked without a GPU
/// too), Cranelift's own 4×8 GEMM tile where the host has micro-kernels, and LLVM
/// calling the micro-kernels.
pub fn scheduled(label: impl Into<String>, backend: smelt_codegen::Backend, target: Target, threads: usize) -> Native {
    Native { backend, threads, schedule: ScheduleOptions::default(), target: Some(target), label: Some(label.into()) }
}

/// A native JIT with schedule switches (`--schedule …`).
pub fn switched(label: impl Into<String>, backend: smelt_codegen::Backend, schedule: ScheduleOptions) -> Native {
    Native { backend, threads: 1, schedule, target: None, label: Some(label.into()) }
}
