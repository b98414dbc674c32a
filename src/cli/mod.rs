//! Pieces the subcommands share: loading a model (text, weights, verification) with
//! every problem rendered for the user, and the error type that carries such text.

pub mod bench;
pub mod check;
pub mod compile;
pub mod fmt;
pub mod import;
pub mod init;
pub mod opt;
pub mod run;
pub mod zoo;

use smelt::ir::{self, Diagnostic, Graph, Tensor, Weights, text, weights};
use std::collections::BTreeMap;
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
/// it has params; loaded and checked whenever the file exists) and verifies it. An
/// `.onnx` file is imported instead.
pub fn load_model(path: &Path) -> anyhow::Result<Graph> {
    if import::is_onnx(path) {
        return import::load_onnx(path);
    }
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
        let tensors = match weights::read_safetensors(&wpath) {
            Ok(t) => t,
            Err(e) => return reported(e.render(None)),
        };
        check_weights(&g, &tensors, path, &wpath)?;
        if let Err(e) = weights::load_weights(&mut g, tensors, &shown(&wpath)) {
            return reported(e.render(None));
        }
    }
    if let Err(d) = ir::verify(&g, Weights::Required) {
        return reported(d.render(Some(&shown(path))));
    }
    Ok(g)
}

/// Checks a weights file against the params (as `weights::load_weights` does), so
/// that each problem is reported on its own, pointing at the param's declaration.
fn check_weights(g: &Graph, tensors: &BTreeMap<String, Tensor>, model: &Path, wpath: &Path) -> anyhow::Result<()> {
    let (m, w) = (shown(model), shown(wpath));
    let mut problems: Vec<String> = Vec::new();
    for id in g.params() {
        let n = g.node(id);
        let (name, ty) = (n.name(), &n.types[0]);
        let msg = match tensors.get(name) {
            Some(t) if t.fits(ty) => continue,
            Some(t) => format!("weight `{name}` in {w} is {}, but the model declares {ty}", t.tensor_type()),
            None => format!("{w} has no weight named `{name}` (the model declares {ty})"),
        };
        problems.push(g.diag(id, msg).render(Some(&m)));
    }
    for extra in tensors.keys().filter(|k| g.params().iter().all(|&id| g.node(id).name() != k.as_str())) {
        problems.push(format!("error: tensor `{extra}` names no param of graph {}\n  --> {w}", g.name));
    }
    reported_all(problems)
}

/// `Ok` when there are no problems; else all of them (rendered blocks) and a count.
pub fn reported_all(problems: Vec<String>) -> anyhow::Result<()> {
    match problems.len() {
        0 => Ok(()),
        1 => reported(problems.concat()),
        n => reported(format!("{}\n{n} errors", problems.join("\n"))),
    }
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
