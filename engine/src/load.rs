//! Loading a model: a `.smelt` file with the weights beside it, an `.onnx` file or
//! ONNX bytes, or a graph built in Rust ([`Source`]). Every problem is reported at
//! once, each pointing at its file, line and column where there is one; the
//! result is a verified graph with all its weights.

use crate::error::{Error, ErrorKind, Result};
use smelt_frontends::onnx;
use smelt_ir::{Graph, Tensor, Weights, text, weights};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a model comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A `.smelt` file (weights from the `.safetensors` beside it) or an `.onnx` file.
    Path(PathBuf),
    /// The bytes of an ONNX model, with a name for the graph.
    Onnx { bytes: Vec<u8>, name: String },
    /// An `.onnx` file whose inputs are pinned at import: shapes by input name
    /// (e.g. the tensors a user runs it on), sizes by dim symbol. Symbolic dims
    /// the model cannot keep (a spatial size a convolution needs) become fixed.
    /// Of `values` (the tensors themselves, when given), those the model needs
    /// known at import — a shape, pads or a trip count fed as an input — are
    /// fixed to their values and stop being inputs.
    PinnedOnnx {
        path: PathBuf,
        input_shapes: BTreeMap<String, Vec<usize>>,
        dims: BTreeMap<String, u64>,
        values: BTreeMap<String, smelt_ir::Tensor>,
    },
    /// A graph (its weights set on it).
    Graph(Graph),
}

impl From<&Path> for Source {
    fn from(p: &Path) -> Source {
        Source::Path(p.to_path_buf())
    }
}

impl From<PathBuf> for Source {
    fn from(p: PathBuf) -> Source {
        Source::Path(p)
    }
}

impl From<&str> for Source {
    fn from(p: &str) -> Source {
        Source::Path(PathBuf::from(p))
    }
}

impl From<Graph> for Source {
    fn from(g: Graph) -> Source {
        Source::Graph(g)
    }
}

impl From<&Graph> for Source {
    fn from(g: &Graph) -> Source {
        Source::Graph(g.clone())
    }
}

impl Source {
    /// The file the model came from, as the user named it (for messages).
    pub fn file(&self) -> Option<String> {
        match self {
            Source::Path(p) | Source::PinnedOnnx { path: p, .. } => Some(p.display().to_string()),
            _ => None,
        }
    }
}

/// Whether a path names an ONNX model (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Loads and verifies a model; the graph has every weight its params declare.
pub fn load(source: Source) -> Result<Graph> {
    match source {
        Source::Path(p) if is_onnx(&p) => load_onnx_file(&p, None),
        Source::PinnedOnnx { path, input_shapes, dims, values } => {
            let mut opts = onnx::Options { input_shapes, dims, ..onnx::Options::default() };
            let file = path.display().to_string();
            // Each retry freezes at least one more input, so this ends.
            let g = loop {
                match onnx::import_file(&path, &opts) {
                    Ok(m) => break m.graph,
                    Err(e) => {
                        let need: Vec<String> = e.needs_constant().iter().map(|n| n.input.clone()).collect();
                        let new: Vec<String> =
                            need.into_iter().filter(|n| values.contains_key(n) && !opts.frozen.contains_key(n)).collect();
                        if new.is_empty() {
                            return Err(import_error(&file, &e));
                        }
                        for n in new {
                            opts.frozen.insert(n.clone(), values[&n].clone());
                        }
                    }
                }
            };
            verified(g, Some(&file))
        }
        Source::Path(p) => load_smelt(&p),
        Source::Onnx { bytes, name } => {
            let opts = onnx::Options { name: Some(name.clone()), ..onnx::Options::default() };
            let g = onnx::import(&bytes, &opts).map_err(|e| import_error(&name, &e))?.graph;
            verified(g, None)
        }
        Source::Graph(g) => verified(g, None),
    }
}

/// Imports an `.onnx` file (the graph named `name`, default the file's stem).
pub fn load_onnx_file(path: &Path, name: Option<&str>) -> Result<Graph> {
    let opts = onnx::Options { name: name.map(str::to_string), ..onnx::Options::default() };
    let file = path.display().to_string();
    let g = onnx::import_file(path, &opts).map_err(|e| import_error(&file, &e))?.graph;
    verified(g, Some(&file))
}

fn verified(g: Graph, file: Option<&str>) -> Result<Graph> {
    match smelt_ir::verify(&g, Weights::Required) {
        Ok(()) => Ok(g),
        Err(d) => Err(Error::diags(ErrorKind::Model, d.0).in_file(file)),
    }
}

