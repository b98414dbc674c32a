//! The backends the numerical suite runs: each compiles and runs a graph, or says
//! that it does not support it.

use smelt_ir::{Graph, Tensor};
use smelt_runtime::exec::{self, Options};
use std::collections::BTreeMap;

/// Why a backend gave no outputs.
#[derive(Debug)]
pub enum RunError {
    /// The backend does not lower an op of the graph (listed, not a failure).
    Unsupported,
    /// Anything else: a failure of the backend.
    Failed(String),
}

pub trait Backend {
    fn name(&self) -> String;
    fn run(&self, g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>, RunError>;
}

/// Compiles and runs `g` with the runtime's executor; an unsupported op is
/// `RunError::Unsupported`.
fn run_native(g: &Graph, inputs: &BTreeMap<String, Tensor>, opts: &Options) -> Result<BTreeMap<String, Tensor>, RunError> {
    let err = |e: exec::Error| match e {
        exec::Error::Codegen(smelt_codegen::Error::Unsupported { .. }) => RunError::Unsupported,
        e => RunError::Failed(e.to_string()),
    };
    let model = exec::compile(g, opts).map_err(err)?;
    model.run(inputs).map_err(err)
}

/// The Cranelift JIT through the runtime's executor.
#[derive(Debug)]
pub struct Cranelift {
    pub threads: usize,
}

impl Backend for Cranelift {
    fn name(&self) -> String {
        format!("cranelift ({} thread{})", self.threads, if self.threads == 1 { "" } else { "s" })
    }

    fn run(&self, g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>, RunError> {
        let opts = Options { threads: self.threads, ..Options::default() };
        run_native(g, inputs, &opts)
    }
}

/// The LLVM JIT through the runtime's executor, with LLVM's host schedule.
#[derive(Debug)]
pub struct Llvm {
    pub threads: usize,
}

impl Backend for Llvm {
    fn name(&self) -> String {
        format!("llvm ({} thread{})", self.threads, if self.threads == 1 { "" } else { "s" })
    }

    fn run(&self, g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>, RunError> {
        let opts = Options::for_backend(smelt_codegen::Backend::Llvm, self.threads);
        run_native(g, inputs, &opts)
    }
}

/// A native JIT with an explicit schedule, for the code paths the backends'
/// own schedules do not take: the GPU lowering (`wgsl::target()`, whose
/// cooperative `workgroup`/`reduce` loops and plain GEMM steps run serially on the
/// CPU, so the kernels the WGSL emitter translates are checked without a GPU
/// too), Cranelift's own 4×8 GEMM tile where the host has micro-kernels, and LLVM
/// calling the micro-kernels.
#[derive(Debug)]
pub struct Scheduled {
    pub label: String,
    pub backend: smelt_codegen::Backend,
    pub target: smelt_codegen::schedule::Target,
    pub threads: usize,
}

impl Backend for Scheduled {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn run(&self, g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>, RunError> {
        let opts = Options { threads: self.threads, target: Some(self.target.clone()), backend: self.backend };
        run_native(g, inputs, &opts)
    }
}
