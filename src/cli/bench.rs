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

use super::{BackendArg, EngineArgs, engine_err, reported, shown};
use smelt::engine::{self, OptLevel, Profile};
use smelt::runtime::init::random_inputs;
use std::path::PathBuf;
use std::time::Instant;

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

/// Median, minimum and mean of a list of times (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub mean: f64,
}

impl Stats {
    /// `None` for an empty list. The median of an even count is the mean of the two
    /// middle values.
    pub fn of(times: &[f64]) -> Option<Stats> {
        if times.is_empty() {
            return None;
        }
        let mut v = times.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) };
        Some(Stats { median, min: v[0], mean: v.iter().sum::<f64>() / n as f64 })
    }
}

fn level_name(l: OptLevel) -> &'static str {
    match l {
        OptLevel::O0 => "O0",
        OptLevel::O1 => "O1",
        OptLevel::O2 => "O2",
        OptLevel::O3 => "O3",
    }
}

pub fn main(a: &BenchArgs) -> anyhow::Result<()> {
    if a.runs == 0 {
        return reported("error: --runs must be at least 1");
    }
    if a.profile && a.backend == BackendArg::Interp {
        return reported("error: --profile times the kernels of a compiled backend (--backend cranelift, llvm or wgsl)");
    }
    if a.engine.schedule_help() {
        return Ok(());
    }
    let level = a.engine.level;
    let opts = a.engine.options(a.backend.kind(), a.threads, None)?;
    let (source, dims) = super::source_with_dims(&a.model, &a.dims);
    let mut model = engine::prepare(source, &opts).map_err(engine_err)?;
    super::tune::if_asked(&a.engine, &mut model, dims)?;
    let nodes_before = model.source_graph().len();
    let nodes_after = model.graph().len();
    let bindings = model.bindings(dims).map_err(engine_err)?;
    model.check_memory(&bindings).map_err(engine_err)?;
    let inputs = match random_inputs(model.source_graph(), a.seed, &bindings) {
        Ok(t) => t,
        Err(m) => return reported(format!("error: {m}")),
    };
    // Compile; the plan for these inputs' shapes is part of the compile time.
    let t0 = Instant::now();
    let runner = model.compile().map_err(engine_err)?;
    runner.prepare(&inputs).map_err(engine_err)?;
    let optimize_ms = runner.timings().optimize_ms;
    let compile_ms = match a.backend {
        BackendArg::Interp => None,
        _ => Some(ms(t0)),
    };
    let g = runner.graph();
    let model = shown(&a.model);

    for _ in 0..a.warmup {
        runner.run(&inputs).map_err(engine_err)?;
    }
    let mut times = Vec::with_capacity(a.runs);
    let mut cpu = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        let c0 = cpu_time::ProcessTime::now();
        let t0 = Instant::now();
        let out = runner.run(&inputs);
        times.push(ms(t0));
        cpu.push(c0.elapsed().as_secs_f64() * 1e3);
        out.map_err(engine_err)?;
    }
    let stats = Stats::of(&times).expect("at least one run");
    let cpu_stats = Stats::of(&cpu).expect("at least one run");
    let mut profiles = Vec::new();
    if a.profile {
        for _ in 0..a.runs {
            if let (_, Some(p)) = runner.run_profiled(&inputs).map_err(engine_err)? {
                profiles.push(p);
            }
        }
    }
    let kernels = kernel_medians(&profiles);
    let plan = runner.plan_stats(&inputs).map_err(engine_err)?;
    let peak_rss = peak_rss_bytes();

    let backend = a.backend.kind().name();
    if a.json {
        let doc = serde_json::json!({
            "model": model,
            "graph": g.name,
            "backend": backend,
            "threads": a.threads,
            "opt_level": level_name(level),
            "nodes_before": nodes_before,
            "nodes_after": nodes_after,
            "optimize_ms": optimize_ms,
            "compile_ms": compile_ms,
            "warmup": a.warmup,
            "runs": a.runs,
            "median_ms": stats.median,
            "min_ms": stats.min,
            "mean_ms": stats.mean,
            "times_ms": times,
            "cpu_median_ms": cpu_stats.median,
            "cpu_ms": cpu,
        });
        let mut doc = doc;
        doc["peak_rss_bytes"] = peak_rss.into();
        if let Some(p) = plan {
            doc["arena_bytes"] = p.peak_bytes.into();
            doc["constant_bytes"] = p.const_bytes.into();
        }
        if a.profile {
            doc["profile"] = kernels
                .iter()
                .map(|k| serde_json::json!({"kernel": k.kernel, "node": k.node, "median_ms": k.median_ms}))
                .collect();
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let threads = if a.threads == 1 { "1 thread".to_string() } else { format!("{} threads", a.threads) };
        println!("{model}: graph {}, {backend}, {threads}", g.name);
        println!("optimize  {optimize_ms:10.3} ms  (-{}: {nodes_before} nodes -> {nodes_after})", level_name(level));
        match compile_ms {
            Some(c) => println!("compile   {c:10.3} ms"),
            None => println!("compile          n/a  (the interpreter runs the graph as it is)"),
        }
        println!(
            "run       {:10.3} ms  median; min {:.3} ms, mean {:.3} ms ({} runs after {} warm-up)",
            stats.median, stats.min, stats.mean, a.runs, a.warmup
        );
        // The CPU time of the process (all threads) per run: on a busy machine
        // it moves less than the wall time when other processes take turns.
        println!("cpu       {:10.3} ms  median; min {:.3} ms (all threads)", cpu_stats.median, cpu_stats.min);
        let mb = |b: usize| b as f64 / (1 << 20) as f64;
        let mut memory = Vec::new();
        if let Some(r) = peak_rss {
            memory.push(format!("peak RSS {:.1} MiB (the process: compile and runs)", mb(r)));
        }
        if let Some(p) = plan {
            memory.push(format!("arena {:.1} MiB, constants {:.1} MiB", mb(p.peak_bytes), mb(p.const_bytes)));
        }
        if !memory.is_empty() {
            println!("memory    {}", memory.join("; "));
        }
        if a.profile {
            print_kernels(&kernels, a.runs);
        }
    }
    Ok(())
}

