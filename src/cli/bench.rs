//! `smelt bench MODEL [--backend B] [--threads N] [--runs R] [--warmup W] [-O L] [--schedule S] [--json]`:
//! times a model (smelt text or ONNX) the way the peer benchmarks do
//! (`scripts/bench/run.sh`): the model is optimized (`-O2` by default: what is timed
//! is the optimized graph), compiled, run `--warmup` times untimed, then `--runs`
//! times; the median and the minimum of those runs are reported, with the time of
//! the optimizer and of the backend's compilation apart, and the process's CPU time
//! per run beside the wall time. Inputs are seeded random
//! (`--random SEED`, `--dim SYM=SIZE`). `--profile` then times each kernel call over
//! `--runs` more runs, warm (unlike `smelt run --profile`, whose single run also pays
//! for first touches of memory), and prints each kernel's median, slowest first.
//! Memory: the process's peak resident set (compile and runs) and, on the CPU
//! backends, the plan's arena and constants.
//!
//! A backend that cannot compile the model fails with its
//! `not supported on <backend>: <op> at node <name>` message and exit status 1.

use super::{BackendArg, EngineArgs, engine_err, shown};
use smelt::engine::bench::{self, BenchOptions, KernelMedian};
use std::path::PathBuf;

/// What `bench` was asked to do.
#[derive(Debug)]
pub struct BenchArgs {
    pub model: PathBuf,
    pub backend: BackendArg,
    pub threads: usize,
    pub runs: usize,
    pub warmup: usize,
    pub seed: u64,
    pub dims: Vec<(String, u64)>,
    pub json: bool,
    pub profile: bool,
    pub engine: EngineArgs,
}

pub fn main(a: &BenchArgs) -> anyhow::Result<()> {
    let mut o = BenchOptions { runs: a.runs, warmup: a.warmup, seed: a.seed, dims: vec![], profile: a.profile };
    o.check(a.backend.kind()).map_err(engine_err)?;
    if a.engine.schedule_help() {
        return Ok(());
    }
    let opts = a.engine.options(a.backend.kind(), a.threads, None)?;
    let (source, dims) = super::source_with_dims(&a.model, &a.dims);
    let mut model = smelt::engine::prepare(source, &opts).map_err(engine_err)?;
    super::tune::if_asked(&a.engine, &mut model, dims)?;
    o.dims = dims.to_vec();
    let r = bench::bench(model, &o).map_err(engine_err)?;
    let model = shown(&a.model);
    if a.json {
        let mut doc = serde_json::json!({"model": model});
        if let (Some(d), serde_json::Value::Object(m)) = (doc.as_object_mut(), r.json()) {
            d.extend(m);
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let threads = if r.threads == 1 { "1 thread".to_string() } else { format!("{} threads", r.threads) };
    println!("{model}: graph {}, {}, {threads}", r.graph, r.backend.name());
    println!("optimize  {:10.3} ms  (-{}: {} nodes -> {})", r.optimize_ms, r.opt_level, r.nodes_before, r.nodes_after);
    match r.compile_ms {
        Some(c) => println!("compile   {c:10.3} ms"),
        None => println!("compile          n/a  (the interpreter runs the graph as it is)"),
    }
    println!(
        "run       {:10.3} ms  median; min {:.3} ms, mean {:.3} ms ({} runs after {} warm-up)",
        r.wall.median, r.wall.min, r.wall.mean, a.runs, a.warmup
    );
    // The CPU time of the process (all threads) per run: on a busy machine
    // it moves less than the wall time when other processes take turns.
    println!("cpu       {:10.3} ms  median; min {:.3} ms (all threads)", r.cpu.median, r.cpu.min);
    let mb = |b: usize| b as f64 / (1 << 20) as f64;
    let mut memory = Vec::new();
    if let Some(b) = r.peak_rss_bytes {
        memory.push(format!("peak RSS {:.1} MiB (the process: compile and runs)", mb(b)));
    }
    if let Some(p) = r.plan {
        memory.push(format!("arena {:.1} MiB, constants {:.1} MiB", mb(p.peak_bytes), mb(p.const_bytes)));
    }
    if !memory.is_empty() {
        println!("memory    {}", memory.join("; "));
    }
    if a.profile {
        print_kernels(&r.kernels, a.runs);
    }
    Ok(())
}

/// The kernels, slowest first, with their share of the sum of medians.
fn print_kernels(kernels: &[KernelMedian], runs: usize) {
    let total: f64 = kernels.iter().map(|k| k.median_ms).sum();
    println!("profile: each kernel call's median over {runs} profiled runs, slowest first");
    let mut rows: Vec<&KernelMedian> = kernels.iter().collect();
    rows.sort_by(|a, b| b.median_ms.total_cmp(&a.median_ms));
    for k in rows {
        let share = if total > 0.0 { 100.0 * k.median_ms / total } else { 0.0 };
        println!("{:>10.3} ms {:>5.1}%  {} ({})", k.median_ms, share, k.kernel, k.node);
    }
    println!("{total:>10.3} ms 100.0%  sum of {} kernel calls", kernels.len());
}
