//! `smelt init-weights MODEL [--seed S] [-o FILE]`: seeded random weights for a
//! model's params (see `smelt_runtime::init` for how each role is drawn).

use super::{parse_model, reported, shown};
use smelt::ir::weights;
use smelt::runtime::init::random_weights;
use std::path::Path;

pub fn main(model: &Path, seed: u64, out: Option<&Path>) -> anyhow::Result<()> {
    let (g, _) = parse_model(model)?;
    let tensors = match random_weights(&g, seed) {
        Ok(t) => t,
        Err(msg) => {
            let blocks: Vec<String> = msg.lines().map(|l| format!("error: {l}\n  --> {}", shown(model))).collect();
            return reported(blocks.join("\n"));
        }
    };
    if tensors.is_empty() {
        eprintln!("{} has no params: nothing written", shown(model));
        return Ok(());
    }
    let path = out.map(Path::to_path_buf).unwrap_or_else(|| weights::weights_path(model));
    if let Err(e) = weights::write_safetensors(&path, tensors.iter().map(|(k, v)| (k.as_str(), v))) {
        return reported(e.render(None));
    }
    let bytes: usize = tensors.values().map(|t| t.numel() * t.dtype().size()).sum();
    println!("wrote {} params ({bytes} bytes) to {}", tensors.len(), shown(&path));
    Ok(())
}
