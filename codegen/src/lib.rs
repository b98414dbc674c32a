//! smelt-codegen: from graphs to machine code.
//!
//! Role (DESIGN.md §4): one lowering of graph ops into a kernel IR (loop nests over
//! buffers, loads/stores, scalar and vector arithmetic, intrinsics), schedules per
//! target, and three emitters — Cranelift (JIT and object files), LLVM through
//! inkwell, and WGSL for wgpu. Depends only on `smelt-ir`.
//!
//! Today: the kernel IR ([`kernel`]: types, printer, verifier), the lowering of
//! graph ops into it ([`lower`]), the target schedules and the vectorizer
//! ([`schedule`]), inline transcendentals ([`math`]) and the Cranelift backend
//! ([`cranelift`]: JIT, CLIF, assembly, object files) and the LLVM backend
//! ([`llvm`]: JIT, LLVM IR, assembly, object files, AVX2 on this host). Both JITs
//! hand their code to [`native`], which binds kernels to memory and calls them.
//! WGSL is named by [`Backend`] and reports "not supported" until it lands.

pub mod cranelift;
pub mod kernel;
pub mod llvm;
pub mod lower;
pub mod math;
pub mod native;
pub mod schedule;
pub mod wgsl;

use smelt_ir::Graph;

/// The code generators smelt has or will have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cranelift,
    Llvm,
    Wgsl,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cranelift => "cranelift",
            Backend::Llvm => "llvm",
            Backend::Wgsl => "wgsl",
        }
    }
}

/// Errors of code generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not supported on {backend}: {op} at node {node}")]
    Unsupported { backend: &'static str, op: String, node: String },
    /// A kernel failed verification or emission: a bug in smelt's lowering.
    #[error("kernel {kernel}: {message}")]
    Kernel { kernel: String, message: String },
    /// Cranelift reported an error.
    #[error("cranelift: {0}")]
    Cranelift(String),
    /// LLVM reported an error.
    #[error("llvm: {0}")]
    Llvm(String),
    /// A compiled kernel was called with buffers that do not fit it.
    #[error("{0}")]
    Run(String),
}

/// Compiles kernels into executable memory with a native backend.
pub fn jit(backend: Backend, kernels: &[kernel::Kernel]) -> Result<native::JitCode, Error> {
    match backend {
        Backend::Cranelift => cranelift::jit(kernels),
        Backend::Llvm => llvm::jit(kernels),
        Backend::Wgsl => Err(Error::Unsupported { backend: "wgsl", op: "native code".into(), node: "-".into() }),
    }
}

/// An object file of kernels from a native backend (see [`cranelift::object`]).
pub fn object(backend: Backend, kernels: &[kernel::Kernel], prefix: &str) -> Result<Vec<u8>, Error> {
    match backend {
        Backend::Cranelift => cranelift::object(kernels, prefix),
        Backend::Llvm => llvm::object(kernels, prefix),
        Backend::Wgsl => Err(Error::Unsupported { backend: "wgsl", op: "object files".into(), node: "-".into() }),
    }
}

/// Names the first node a backend without a graph compiler cannot run (WGSL until
/// it lands); the native backends compile through `lower` and [`jit`].
pub fn compile(g: &Graph, backend: Backend) -> Result<(), Error> {
    if backend == Backend::Wgsl {
        return wgsl::check(g);
    }
    let first = g
        .topo_order()
        .unwrap_or_default()
        .into_iter()
        .find(|&id| !g.node(id).op.is_source())
        .or_else(|| g.node_ids().next());
    let (op, node) = match first {
        Some(id) => (g.node(id).op.name().to_string(), g.node(id).name().to_string()),
        None => ("graph".to_string(), g.name.clone()),
    };
    Err(Error::Unsupported { backend: backend.name(), op, node })
}
