//! smelt-runtime: host tensors in, host tensors out.
//!
//! Role (DESIGN.md §5): the reference interpreter (naive, obviously-correct Rust for
//! every op: the oracle every backend is tested against), and the executor of
//! compiled models ([`exec`]: memory planner, plans of kernel calls, thread pool).
//! [`gpu`]: models compiled to WGSL and run through wgpu (Vulkan).

pub mod aot;
pub mod error;
pub mod exec;
pub mod gpu;
pub mod init;
pub mod interp;

pub use error::{Error, Result};
pub use interp::run;
