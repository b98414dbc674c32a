//! `smelt prune MODEL -o OUT --sparsity S [--pattern P] [--global] [--budget E]`:
//! magnitude pruning through the engine ([`smelt::engine::prune`]). The check
//! inputs come from safetensors files (`--inputs`, each like `run --inputs`, or
//! stacked with one more leading dim) or are drawn at random (`--random N`, 8
//! by default). Prints the per-layer report and the measured error; writes
//! `OUT.smelt` and `OUT.safetensors` (atomically, only on success), and the
//! report as JSON with `--report`.

use super::{BackendArg, EngineArgs, engine_err, reported, shown};
use smelt::engine::prune::{PruneOptions, PruneReport};
use smelt::engine::quantize::split_samples;
use smelt::engine::{self, Tensors};
use smelt::ir::{Bindings, weights};
use std::io::{IsTerminal, Write};
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
    let mut samples: Vec<Tensors> = vec![];
    for path in &a.inputs {
        let t = weights::read_safetensors(path).or_else(|e| reported(e.render(None)))?;
        let t: Tensors = t.into_iter().filter(|(k, _)| !k.starts_with("expected.")).collect();
        samples.extend(split_samples(&g, t).map_err(|e| engine_err(e.with_inputs_file(Some(&shown(path)))))?);
    }
    let random = a.random.or(if a.inputs.is_empty() { Some(8) } else { None });
    if let Some(n) = random {
        let mut b = Bindings::new();
        for (k, v) in dims {
            b.insert(k.clone(), *v);
        }
        for &i in g.inputs() {
            for s in g.node(i).types[0].shape.symbols() {
                b.entry(s.to_string()).or_insert(1);
            }
        }
        for seed in 0..n as u64 {
            samples.push(smelt::runtime::init::random_inputs(&g, seed, &b).or_else(|e| reported(format!("error: {e}")))?);
        }
    }
    let mut o = PruneOptions::new(a.sparsity, run);
    o.pattern = pattern;
    o.global = a.global;
    o.exclude = a.exclude.clone();
    o.budget = budget;
    let tty = std::io::stderr().is_terminal();
    let mut progress = |stage: &str, done: usize, total: usize| {
        if tty {
            eprint!("\r\x1b[2K{stage} {done}/{total}");
            let _ = std::io::stderr().flush();
        }
    };
    let p = engine::prune(&g, &samples, &o, &mut progress).map_err(engine_err);
    if tty {
        eprint!("\r\x1b[2K");
    }
    let p = p?;
    print_report(&p.report);
    let (mpath, wpath) = super::opt::out_paths(&a.out);
    for f in [Some(&mpath), a.report.as_ref()].into_iter().flatten() {
        if let Some(dir) = f.parent().filter(|d| !d.as_os_str().is_empty())
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return reported(format!("error: cannot create {}: {e}", shown(dir)));
        }
    }
    if let Some(r) = &a.report
        && let Err(e) = weights::write_atomic(r, p.report.to_json().as_bytes())
    {
        return reported(e.render(None));
    }
    if let Err(e) = weights::write_safetensors(&wpath, p.graph.weights().iter().map(|(k, v)| (k.as_str(), &**v))) {
        return reported(e.render(None));
    }
    if let Err(e) = weights::write_atomic(&mpath, smelt::ir::text::print(&p.graph).as_bytes()) {
        return reported(e.render(None));
    }
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
