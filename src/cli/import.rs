//! `smelt import MODEL.onnx -o DIR`: imports an ONNX model and writes it as smelt
//! text (`DIR/NAME.smelt`) with its weights (`DIR/NAME.safetensors`), both
//! atomically; a failure to write the second removes the first. Also the loader
//! that lets `run`, `check` and the other commands take `.onnx` files directly.

use super::{reported, shown};
use smelt::frontends::onnx;
use smelt::ir::{self, Graph, Weights, text, weights};
use std::path::Path;

/// Whether a path names an ONNX model (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Imports an `.onnx` file; every problem (all unsupported ops with their nodes,
/// a corrupt file, …) is reported at once.
pub fn load_onnx(path: &Path) -> anyhow::Result<Graph> {
    load_onnx_named(path, None)
}

/// [`load_onnx`], naming the graph (default: the file's stem).
fn load_onnx_named(path: &Path, name: Option<&str>) -> anyhow::Result<Graph> {
    let opts = onnx::Options { name: name.map(str::to_string), ..onnx::Options::default() };
    let g = match onnx::import_file(path, &opts) {
        Ok(m) => m.graph,
        Err(e) => return reported(render(path, &e)),
    };
    if let Err(d) = ir::verify(&g, Weights::Required) {
        return reported(d.render(Some(&shown(path))));
    }
    Ok(g)
}

/// An import error as the CLI shows it: one `error:` line per problem.
fn render(path: &Path, e: &onnx::Error) -> String {
    let file = shown(path);
    match e {
        onnx::Error::Unsupported(v) => {
            let mut s =
                format!("error: {file}: {} unsupported ONNX node{}:", v.len(), if v.len() == 1 { "" } else { "s" });
            for u in v {
                s.push_str(&format!("\n  {u}"));
            }
            s
        }
        onnx::Error::Ir(d) => d.render(Some(&file)),
        onnx::Error::Io { .. } => format!("error: {e}"),
        onnx::Error::Errors(v) => v.iter().map(|e| render(path, e)).collect::<Vec<_>>().join("\n"),
        e => format!("error: {file}: {}", e.to_string().replace('\n', "\n  ")),
    }
}

pub fn main(model: &Path, out: &Path, name: Option<&str>) -> anyhow::Result<()> {
    let mut g = load_onnx_named(model, name)?;
    let stem = name
        .map(str::to_string)
        .unwrap_or_else(|| model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    if stem.is_empty() || stem.contains(['/', '\\']) {
        return reported(format!("error: `{stem}` is not a model name; pass --name"));
    }
    g.doc = vec![format!(
        "imported from {} by `smelt import`",
        model.file_name().map(|f| f.to_string_lossy()).unwrap_or_default()
    )];
    let model_text = text::print(&g);
    if let Err(e) = std::fs::create_dir_all(out) {
        return reported(format!("error: cannot create {}: {e}", shown(out)));
    }
    let path = out.join(format!("{stem}.smelt"));
    let wpath = weights::weights_path(&path);
    let tensors: Vec<(String, std::sync::Arc<ir::Tensor>)> =
        g.weights().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Err(e) = weights::write_safetensors(&wpath, tensors.iter().map(|(k, v)| (k.as_str(), &**v))) {
        return reported(e.render(None));
    }
    if let Err(e) = weights::write_atomic(&path, model_text.as_bytes()) {
        let _ = std::fs::remove_file(&wpath);
        return reported(e.render(None));
    }
    let bytes: usize = tensors.iter().map(|(_, t)| t.numel() * t.dtype().size()).sum();
    println!(
        "wrote {} ({} nodes) and {} ({} params, {bytes} bytes)",
        shown(&path),
        g.len(),
        shown(&wpath),
        tensors.len()
    );
    Ok(())
}
