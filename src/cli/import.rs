//! `smelt import MODEL.onnx -o DIR`: imports an ONNX model and writes it as smelt
//! text (`DIR/NAME.smelt`) with its weights (`DIR/NAME.safetensors`), both
//! atomically; a failure to write the second removes the first. (`run`, `check`
//! and the other commands take `.onnx` files directly through the engine.)

use super::{engine_err, reported, shown};
use smelt::ir::{self, Graph, text, weights};
use std::path::Path;

/// Imports an `.onnx` file (the graph named `name`, default the file's stem);
/// every problem (all unsupported ops with their nodes, a corrupt file, …) is
/// reported at once.
fn load_onnx_named(path: &Path, name: Option<&str>) -> anyhow::Result<Graph> {
    smelt::engine::load::load_onnx_file(path, name).map_err(engine_err)
}

/// Imports `model` (its symbolic dims fixed by `dims`, if any) and writes it.
pub fn main(model: &Path, out: &Path, name: Option<&str>, dims: &[(String, u64)]) -> anyhow::Result<()> {
    let mut g = if dims.is_empty() {
        load_onnx_named(model, name)?
    } else {
        let (source, _) = super::source_with_dims(model, dims);
        let mut g = smelt::engine::load(source).map_err(engine_err)?;
        if let Some(n) = name {
            g.name = n.to_string();
        }
        g
    };
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
