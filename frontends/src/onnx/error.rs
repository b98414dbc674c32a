//! Errors of the ONNX importer. Bad input (a truncated or corrupt file, an op or
//! dtype smelt does not support, an attribute out of range) is always an error value,
//! never a panic.

use std::fmt;

/// One unsupported ONNX node: its op type (with domain when not the default) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub op_type: String,
    pub node: String,
    /// Why, when there is more to say than "no importer for this op".
    pub reason: Option<String>,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (node `{}`)", self.op_type, self.node)?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

/// A graph input whose value smelt needs at import time (it gives a shape, axes,
/// pads, k, … that smelt ops take as attributes): freeze it with
/// [`Options::frozen`](super::Options) to import the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsConstant {
    pub input: String,
    pub node: String,
    pub op_type: String,
    pub what: String,
}

impl fmt::Display for NeedsConstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "graph input `{}` gives the {} of {} (node `{}`) and must be known at import time",
            self.input, self.what, self.op_type, self.node
        )
    }
}

/// What can go wrong when importing an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("not a valid ONNX protobuf ({what}): {source}")]
    Decode { what: String, source: prost::DecodeError },
    #[error("the ONNX model has no graph")]
    NoGraph,
    #[error("unsupported opset: {0}")]
    Opset(String),
    /// Every unsupported node of the model, listed together.
    #[error("{} unsupported ONNX node{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
    Unsupported(Vec<Unsupported>),
    /// A tensor (initializer, constant or test data) smelt cannot represent.
    #[error("tensor `{name}`: {message}")]
    Tensor { name: String, message: String },
    /// A node that is supported in general but whose inputs or attributes are bad or
    /// outside what smelt can import.
    #[error("node `{node}` ({op_type}): {message}")]
    Node { node: String, op_type: String, message: String },
    /// Graph inputs that must be constants for smelt (see [`NeedsConstant`]).
    #[error("{}", .0.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("\n"))]
    NeedsConstant(Vec<NeedsConstant>),
    /// Several problems, each on its own line.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Errors(Vec<Error>),
    /// Anything else wrong with the model's structure.
    #[error("{0}")]
    Model(String),
    /// The imported graph failed smelt's type inference or verifier.
    #[error("the imported graph is invalid:\n{0}")]
    Ir(smelt_ir::Diagnostics),
}

fn list(v: &[Unsupported]) -> String {
    v.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(", ")
}

impl From<smelt_ir::Diagnostics> for Error {
    fn from(d: smelt_ir::Diagnostics) -> Error {
        Error::Ir(d)
    }
}

impl Error {
    /// True when the import failed only because some op, attribute or dtype is not
    /// supported (as opposed to a broken file or an importer bug).
    pub fn is_unsupported(&self) -> bool {
        match self {
            Error::Unsupported(_) | Error::Opset(_) => true,
            Error::Errors(v) => v.iter().all(Error::is_unsupported),
            _ => false,
        }
    }

    /// The graph inputs that must be frozen, when that is (part of) the problem.
    pub fn needs_constant(&self) -> Vec<&NeedsConstant> {
        match self {
            Error::NeedsConstant(v) => v.iter().collect(),
            Error::Errors(v) => v.iter().flat_map(Error::needs_constant).collect(),
            _ => vec![],
        }
    }

    /// Merges the problems of several nodes: unsupported ops into one list, inputs to
    /// freeze into one list, the rest kept in order.
    pub fn merge(errs: Vec<Error>) -> Error {
        let mut unsupported = Vec::new();
        let mut needs = Vec::new();
        let mut other = Vec::new();
        for e in errs {
            match e {
                Error::Unsupported(v) => unsupported.extend(v),
                Error::NeedsConstant(v) => needs.extend(v),
                Error::Errors(v) => other.push(Error::merge(v)),
                e => other.push(e),
            }
        }
        let mut all = Vec::new();
        if !unsupported.is_empty() {
            all.push(Error::Unsupported(unsupported));
        }
        if !needs.is_empty() {
            all.push(Error::NeedsConstant(needs));
        }
        all.extend(other);
        if all.len() == 1 { all.pop().expect("one error") } else { Error::Errors(all) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
