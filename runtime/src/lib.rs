//! smelt-runtime: the executors of compiled models.
//!
//! - [`exec`]: models compiled by a native backend (Cranelift or LLVM): a memory
//!   plan over one arena, the kernel calls in order, parallel loops on a thread pool.
//! - `gpu`: models compiled to WGSL and run through wgpu (Vulkan; cargo feature
//!   `wgsl`).
//! - [`aot`]: ahead-of-time C libraries (object file, C driver, header, weights).
//!
//! The reference interpreter is its own crate, `smelt-interp`, re-exported here as
//! [`interp`] (with [`init`], [`Error`] and [`run`]) for the executors' callers.

pub mod aot;
pub mod exec;
mod plan_cache;
pub use plan_cache::MAX_PLANS;
#[cfg(feature = "wgsl")]
pub mod gpu;

pub use smelt_interp as interp;
pub use smelt_interp::{Error, Result, init, run};
