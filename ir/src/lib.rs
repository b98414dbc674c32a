//! smelt-ir: the intermediate representation every other smelt crate builds on.
//!
//! Types ([`DType`], [`Dim`], [`Shape`], [`TensorType`]), host values ([`Tensor`]),
//! the op catalogue ([`ops`], one file per family; semantics in `docs/ops.md`), the
//! [`Graph`] and its [`GraphBuilder`], the text format ([`text`]), the [`verify`]er,
//! and safetensors [`weights`]. This crate knows nothing about egg, Cranelift, LLVM
//! or wgpu.

pub mod attr;
pub mod builder;
pub mod dtype;
pub mod error;
pub mod expr;
pub mod graph;
pub mod ops;
mod serde_float;
pub mod shape;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;
pub mod weights;

pub use attr::{AttrValue, DimSpec};
pub use builder::GraphBuilder;
pub use dtype::DType;
pub use error::{Diagnostic, Diagnostics, Error, Result, Span};
pub use expr::Expr;
pub use graph::{Graph, Node, NodeId, Port, Value};
pub use ops::{BinaryOp, Op, UnaryOp};
pub use shape::{Bindings, Dim, Shape};
pub use tensor::{Data, Tensor};
pub use types::{Quant, TensorType};
pub use verify::{Weights, verify};

/// Reads a model file and, when a `.safetensors` file sits beside it, its weights.
/// Weights are required when the graph has params.
pub fn load_model(path: &std::path::Path) -> Result<Graph> {
    let src = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
    let mut g = text::parse(&src)?;
    let wpath = weights::weights_path(path);
    if !g.params().is_empty() || wpath.exists() {
        let tensors = weights::read_safetensors(&wpath)?;
        weights::load_weights(&mut g, tensors, &wpath.display().to_string())?;
    }
    Ok(g)
}