/// An import error: one `error:` block per problem.
fn import_error(file: &str, e: &onnx::Error) -> Error {
    let text = |m: String| Error::text(ErrorKind::Model, m);
    match e {
        onnx::Error::Unsupported(v) => {
            let mut s = format!("error: {file}: {} unsupported ONNX node{}:", v.len(), if v.len() == 1 { "" } else { "s" });
            for u in v {
                s.push_str(&format!("\n  {u}"));
            }
            text(s)
        }
        onnx::Error::Ir(d) => Error::diags(ErrorKind::Model, d.0.clone()).in_file(Some(file)),
        onnx::Error::Io { .. } => Error::text(ErrorKind::Io, e.to_string()),
        onnx::Error::Errors(v) => Error::all(ErrorKind::Model, v.iter().map(|e| import_error(file, e)).collect()),
        e => text(format!("error: {file}: {}", e.to_string().replace('\n', "\n  "))),
    }
}

/// Reads and parses a `.smelt` file; returns its source too. Parse and type
/// errors are all reported, with `file:line:col`.
pub fn parse_smelt(path: &Path) -> Result<(Graph, String)> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| Error::text(ErrorKind::Io, format!("cannot read {file}: {e}")))?;
    match text::parse(&src) {
        Ok(g) => Ok((g, src)),
        Err(d) => Err(Error::diags(ErrorKind::Model, d.0).in_file(Some(&file))),
    }
}

/// Parses a `.smelt` file, loads its weights from the `.safetensors` beside it
/// (required when it has params; loaded and checked whenever the file exists) and
/// verifies it.
pub fn load_smelt(path: &Path) -> Result<Graph> {
    let file = path.display().to_string();
    let (mut g, _) = parse_smelt(path)?;
    let wpath = weights::weights_path(path);
    let wfile = wpath.display().to_string();
    let nparams = g.params().len();
    if nparams > 0 || wpath.exists() {
        if !wpath.exists() {
            return Err(Error::text(
                ErrorKind::Model,
                format!(
                    "error: {file} declares {nparams} param{}, but there is no weights file {wfile}\n  \
                     hint: `smelt init-weights {file}` writes random ones",
                    if nparams == 1 { "" } else { "s" },
                ),
            ));
        }
        let tensors = weights::read_safetensors(&wpath).map_err(|e| Error::text(ErrorKind::Model, e.render(None)))?;
        check_weights(&g, &tensors, &file, &wfile)?;
        weights::load_weights(&mut g, tensors, &wfile).map_err(|e| Error::text(ErrorKind::Model, e.render(None)))?;
    }
    verified(g, Some(&file))
}

/// Checks a weights file against the params (as `weights::load_weights` does), so
/// that each problem is reported on its own, pointing at the param's declaration.
fn check_weights(g: &Graph, tensors: &BTreeMap<String, Tensor>, file: &str, wfile: &str) -> Result<()> {
    let mut problems: Vec<Error> = Vec::new();
    for id in g.params() {
        let n = g.node(id);
        let (name, ty) = (n.name(), &n.types[0]);
        let msg = match tensors.get(name) {
            Some(t) if t.fits(ty) => continue,
            Some(t) => format!("weight `{name}` in {wfile} is {}, but the model declares {ty}", t.tensor_type()),
            None => format!("{wfile} has no weight named `{name}` (the model declares {ty})"),
        };
        problems.push(Error::diags(ErrorKind::Model, [g.diag(id, msg)]).in_file(Some(file)));
    }
    for extra in tensors.keys().filter(|k| g.params().iter().all(|&id| g.node(id).name() != k.as_str())) {
        problems.push(Error::text(ErrorKind::Model, format!("error: tensor `{extra}` names no param of graph {}\n  --> {wfile}", g.name)));
    }
    match problems.len() {
        0 => Ok(()),
        _ => Err(rendered_all(ErrorKind::Model, problems)),
    }
}

/// Errors that may each point at a different file, as one error of rendered
/// blocks.
pub(crate) fn rendered_all(kind: ErrorKind, errors: Vec<Error>) -> Error {
    if errors.len() == 1 {
        return errors.into_iter().next().expect("one error");
    }
    Error::all(kind, errors.into_iter().map(|e| Error::text(e.kind().clone(), e.to_string())).collect())
}
