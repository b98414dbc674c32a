//! smelt-runtime: host tensors in, host tensors out.
//!
//! Role (DESIGN.md §5): the reference interpreter (naive, obviously-correct Rust for
//! every op: the oracle every backend is tested against); later the memory planner,
//! the executor of compiled plans, the thread pool and the wgpu device.

pub mod error;
pub mod init;
pub mod interp;

pub use error::{Error, Result};
pub use interp::run;
