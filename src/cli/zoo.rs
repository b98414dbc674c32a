//! `smelt zoo NAME [--set key=value …] [--seed S] [-o DIR]`: writes a built-in model
//! (`DIR/NAME.smelt`) and seeded random weights for it (`DIR/NAME.safetensors`);
//! `smelt zoo --list [NAME]` lists the models with their settings and defaults.
//!
//! The model is built, checked and its weights drawn before anything is written;
//! both files are written atomically, and a failure to write the second removes the
//! first, so a failed command leaves nothing behind.

use super::{reported, shown};
use smelt::frontends::zoo;
use smelt::ir::{text, weights};
use std::fmt::Write;
use std::path::PathBuf;

/// What `zoo` was asked to do.
#[derive(Debug)]
pub struct ZooArgs {
    pub name: Option<String>,
    pub list: bool,
    /// `key=value` texts, applied in order.
    pub set: Vec<String>,
    pub seed: u64,
    pub out: PathBuf,
}

pub fn main(a: &ZooArgs) -> anyhow::Result<()> {
    let names = || zoo::models().iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
    if a.list {
        return match listing(a.name.as_deref()) {
            Some(text) => {
                print!("{text}");
                Ok(())
            }
            None => reported(format!(
                "error: unknown model `{}`; the zoo has: {}",
                a.name.as_deref().unwrap_or(""),
                names()
            )),
        };
    }
    let Some(name) = a.name.as_deref() else {
        return reported(format!("error: name a model: {}\n  hint: `smelt zoo --list` shows their settings", names()));
    };
    let mut settings = Vec::new();
    for s in &a.set {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => settings.push((k.trim().to_string(), v.trim().to_string())),
            _ => return reported(format!("error: --set `{s}` is not KEY=VALUE")),
        }
    }
    let g = smelt::engine::zoo::build(name, &settings, a.seed).map_err(super::engine_err)?;
    let model_text = text::print(&g.graph);

    if let Err(e) = std::fs::create_dir_all(&a.out) {
        return reported(format!("error: cannot create {}: {e}", shown(&a.out)));
    }
    let model = a.out.join(format!("{name}.smelt"));
    let wpath = weights::weights_path(&model);
    let tensors = g.graph.weights();
    if let Err(e) = weights::write_safetensors(&wpath, tensors.iter().map(|(k, v)| (k.as_str(), &**v))) {
        return reported(e.render(None));
    }
    if let Err(e) = weights::write_atomic(&model, model_text.as_bytes()) {
        let _ = std::fs::remove_file(&wpath);
        return reported(e.render(None));
    }
    let bytes: usize = tensors.values().map(|t| t.numel() * t.dtype().size()).sum();
    println!(
        "wrote {} ({} nodes) and {} ({} params, {bytes} bytes)",
        shown(&model),
        g.graph.len(),
        shown(&wpath),
        tensors.len()
    );
    Ok(())
}

/// Every model (or only `only`) with its settings; `None` when `only` names none.
fn listing(only: Option<&str>) -> Option<String> {
    let models: Vec<_> = zoo::models().into_iter().filter(|m| only.is_none_or(|n| n == m.name)).collect();
    if models.is_empty() {
        return None;
    }
    let mut s = String::new();
    for m in models {
        let _ = writeln!(s, "{}: {}", m.name, m.about);
        let width = m.keys.iter().map(|k| k.name.len() + k.value.len() + 3).max().unwrap_or(0);
        for k in &m.keys {
            let kv = format!("{} = {}", k.name, k.value);
            let _ = writeln!(s, "    {kv:width$}  {}", k.help);
        }
    }
    Some(s)
}
