//! The errors of smelt-passes: one enum, every variant naming the pass at fault.

use smelt_ir::Diagnostics;

/// What can go wrong while optimizing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The graph itself is ill-typed (reported by type inference).
    #[error("{0}")]
    Model(Diagnostics),
    /// A pass left a graph that the verifier rejects: a bug in that pass.
    #[error("the graph does not verify after pass {pass}:\n{diags}")]
    Verify { pass: &'static str, diags: Diagnostics },
    /// A pass failed for a reason of its own.
    #[error("pass {pass}: {message}")]
    Pass { pass: &'static str, message: String },
    /// A pass name that no pipeline knows (e.g. in `--print-after`).
    #[error("unknown pass `{name}` (known: {known})")]
    UnknownPass { name: String, known: String },
    /// An optimization level other than 0 to 3.
    #[error("unknown optimization level `{0}` (use 0, 1, 2 or 3)")]
    BadLevel(String),
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Error {
        Error::Model(d)
    }
}

/// The result type of smelt-passes.
pub type Result<T, E = Error> = std::result::Result<T, E>;