/// The process's peak resident memory so far (`VmHWM`; Linux only).
fn peak_rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: usize = s.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// One kernel's median time over the profiled runs.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelMedian {
    pub kernel: String,
    pub node: String,
    pub median_ms: f64,
}

/// Each kernel call's median over `profiles` (runs of one plan, so call `i` is the
/// same kernel in each), in call order.
pub fn kernel_medians(profiles: &[Profile]) -> Vec<KernelMedian> {
    let Some(first) = profiles.first() else { return Vec::new() };
    first
        .kernels
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let times: Vec<f64> = profiles.iter().filter_map(|p| p.kernels.get(i)).map(|t| t.seconds * 1e3).collect();
            let median = Stats::of(&times).map_or(0.0, |s| s.median);
            KernelMedian { kernel: k.kernel.clone(), node: k.node.clone(), median_ms: median }
        })
        .collect()
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

fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::{Stats, kernel_medians};
    use smelt::runtime::exec::{KernelTime, Profile};

    #[test]
    fn kernel_medians_per_call() {
        let p = |a: f64, b: f64| Profile {
            kernels: vec![
                KernelTime { kernel: "k0".into(), node: "n".into(), seconds: a },
                KernelTime { kernel: "k1".into(), node: "n".into(), seconds: b },
            ],
        };
        let m = kernel_medians(&[p(0.001, 0.004), p(0.003, 0.002), p(0.002, 0.009)]);
        assert_eq!(m.iter().map(|k| k.kernel.as_str()).collect::<Vec<_>>(), ["k0", "k1"]);
        assert!((m[0].median_ms - 2.0).abs() < 1e-9 && (m[1].median_ms - 4.0).abs() < 1e-9);
        assert!(kernel_medians(&[]).is_empty());
    }

    #[test]
    fn stats_odd_even_and_empty() {
        let s = Stats::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.mean), (3.0, 1.0, 3.0));
        let s = Stats::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.mean), (2.5, 1.0, 2.5));
        assert_eq!(Stats::of(&[]), None);
    }
}
