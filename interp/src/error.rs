//! Errors of the runtime.

/// Errors of running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The given inputs do not match the graph's signature.
    #[error("{0}")]
    Inputs(String),
    /// A node failed at run time (e.g. an index out of range).
    #[error("{op} at node {node}: {message}")]
    Node { node: String, op: String, message: String },
    #[error(transparent)]
    Ir(#[from] smelt_ir::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
