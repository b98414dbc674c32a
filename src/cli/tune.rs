//! `smelt tune MODEL [--backend B] [--threads N] [--dim S=N] [--runs R] [--tuning FILE] [--json]`:
//! measures schedule candidates for each class of conv and matmul in the model on
//! this machine (`smelt_engine::tune`), checks the tuned model against the
//! interpreter, and stores the winners in the tuning database under this CPU,
//! backend and thread count, where later `run`, `bench` and `compile` find them.
//! A progress bar shows the candidates; the report lists each class's choice and
//! time, the model's time untuned and tuned, and the machine's measured peak.

use super::{BackendArg, EngineArgs, engine_err, reported, shown};
use smelt::engine::{self, Model, TuneOptions, TuneReport, TuningDb};
use std::path::PathBuf;

/// What `tune` was asked to do.
#[derive(Debug)]
pub struct TuneArgs {
    pub model: PathBuf,
    pub backend: BackendArg,
    pub threads: usize,
    pub runs: usize,
    pub dims: Vec<(String, u64)>,
    pub json: bool,
    pub engine: EngineArgs,
}

pub fn main(a: &TuneArgs) -> anyhow::Result<()> {
    if a.engine.schedule_help() {
        return Ok(());
    }
    let Some(path) = a.engine.tuning_path() else {
        return reported("error: smelt tune stores its results in a tuning file: give one with --tuning FILE (SMELT_TUNING=off and --no-tuning leave none)");
    };
    let untuned = EngineArgs { tuning: None, no_tuning: true, ..a.engine.clone() };
    let opts = untuned.options(a.backend.kind(), a.threads, None)?;
    let (source, dims) = super::source_with_dims(&a.model, &a.dims);
    let model = engine::prepare(source, &opts).map_err(engine_err)?;
    let report = run_tuner(&model, dims, a.runs, !a.json)?;
    store(&report, &path)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json(&report, &path)).expect("JSON"));
    } else {
        print_report(&report, &shown(&a.model), &path);
    }
    Ok(())
}

/// Tunes `model` with a progress bar on stderr (when `bar`).
pub fn run_tuner(model: &Model, dims: &[(String, u64)], runs: usize, bar: bool) -> anyhow::Result<TuneReport> {
    let pb = indicatif::ProgressBar::new(0);
    if bar {
        pb.set_style(
            indicatif::ProgressStyle::with_template("tuning [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
    } else {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let o = TuneOptions { dims: dims.to_vec(), runs: runs.max(1), ..TuneOptions::default() };
    let r = engine::tune(model, &o, &mut |done, total, what| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        pb.set_message(what.to_string());
    });
    pb.finish_and_clear();
    r.map_err(engine_err)
}

/// Adds the report's entry to the database at `path` (other entries kept; a
/// file that cannot be read is replaced, after its warning).
pub fn store(r: &TuneReport, path: &std::path::Path) -> anyhow::Result<()> {
    let loaded = TuningDb::load(path);
    if let Some(w) = &loaded.warning {
        eprintln!("warning: {w}; writing a new one");
    }
    let mut db = loaded.db;
    db.upsert(r.entry());
    db.save(path).map_err(engine_err)
}

fn print_report(r: &TuneReport, model: &str, path: &std::path::Path) {
    println!("{model}: {} ({} thread{}) on {}", r.backend, r.threads, if r.threads == 1 { "" } else { "s" }, r.host.cpu);
    println!("peak          {:.1} GFLOP/s f32 FMA, {:.1} GB/s read (one core)", r.peak_gflops, r.bandwidth_gbs);
    let c = &r.calibration;
    println!(
        "{:<14}GEMM {:.1} GFLOP/s ({:.0}% of peak), stream {:.1} GB/s, {:.2} µs per kernel call (the cost models' rates)",
        r.backend.name(),
        c.gemm_mflops as f64 * 1e-3,
        c.gemm_mflops as f64 * 1e-1 / r.peak_gflops.max(1e-9),
        c.stream_mbs as f64 * 1e-3,
        c.launch_ns as f64 * 1e-3
    );
    println!("classes       {} ({} candidates in {:.1} s)", r.classes.len(), r.candidates, r.seconds);
    for c in &r.classes {
        let choice = if c.choice.is_empty() { "defaults".to_string() } else { c.choice.describe() };
        let n = c.nodes.len();
        println!(
            "  {:>9.3} -> {:>9.3} ms  {:<28} {} ({n} node{})",
            c.default_ms,
            c.tuned_ms,
            choice,
            c.key,
            if n == 1 { "" } else { "s" }
        );
    }
    println!("model         {:.3} ms untuned, {:.3} ms tuned (median)", r.model_default_ms, r.model_tuned_ms);
    if !r.kept_choices {
        println!("              the model ran slower with the classes' choices: they are not kept (the defaults run)");
    }
    println!("check         max error {:.2e} of the largest output, against the interpreter", r.max_error);
    println!("saved         {} ({} tuned classes)", shown(path), r.tuning.choices.len());
}

fn json(r: &TuneReport, path: &std::path::Path) -> serde_json::Value {
    serde_json::json!({
        "cpu": r.host.cpu,
        "features": r.host.features,
        "backend": r.backend.name(),
        "threads": r.threads,
        "peak_gflops": r.peak_gflops,
        "bandwidth_gbs": r.bandwidth_gbs,
        "gemm_gflops": r.calibration.gemm_mflops as f64 * 1e-3,
        "stream_gbs": r.calibration.stream_mbs as f64 * 1e-3,
        "launch_us": r.calibration.launch_ns as f64 * 1e-3,
        "candidates": r.candidates,
        "seconds": r.seconds,
        "model_default_ms": r.model_default_ms,
        "model_tuned_ms": r.model_tuned_ms,
        "max_error": r.max_error,
        "kept_choices": r.kept_choices,
        "saved": shown(path),
        "classes": r.classes.iter().map(|c| serde_json::json!({
            "key": c.key,
            "nodes": c.nodes,
            "choice": c.choice.describe(),
            "default_ms": c.default_ms,
            "tuned_ms": c.tuned_ms,
        })).collect::<Vec<_>>(),
    })
}

/// `--tune` on `run`, `bench` and `compile`: tunes `model` (a CPU backend's),
/// stores the result and sets it on the model; a note on stderr says what it
/// found. Nothing happens without the flag or on other backends.
pub fn if_asked(engine: &EngineArgs, model: &mut Model, dims: &[(String, u64)]) -> anyhow::Result<()> {
    if !engine.tune || !matches!(model.options().backend, smelt::engine::BackendKind::Cranelift | smelt::engine::BackendKind::Llvm) {
        return Ok(());
    }
    let Some(path) = engine.tuning_path() else {
        return reported("error: --tune stores its results in a tuning file: give one with --tuning FILE");
    };
    model.set_tuning(None);
    let r = run_tuner(model, dims, TuneOptions::default().runs, true)?;
    store(&r, &path)?;
    eprintln!(
        "tuned {} classes in {:.1} s: {:.3} -> {:.3} ms{} (saved to {})",
        r.classes.len(),
        r.seconds,
        r.model_default_ms,
        r.model_tuned_ms,
        if r.kept_choices { "" } else { ", choices not kept" },
        shown(&path)
    );
    model.set_tuning(Some(std::sync::Arc::new(r.tuning)));
    Ok(())
}
