//! `smelt prune MODEL -o OUT --sparsity S [--pattern P] [--global] [--budget E]`:
//! magnitude pruning through the engine ([`smelt::engine::prune`]). The check
//! inputs come from safetensors files (`--inputs`, each like `run --inputs`, or
//! stacked with one more leading dim) or are drawn at random (`--random N`, 8
//! by default). Prints the per-layer report and the measured error; writes
//! `OUT.smelt` and `OUT.safetensors` (atomically, only on success), and the
//! report as JSON with `--report`.

use super::{BackendArg, EngineArgs, engine_err, reported, shown};
use smelt::engine::prune::{PruneOptions, PruneReport};
use smelt::engine;
use std::path::PathBuf;

/// What `prune` was asked to do.
#[derive(Debug)]
pub struct PruneArgs {
    pub model: PathBuf,
    pub out: PathBuf,
    pub sparsity: f64,
    pub pattern: String,
    pub global: bool,
    pub exclude: Vec<String>,
    pub budget: Option<String>,
    pub inputs: Vec<PathBuf>,
    pub random: Option<usize>,
    pub report: Option<PathBuf>,
    pub dims: Vec<(String, u64)>,
    pub backend: BackendArg,
    pub threads: usize,
    pub engine: EngineArgs,
}

pub fn main(a: &PruneArgs) -> anyhow::Result<()> {
    let pattern = a.pattern.parse().or_else(|e| reported(format!("error: --pattern: {e}")))?;
    if !(0.0..1.0).contains(&a.sparsity) {
        return reported(format!("error: --sparsity must be in [0, 1), found {}", a.sparsity));
    }
    let budget = match &a.budget {
        Some(b) => Some(super::quantize::parse_budget(b).or_else(|e| reported(format!("error: {e}")))?),
        None => None,
    };
    let run = a.engine.options(a.backend.kind(), a.threads, None)?;
    let (source, dims) = super::source_with_dims(&a.model, &a.dims);
    let g = engine::load(source).map_err(engine_err)?;
    let random = a.random.or(if a.inputs.is_empty() { Some(8) } else { None });
    let samples = super::steps::samples(&g, &a.inputs, random, dims)?;
    let mut o = PruneOptions::new(a.sparsity, run);
    o.pattern = pattern;
    o.global = a.global;
    o.exclude = a.exclude.clone();
    o.budget = budget;
    let p = super::steps::with_progress(|pr| engine::prune(&g, &samples, &o, pr)).map_err(engine_err)?;
    print_report(&p.report);
    let report = a.report.as_deref().map(|r| (r, p.report.to_json()));
    let (mpath, wpath) = super::steps::write(&p.graph, &a.out, report)?;
    eprintln!("wrote {} and {}", shown(&mpath), shown(&wpath));
    Ok(())
}

fn print_report(r: &PruneReport) {
    println!("{:<40} {:<12} {:>12} {:>8} {:>8} {:>11}  reason", "layer", "op", "out×in", "before", "after", "sensitivity");
    for l in &r.layers {
        let sens = l.sensitivity.map(|s| format!("{:.4}%", s * 100.0)).unwrap_or_else(|| "-".into());
        let shape = format!("{}×{}", l.out_in[0], l.out_in[1]);
        println!(
            "{:<40} {:<12} {:>12} {:>7.1}% {:>7.1}% {:>11}  {}",
            l.name,
            l.op,
            shape,
            l.before * 100.0,
            l.after * 100.0,
            sens,
            l.reason
        );
    }
    let pruned = r.layers.iter().filter(|l| l.reason == "pruned").count();
    let scope = if r.global { "global threshold" } else { "per layer" };
    print!(
        "{pruned}/{} layers pruned ({}, {scope}); weights {:.1}% zero; output error {:.4}% ({:.1} dB SQNR) on {} inputs",
        r.layers.len(),
        r.pattern,
        r.sparsity * 100.0,
        r.error * 100.0,
        r.sqnr_db,
        r.inputs
    );
    if let Some(a) = r.argmax_agreement {
        print!(", argmax agreement {:.2}%", a * 100.0);
    }
    if let Some(b) = r.budget {
        print!(", budget {:.3}%", b * 100.0);
    }
    println!();
    println!(
        "on {}: {} of {} layers compile to sparse kernels; dense {:.3} ms, pruned {:.3} ms ({:.2}×; median of one run per input)",
        r.backend,
        r.sparse_layers,
        r.layers.len(),
        r.dense_ms,
        r.pruned_ms,
        r.dense_ms / r.pruned_ms.max(1e-9)
    );
}
