//! What the model-to-model commands (`quantize`, `prune`) share: sample inputs
//! from safetensors files and seeded random draws, a progress line on a
//! terminal, and writing the result (`OUT.smelt`, `OUT.safetensors`, the JSON
//! report) only once all of it is ready.

use super::{engine_err, reported, shown};
use smelt::engine::quantize::{random_samples, split_samples};
use smelt::engine::{Graph, Tensors};
use smelt::ir::{Bindings, weights};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Inputs from `files` (each like `run --inputs`, or stacked with one more
/// leading dim) and `random` seeded random ones (symbolic dims from `dims`,
/// else 1).
pub fn samples(g: &Graph, files: &[PathBuf], random: Option<usize>, dims: &[(String, u64)]) -> anyhow::Result<Vec<Tensors>> {
    let mut out: Vec<Tensors> = vec![];
    for path in files {
        let t = weights::read_safetensors(path).or_else(|e| reported(e.render(None)))?;
        let t: Tensors = t.into_iter().filter(|(k, _)| !k.starts_with("expected.")).collect();
        out.extend(split_samples(g, t).map_err(|e| engine_err(e.with_inputs_file(Some(&shown(path)))))?);
    }
    if let Some(n) = random {
        let dims: Bindings = dims.iter().cloned().collect();
        out.extend(random_samples(g, n, &dims).map_err(engine_err)?);
    }
    Ok(out)
}

/// Runs `f` with a progress callback that redraws one line on a terminal
/// (nothing otherwise), and clears the line after.
pub fn with_progress<T>(f: impl FnOnce(&mut dyn FnMut(&str, usize, usize)) -> T) -> T {
    let tty = std::io::stderr().is_terminal();
    let mut progress = |stage: &str, done: usize, total: usize| {
        if tty {
            eprint!("\r\x1b[2K{stage} {done}/{total}");
            let _ = std::io::stderr().flush();
        }
    };
    let out = f(&mut progress);
    if tty {
        eprint!("\r\x1b[2K");
    }
    out
}

/// Writes `OUT.smelt` and `OUT.safetensors` for `g`, and `report` (JSON) to
/// its path when asked; returns the model's and the weights' paths.
pub fn write(g: &Graph, out: &Path, report: Option<(&Path, String)>) -> anyhow::Result<(PathBuf, PathBuf)> {
    for p in [Some(out), report.as_ref().map(|r| r.0)].into_iter().flatten() {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return reported(format!("error: cannot create {}: {e}", shown(dir)));
        }
    }
    if let Some((r, json)) = &report
        && let Err(e) = weights::write_atomic(r, json.as_bytes())
    {
        return reported(e.render(None));
    }
    weights::write_model(g, out).or_else(|e| reported(e.render(None)))
}
