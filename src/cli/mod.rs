//! Pieces the subcommands share: loading a model (text, weights, verification) with
//! every problem rendered for the user, and the error type that carries such text.

pub mod check;
pub mod fmt;
pub mod init;
pub mod run;

use smelt::ir::{self, Diagnostic, Graph, Weights, text, weights};
use std::fmt as stdfmt;
use std::path::Path;

/// An error already rendered for the user: one or more `error: …` blocks, printed
/// verbatim by `main`.
#[derive(Debug)]
pub struct Reported(pub String);

impl stdfmt::Display for Reported {
    fn fmt(&self, f: &mut stdfmt::Formatter<'_>) -> stdfmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// `Err(Reported(text))`.
pub fn reported<T>(text: impl Into<String>) -> anyhow::Result<T> {
    Err(Reported(text.into()).into())
}

/// A path as the user wrote it, for messages.
pub fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Reads and parses a model; returns its source too (for `fmt`). Parse and type
/// errors are all reported, with `file:line:col`.
pub fn parse_model(path: &Path) -> anyhow::Result<(Graph, String)> {
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return reported(format!("error: cannot read {}: {e}", shown(path))),
    };
    match text::parse(&src) {
        Ok(g) => Ok((g, src)),
        Err(d) => reported(d.render(Some(&shown(path)))),
    }
}

/// Parses a model, loads its weights from the `.safetensors` beside it (required when
/// it has params; loaded and checked whenever the file exists) and verifies it.
pub fn load_model(path: &Path) -> anyhow::Result<Graph> {
    let (mut g, _) = parse_model(path)?;
    let wpath = weights::weights_path(path);
    let nparams = g.params().len();
    if nparams > 0 || wpath.exists() {
        if !wpath.exists() {
            return reported(format!(
                "error: {} declares {nparams} param{}, but there is no weights file {}\n  \
                 hint: `smelt init-weights {}` writes random ones",
                shown(path),
                if nparams == 1 { "" } else { "s" },
                shown(&wpath),
                shown(path),
            ));
        }
        let loaded = weights::read_safetensors(&wpath).and_then(|t| weights::load_weights(&mut g, t, &shown(&wpath)));
        if let Err(e) = loaded {
            return reported(e.render(Some(&shown(path))));
        }
    }
    if let Err(d) = ir::verify(&g, Weights::Required) {
        return reported(d.render(Some(&shown(path))));
    }
    Ok(g)
}

/// A diagnostic about the node that defines `name` (with its span when it has one).
pub fn node_diag(g: &Graph, name: &str, message: impl Into<String>) -> Diagnostic {
    match g.find(name) {
        Some(v) => g.diag(v.node, message),
        None => Diagnostic::new(message).node(name),
    }
}

/// Total bytes of the graph's weights.
pub fn weight_bytes(g: &Graph) -> usize {
    g.weights().values().map(|t| t.numel() * t.dtype().size()).sum()
}
