//! smelt: an ML compiler and graph optimizer. This facade re-exports the crates.
pub use smelt_ir as ir;
