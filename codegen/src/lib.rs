//! smelt-codegen: from graphs to machine code.
//!
//! One lowering of graph ops into a kernel IR ([`kernel`]: loop nests over
//! buffers, loads/stores, scalar and vector arithmetic, intrinsics; its printer and
//! verifier), [`lower`] (graph → [`lower::Program`] of kernels over program
//! buffers), schedules per target ([`schedule`]: [`schedule::Target`] and the
//! typed [`schedule::ScheduleOptions`] callers set), inline transcendentals
//! ([`math`]), precompiled GEMM micro-kernels ([`ukernel`]; the AMX-INT8 tile
//! of the quantized GEMM, [`amx`]), and three emitters:
//! [`cranelift`] (JIT, CLIF, assembly, object files), [`llvm`] through inkwell
//! (JIT, LLVM IR, assembly, object files; cargo feature `llvm`) and [`wgsl`]
//! (compute shaders, run by `smelt_runtime::gpu`). Both JITs hand their code to
//! [`native`], which binds kernels to memory and calls them. Depends only on
//! `smelt-ir` (and `libc`, to ask Linux for the AMX state).

pub mod amx;
pub mod cranelift;
pub mod kernel;
#[cfg(feature = "llvm")]
pub mod llvm;
pub mod lower;
pub mod math;
pub mod native;
pub mod probe;
pub mod schedule;
pub mod ukernel;
pub mod wgsl;

/// The code generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// Whether this build of smelt has the backend (LLVM is the cargo feature
    /// `llvm`; Cranelift and the WGSL emitter are always built).
    pub fn built(self) -> bool {
        match self {
            Backend::Llvm => cfg!(feature = "llvm"),
            Backend::Cranelift | Backend::Wgsl => true,
        }
    }
}

/// Errors of code generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not supported on {backend}: {op} at node {node}")]
    Unsupported { backend: &'static str, op: String, node: String },
    /// The backend was left out of this build.
    #[error("the {backend} backend is not built into this smelt: build with the cargo feature `{feature}` ({needs})")]
    NotBuilt { backend: &'static str, feature: &'static str, needs: &'static str },
    /// A schedule option this host or backend cannot honour.
    #[error("schedule: {0}")]
    Schedule(String),
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

/// The error of a backend left out of this build.
pub fn not_built(backend: Backend) -> Error {
    match backend {
        Backend::Llvm => Error::NotBuilt { backend: "llvm", feature: "llvm", needs: "needs the LLVM 14 development files" },
        Backend::Wgsl => Error::NotBuilt { backend: "wgsl", feature: "wgsl", needs: "needs a Vulkan loader at run time" },
        Backend::Cranelift => Error::NotBuilt { backend: "cranelift", feature: "-", needs: "always built" },
    }
}

/// Compiles kernels into executable memory with a native backend, with the LLVM
/// options of `target` ([`llvm::Options::of`]). Kernels that differ only in
/// their names (the repeated layers of a model: same shapes, their weights
/// passed as buffers) are compiled once and share their code.
pub fn jit(backend: Backend, kernels: &[kernel::Kernel], target: &schedule::Target) -> Result<native::JitCode, Error> {
    let (unique, of) = distinct(kernels);
    let code = match backend {
        Backend::Cranelift => cranelift::jit(&unique)?,
        #[cfg(feature = "llvm")]
        Backend::Llvm => llvm::jit(&unique, &llvm::Options::of(target))?,
        #[cfg(not(feature = "llvm"))]
        Backend::Llvm => {
            let _ = target;
            return Err(not_built(Backend::Llvm));
        }
        Backend::Wgsl => return Err(Error::Unsupported { backend: "wgsl", op: "native code".into(), node: "-".into() }),
    };
    Ok(code.shared_by(kernels, &of))
}

/// The distinct kernels, each under the name of its first occurrence, and for each
/// kernel the index of its distinct one.
pub fn distinct(kernels: &[kernel::Kernel]) -> (Vec<kernel::Kernel>, Vec<usize>) {
    // Candidates by the printed kernel without its name; equal only if their
    // buffers, variables and bodies are (the text may round constants).
    let mut seen: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    let mut unique: Vec<kernel::Kernel> = Vec::new();
    let of = kernels
        .iter()
        .map(|k| {
            let mut nameless = k.clone();
            nameless.name.clear();
            let key = nameless.to_string();
            let same = |u: &kernel::Kernel| u.buffers == k.buffers && u.vars == k.vars && u.body == k.body;
            let list = seen.entry(key).or_default();
            match list.iter().copied().find(|&u| same(&unique[u])) {
                Some(u) => u,
                None => {
                    unique.push(k.clone());
                    list.push(unique.len() - 1);
                    unique.len() - 1
                }
            }
        })
        .collect();
    (unique, of)
}

/// An object file of kernels from a native backend (see [`cranelift::object`]),
/// with the LLVM options of `target`.
pub fn object(backend: Backend, kernels: &[kernel::Kernel], prefix: &str, target: &schedule::Target) -> Result<Vec<u8>, Error> {
    match backend {
        Backend::Cranelift => cranelift::object(kernels, prefix),
        #[cfg(feature = "llvm")]
        Backend::Llvm => llvm::object(kernels, prefix, &llvm::Options::of(target)),
        #[cfg(not(feature = "llvm"))]
        Backend::Llvm => {
            let _ = target;
            Err(not_built(Backend::Llvm))
        }
        Backend::Wgsl => Err(Error::Unsupported { backend: "wgsl", op: "object files".into(), node: "-".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::distinct;
    use crate::kernel::{Access, Expr, Kernel, KernelBuilder, Scalar, Ty};

    fn scale(name: &str, by: f32, n: u64) -> Kernel {
        let mut kb = KernelBuilder::new(name);
        let x = kb.buffer("x", Scalar::F32, n, Access::Read);
        let y = kb.buffer("y", Scalar::F32, n, Access::Write);
        kb.for_n("i", n, |kb, i| kb.store(y, i.clone(), Expr::load(x, i) * Expr::f(by)));
        kb.finish()
    }

    #[test]
    fn kernels_equal_but_for_their_names_share_one_compilation() {
        let ks = [scale("a", 2.0, 7), scale("b", 2.0, 7), scale("c", 2.000_001, 7), scale("d", 2.0, 8), scale("e", 2.000_001, 7)];
        let (unique, of) = distinct(&ks);
        assert_eq!(of, [0, 0, 1, 2, 1]);
        assert_eq!(unique.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["a", "c", "d"]);
    }

    #[test]
    fn new_var_takes_the_first_free_suffix() {
        let mut k = Kernel::empty("k");
        let names: Vec<String> = ["a", "a", "a_1", "a", "b", "a"]
            .iter()
            .map(|n| {
                let v = k.new_var(n, Ty::I64);
                k.var(v).name.clone()
            })
            .collect();
        assert_eq!(names, ["a", "a_1", "a_1_1", "a_2", "b", "a_3"]);
        // After `vars` is changed directly, names are still unique.
        k.vars.truncate(1);
        let v = k.new_var("a", Ty::I64);
        assert_eq!(k.var(v).name, "a_1");
    }
}
