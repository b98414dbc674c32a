//! The engine's one error type. Every error is rendered as the CLI prints it —
//! `error: …` blocks, each with `--> file:line:col (node x)` where there is one,
//! and a count when there are several — so a library caller shows the same text
//! as `smelt`. [`ErrorKind`] says what went wrong
//! for callers that branch on it.

use smelt_ir::{Diagnostic, Graph};
use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The model cannot be read, parsed, imported, verified or optimized.
    Model,
    /// A backend does not lower an op (`not supported on <backend>: <op> at node <name>`).
    Unsupported { backend: String, op: String, node: String },
    /// The backend was left out of this build (a cargo feature).
    NotBuilt { backend: String, feature: String },
    /// Bad options: an unknown schedule key, a schedule the host cannot run, a
    /// `--dim` naming no symbol.
    Options,
    /// Inputs that do not match the model's signature.
    Inputs,
    /// A node failed at run time (an index out of range, a division by zero).
    Run,
    /// The GPU device could not be opened or failed.
    Device,
    /// A file could not be read or written, or a tool (the C compiler) failed.
    Io,
    /// The run needs more memory than the machine has available.
    Memory,
    /// A bug in smelt (a kernel that fails verification, a backend error).
    Internal,
}

/// One problem: a diagnostic (rendered with the file it belongs to) or text
/// already rendered.
#[derive(Debug, Clone)]
enum Problem {
    Diag(Diagnostic),
    Text(String),
}

