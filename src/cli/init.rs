//! `smelt init-weights MODEL [--seed S] [-o FILE]`: seeded random weights for a
//! model's params (see `smelt_runtime::init` for how each role is drawn).

use super::{parse_model, reported, shown};
use smelt::ir::Diagnostics;
use smelt::ir::weights;
use smelt::runtime::init::random_param;
use std::collections::BTreeMap;
use std::path::Path;

pub fn main(model: &Path, seed: u64, out: Option<&Path>) -> anyhow::Result<()> {
    let (g, _) = parse_model(model)?;
    // Param by param (as `random_weights` does), so each problem points at its param.
    let mut tensors = BTreeMap::new();
    let mut problems = Vec::new();
    for id in g.params() {
        match random_param(&g, id, seed) {
            Ok(t) => {
                tensors.insert(g.node(id).name().to_string(), t);
            }
            Err(m) => problems.push(g.diag(id, m)),
        }
    }
    if !problems.is_empty() {
        return reported(Diagnostics(problems).render(Some(&shown(model))));
    }
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
