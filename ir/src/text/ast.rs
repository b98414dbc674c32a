//! The syntax tree of model text: what the parser reads and `build.rs` resolves
//! (names to values, attributes to ops, types inferred).

use crate::attr::Attr;
use crate::error::Span;
use crate::types::TensorType;

/// A parsed but unresolved statement.
pub(super) struct Stmt {
    pub names: Vec<(String, Span)>,
    pub kind: StmtKind,
}

pub(super) enum StmtKind {
    Param(TensorType),
    Const(TensorType, Vec<(Lit, Span)>),
    Op { op: String, op_span: Span, args: Vec<(String, Span)>, attrs: Vec<Attr> },
    /// A statement with a syntax error (already reported): its names are poisoned.
    Broken,
}

#[derive(Debug, Clone)]
pub(super) enum Lit {
    Int(i64),
    Float(f32),
    Bool(bool),
}

pub(super) struct File {
    pub name: String,
    pub inputs: Vec<(String, Span, TensorType)>,
    pub outputs: Vec<(String, Span)>,
    pub stmts: Vec<Stmt>,
}