/// An error of loading, optimizing, compiling or running a model.
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    problems: Vec<Problem>,
    /// The model file the diagnostics point into.
    file: Option<String>,
    /// The inputs file that input errors point at.
    inputs_file: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn new(kind: ErrorKind, problems: Vec<Problem>) -> Error {
        Error(Box::new(Inner { kind, problems, file: None, inputs_file: None }))
    }

    /// An error of one rendered message (`error: …` is added when missing).
    pub fn text(kind: ErrorKind, message: impl Into<String>) -> Error {
        let m = message.into();
        let m = if m.starts_with("error: ") { m } else { format!("error: {m}") };
        Error::new(kind, vec![Problem::Text(m)])
    }

    /// An error of diagnostics (each rendered with the model file, once known).
    pub fn diags(kind: ErrorKind, diags: impl IntoIterator<Item = Diagnostic>) -> Error {
        Error::new(kind, diags.into_iter().map(Problem::Diag).collect())
    }

    /// Several errors of one kind as one (their problems in order).
    pub fn all(kind: ErrorKind, errors: Vec<Error>) -> Error {
        Error::new(kind, errors.into_iter().flat_map(|e| e.0.problems).collect())
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Points the diagnostics at `file` (the model as the user named it), unless
    /// they already name one.
    pub fn in_file(mut self, file: Option<&str>) -> Error {
        if self.0.file.is_none() {
            self.0.file = file.map(str::to_string);
        }
        self
    }

    /// Points input errors at the file the inputs came from.
    pub fn with_inputs_file(mut self, file: Option<&str>) -> Error {
        self.0.inputs_file = file.map(str::to_string);
        self
    }

    /// Gives diagnostics about a node without a position the position of the
    /// node of that name in `source` (the graph as loaded: an optimized graph's
    /// fused nodes keep the names of the values they compute, not their
    /// positions).
    pub fn with_positions_from(mut self, source: &Graph) -> Error {
        for p in &mut self.0.problems {
            if let Problem::Diag(d) = p
                && d.span.is_none()
                && let Some(v) = d.node.as_deref().and_then(|n| source.find(n))
            {
                d.span = source.node(v.node).span;
            }
        }
        self
    }

    /// How many problems the error holds.
    pub fn count(&self) -> usize {
        self.0.problems.len()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        let file = if e.kind == ErrorKind::Inputs { e.inputs_file.as_deref() } else { e.file.as_deref() };
        let blocks: Vec<String> = e
            .problems
            .iter()
            .map(|p| match p {
                Problem::Diag(d) => d.render(file),
                Problem::Text(t) => t.clone(),
            })
            .collect();
        f.write_str(&blocks.join("\n"))?;
        if blocks.len() > 1 {
            write!(f, "\n{} errors", blocks.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A diagnostic about the node that defines `name` in `g` (with its position
/// when it has one).
pub(crate) fn node_diag(g: &Graph, name: &str, message: impl Into<String>) -> Diagnostic {
    match g.find(name) {
        Some(v) => g.diag(v.node, message),
        None => Diagnostic::new(message).node(name),
    }
}

/// A code generation error about `g`.
pub(crate) fn codegen(g: &Graph, e: smelt_codegen::Error) -> Error {
    use smelt_codegen::Error as C;
    match e {
        C::Unsupported { backend, op, node } => {
            let d = node_diag(g, &node, format!("not supported on {backend}: {op} at node {node}"));
            Error::diags(ErrorKind::Unsupported { backend: backend.to_string(), op, node }, [d])
        }
        e @ C::NotBuilt { backend, feature, .. } => {
            let kind = ErrorKind::NotBuilt { backend: backend.to_string(), feature: feature.to_string() };
            Error::text(kind, e.to_string())
        }
        e @ C::Schedule(_) => Error::text(ErrorKind::Options, e.to_string()),
        e @ C::Run(_) => Error::text(ErrorKind::Run, e.to_string()),
        e => Error::text(ErrorKind::Internal, e.to_string()),
    }
}

/// A run-time error of the interpreter or an executor about `g`.
pub(crate) fn runtime(g: &Graph, e: smelt_interp::Error) -> Error {
    use smelt_interp::Error as R;
    match e {
        R::Inputs(msg) => Error::diags(ErrorKind::Inputs, msg.lines().map(Diagnostic::new).collect::<Vec<_>>()),
        R::Node { node, op, message } => {
            // The location line names the node; name the op unless the message does.
            let text = if message.starts_with(op.as_str()) { message } else { format!("{op}: {message}") };
            Error::diags(ErrorKind::Run, [node_diag(g, &node, text)])
        }
        R::Ir(smelt_ir::Error::Model(d)) => Error::diags(ErrorKind::Inputs, d.0),
        R::Ir(e) => Error::text(ErrorKind::Inputs, e.to_string()),
    }
}

/// An error of the CPU executor about `g`.
pub(crate) fn exec(g: &Graph, e: smelt_runtime::exec::Error) -> Error {
    use smelt_runtime::exec::Error as X;
    match e {
        X::Codegen(c) => codegen(g, c),
        X::Runtime(r) => runtime(g, r),
        e => Error::text(ErrorKind::Internal, e.to_string()),
    }
}

/// An error of the GPU runtime about `g`.
#[cfg(feature = "wgsl")]
pub(crate) fn gpu(g: &Graph, e: smelt_runtime::gpu::Error) -> Error {
    use smelt_runtime::gpu::Error as G;
    match e {
        G::Codegen(c) => codegen(g, c),
        G::Runtime(r) => runtime(g, r),
        G::Device(m) => Error::text(ErrorKind::Device, format!("gpu: {m}")),
        e @ G::Limit { .. } => {
            let G::Limit { node, .. } = &e else { unreachable!() };
            let d = node_diag(g, node, e.to_string());
            Error::diags(ErrorKind::Device, [d])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorKind};
    use smelt_ir::Diagnostic;

    #[test]
    fn renders_with_files_and_counts() {
        let e = Error::diags(ErrorKind::Run, [Diagnostic::new("boom").node("y")]).in_file(Some("m.smelt"));
        assert_eq!(e.to_string(), "error: boom\n  --> m.smelt (node y)");
        let e = Error::diags(ErrorKind::Inputs, [Diagnostic::new("missing input `x`"), Diagnostic::new("extra input `z`")])
            .in_file(Some("m.smelt"))
            .with_inputs_file(Some("in.safetensors"));
        assert_eq!(
            e.to_string(),
            "error: missing input `x`\n  --> in.safetensors\nerror: extra input `z`\n  --> in.safetensors\n2 errors"
        );
        assert_eq!(Error::text(ErrorKind::Io, "cannot write").to_string(), "error: cannot write");
    }
}
