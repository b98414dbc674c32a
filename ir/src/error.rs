//! Errors: diagnostics with a node, an op and a source location, collected rather
//! than stopping at the first.

use std::fmt;

/// A position in model text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One problem found in a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// The node (its first output's name) the problem is about.
    pub node: Option<String>,
    /// The op of that node.
    pub op: Option<String>,
    /// Where in the text.
    pub span: Option<Span>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic { message: message.into(), node: None, op: None, span: None }
    }

    pub fn at(mut self, span: Option<Span>) -> Diagnostic {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }

    pub fn node(mut self, node: impl Into<String>) -> Diagnostic {
        self.node = Some(node.into());
        self
    }

    pub fn op(mut self, op: impl Into<String>) -> Diagnostic {
        self.op = Some(op.into());
        self
    }

    /// Renders as the CLI prints it, naming `file` when given.
    pub fn render(&self, file: Option<&str>) -> String {
        let mut s = format!("error: {}", self.message);
        let loc = match (file, self.span) {
            (Some(f), Some(sp)) => Some(format!("{f}:{sp}")),
            (None, Some(sp)) => Some(sp.to_string()),
            (Some(f), None) => Some(f.to_string()),
            (None, None) => None,
        };
        let who = self.node.as_ref().map(|n| format!("node {n}"));
        match (loc, who) {
            (Some(l), Some(w)) => s.push_str(&format!("\n  --> {l} ({w})")),
            (Some(l), None) => s.push_str(&format!("\n  --> {l}")),
            (None, Some(w)) => s.push_str(&format!("\n  --> {w}")),
            (None, None) => {}
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

/// A list of diagnostics, shown one after another.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn render(&self, file: Option<&str>) -> String {
        let mut s = String::new();
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            s.push_str(&d.render(file));
        }
        if self.0.len() > 1 {
            s.push_str(&format!("\n{} errors", self.0.len()));
        }
        s
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

/// Errors of smelt-ir.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in model text (syntax, names, attributes, types), all of them.
    #[error("{0}")]
    Model(Diagnostics),
    /// A weights file that cannot be read, or whose tensors do not match the params.
    #[error("{0}")]
    Weights(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The diagnostics of a model error, rendered naming `file`.
    pub fn render(&self, file: Option<&str>) -> String {
        match self {
            Error::Model(d) => d.render(file),
            other => format!("error: {other}"),
        }
    }
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Error {
        Error::Model(d)
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Model(Diagnostics(vec![d]))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
