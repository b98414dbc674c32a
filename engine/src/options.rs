//! What to compile a model for: one options struct, passed explicitly. Nothing in
//! the engine (or below it) reads the environment to change generated code.

use smelt_codegen::schedule::{ScheduleOptions, Target};
use smelt_passes::OptLevel;
use std::fmt;

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The reference interpreter.
    Interp,
    /// Cranelift JIT (fast to compile; GEMM tiles as precompiled micro-kernels).
    Cranelift,
    /// LLVM JIT (LLVM 14's O3 for the host CPU; cargo feature `llvm`).
    Llvm,
    /// WGSL compute shaders through wgpu on Vulkan (cargo feature `wgsl`).
    Wgsl,
}

impl BackendKind {
    pub const ALL: [BackendKind; 4] = [BackendKind::Interp, BackendKind::Cranelift, BackendKind::Llvm, BackendKind::Wgsl];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Interp => "interp",
            BackendKind::Cranelift => "cranelift",
            BackendKind::Llvm => "llvm",
            BackendKind::Wgsl => "wgsl",
        }
    }

    /// The code generator behind it (`None` for the interpreter).
    pub fn codegen(self) -> Option<smelt_codegen::Backend> {
        match self {
            BackendKind::Interp => None,
            BackendKind::Cranelift => Some(smelt_codegen::Backend::Cranelift),
            BackendKind::Llvm => Some(smelt_codegen::Backend::Llvm),
            BackendKind::Wgsl => Some(smelt_codegen::Backend::Wgsl),
        }
    }

    /// Whether this build has the backend (LLVM and the WGSL runtime are cargo
    /// features).
    pub fn built(self) -> bool {
        match self {
            BackendKind::Interp | BackendKind::Cranelift => true,
            BackendKind::Llvm => cfg!(feature = "llvm"),
            BackendKind::Wgsl => cfg!(feature = "wgsl"),
        }
    }

    /// The cargo feature a backend needs, and what that feature needs.
    pub fn feature(self) -> Option<(&'static str, &'static str)> {
        match self {
            BackendKind::Llvm => Some(("llvm", "the LLVM 14 development files (llvm-14-dev)")),
            BackendKind::Wgsl => Some(("wgsl", "a Vulkan loader at run time (libvulkan1; mesa-vulkan-drivers without a GPU)")),
            _ => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<BackendKind, String> {
        BackendKind::ALL
            .into_iter()
            .find(|b| b.name() == s.trim())
            .ok_or_else(|| format!("unknown backend `{s}` (interp, cranelift, llvm or wgsl)"))
    }
}

/// How to compile a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Where it runs (default Cranelift).
    pub backend: BackendKind,
    /// The optimization pipeline run first (default `-O2`: e-graph rewrites and
    /// fusion; `-O0` runs the graph as loaded).
    pub opt_level: OptLevel,
    /// Threads for the parallel loops of the CPU backends (default 1).
    pub threads: usize,
    /// Switches on the backend's schedule (`--schedule key=value,…`).
    pub schedule: ScheduleOptions,
    /// The GPU adapter for WGSL: an index, part of its name, `low-power` or
    /// `high-performance` (default).
    pub adapter: Option<String>,
    /// An explicit CPU schedule instead of the backend's with `schedule` applied:
    /// for tests of paths no host default takes.
    pub target: Option<Target>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backend: BackendKind::Cranelift,
            opt_level: OptLevel::O2,
            threads: 1,
            schedule: ScheduleOptions::default(),
            adapter: None,
            target: None,
        }
    }
}

impl Options {
    /// The defaults with this backend.
    pub fn backend(backend: BackendKind) -> Options {
        Options { backend, ..Options::default() }
    }

    /// These options with another optimization level.
    pub fn opt(self, level: OptLevel) -> Options {
        Options { opt_level: level, ..self }
    }

    /// These options with `threads` threads.
    pub fn threads(self, threads: usize) -> Options {
        Options { threads: threads.max(1), ..self }
    }

    /// These options with schedule switches.
    pub fn schedule(self, schedule: ScheduleOptions) -> Options {
        Options { schedule, ..self }
    }
}
