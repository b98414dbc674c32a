//! `smelt bench MODEL [--backend B] [--threads N] [--runs R] [--warmup W] [-O L] [--json]`:
//! times a model (smelt text or ONNX) the way the peer benchmarks do
//! (`scripts/bench/run.sh`): the model is optimized (`-O2` by default: what is timed
//! is the optimized graph), compiled, run `--warmup` times untimed, then `--runs`
//! times; the median and the minimum of those runs are reported, with the time of
//! the optimizer and of the backend's compilation apart, and the process's CPU time
//! per run beside the wall time. Inputs are seeded random
//! (`--random SEED`, `--dim SYM=SIZE`). `--profile` then times each kernel call over
//! `--runs` more runs, warm (unlike `smelt run --profile`, whose single run also pays
//! for first touches of memory), and prints each kernel's median, slowest first.
//!
//! A backend that cannot compile the model fails with its
//! `not supported on <backend>: <op> at node <name>` message and exit status 1.

use super::run::{BackendArg, dims, render_codegen_error};
use super::{load_model, node_diag, reported, reported_all, shown};
use smelt::codegen;
use smelt::ir::{Graph, Tensor};
use smelt::passes::{OptLevel, PassManager};
use smelt::runtime::{self, exec, init::random_inputs};
use std::collections::BTreeMap;
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
    pub level: String,
    pub seed: u64,
    pub dims: Vec<(String, u64)>,
    pub json: bool,
    pub profile: bool,
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

fn backend_name(b: BackendArg) -> &'static str {
    match b {
        BackendArg::Interp => "interp",
        BackendArg::Cranelift => "cranelift",
        BackendArg::Llvm => "llvm",
        BackendArg::Wgsl => "wgsl",
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

/// How the timed runs call the model.
enum Runner {
    Interp(Graph),
    Compiled(exec::CompiledModel),
    Gpu(runtime::gpu::GpuModel),
}

/// What a run can fail with.
enum RunError {
    Exec(exec::Error),
    Gpu(runtime::gpu::Error),
}

impl From<exec::Error> for RunError {
    fn from(e: exec::Error) -> RunError {
        RunError::Exec(e)
    }
}

impl Runner {
    /// One run with each kernel call (GPU step) timed; `None` on the interpreter.
    fn profiled(&self, inputs: &BTreeMap<String, Tensor>) -> Result<Option<exec::Profile>, RunError> {
        match self {
            Runner::Interp(_) => Ok(None),
            Runner::Compiled(m) => Ok(Some(m.run_profiled(inputs)?.1)),
            Runner::Gpu(m) => m.run_profiled(inputs).map(|(_, p)| Some(p)).map_err(RunError::Gpu),
        }
    }

    fn run(&self, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>, RunError> {
        match self {
            Runner::Interp(g) => Ok(runtime::run(g, inputs).map_err(exec::Error::from)?),
            Runner::Compiled(m) => Ok(m.run(inputs)?),
            Runner::Gpu(m) => m.run(inputs).map_err(RunError::Gpu),
        }
    }
}

/// A run's error as one rendered block per problem.
fn render_run(g: &Graph, model: &str, e: RunError) -> Vec<String> {
    match e {
        RunError::Exec(e) => render_exec(g, model, e),
        RunError::Gpu(runtime::gpu::Error::Codegen(c)) => render_exec(g, model, exec::Error::Codegen(c)),
        RunError::Gpu(runtime::gpu::Error::Runtime(r)) => render_exec(g, model, exec::Error::Runtime(r)),
        RunError::Gpu(e) => vec![format!("error: {e}")],
    }
}

/// An executor error as one rendered block per problem.
fn render_exec(g: &Graph, model: &str, e: exec::Error) -> Vec<String> {
    match e {
        exec::Error::Codegen(c) => vec![render_codegen_error(g, model, c)],
        exec::Error::Runtime(runtime::Error::Node { node, op, message }) => {
            let text = if message.starts_with(op.as_str()) { message } else { format!("{op}: {message}") };
            vec![node_diag(g, &node, text).render(Some(model))]
        }
        exec::Error::Runtime(runtime::Error::Ir(ie)) => vec![ie.render(Some(model))],
        e => vec![format!("error: {e}")],
    }
}

pub fn main(a: &BenchArgs) -> anyhow::Result<()> {
    if a.runs == 0 {
        return reported("error: --runs must be at least 1");
    }
    if a.profile && a.backend == BackendArg::Interp {
        return reported("error: --profile times the kernels of a compiled backend (--backend cranelift, llvm or wgsl)");
    }
    let level: OptLevel = match a.level.parse() {
        Ok(l) => l,
        Err(e) => return reported(format!("error: {e}")),
    };
    let model = shown(&a.model);
    let mut g = load_model(&a.model)?;
    let nodes_before = g.len();

    let t0 = Instant::now();
    if let Err(e) = PassManager::pipeline(level).run(&mut g) {
        return reported(format!("error: {e}").replace('\n', "\n  "));
    }
    let optimize_ms = ms(t0);
    let nodes_after = g.len();

    let bindings = dims(&g, &a.dims)?;
    let inputs = match random_inputs(&g, a.seed, &bindings) {
        Ok(t) => t,
        Err(m) => return reported(format!("error: {m}")),
    };

    // Compile; the plan for these inputs' shapes is part of the compile time.
    let t0 = Instant::now();
    let runner = match a.backend {
        BackendArg::Interp => Runner::Interp(g.clone()),
        BackendArg::Wgsl => {
            if let Err(e) = codegen::compile(&g, codegen::Backend::Wgsl) {
                return reported(render_codegen_error(&g, &model, e));
            }
            // The adapter: SMELT_ADAPTER, else the high-performance one.
            let device = match runtime::gpu::device(None) {
                Ok(d) => d,
                Err(e) => return reported(format!("error: {e}")),
            };
            let m = match runtime::gpu::compile(&g, device) {
                Ok(m) => m,
                Err(e) => return reported_all(render_run(&g, &model, RunError::Gpu(e))),
            };
            // The plan for these shapes (pipelines, uploads) is compile time too.
            if let Err(e) = m.run(&inputs) {
                return reported_all(render_run(&g, &model, RunError::Gpu(e)));
            }
            Runner::Gpu(m)
        }
        BackendArg::Cranelift | BackendArg::Llvm => {
            let backend =
                if a.backend == BackendArg::Llvm { codegen::Backend::Llvm } else { codegen::Backend::Cranelift };
            let opts = exec::Options { threads: a.threads.max(1), backend, ..exec::Options::default() };
            let m = match exec::compile(&g, &opts) {
                Ok(m) => m,
                Err(e) => return reported_all(render_exec(&g, &model, e)),
            };
            let planned = runtime::interp::bind_inputs(&g, &inputs).map_err(exec::Error::from).and_then(|b| m.plan(&b));
            if let Err(e) = planned {
                return reported_all(render_exec(&g, &model, e));
            }
            Runner::Compiled(m)
        }
    };
    let compile_ms = match a.backend {
        BackendArg::Interp => None,
        _ => Some(ms(t0)),
    };

    for _ in 0..a.warmup {
        if let Err(e) = runner.run(&inputs) {
            return reported_all(render_run(&g, &model, e));
        }
    }
    let mut times = Vec::with_capacity(a.runs);
    let mut cpu = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        let c0 = cpu_time::ProcessTime::now();
        let t0 = Instant::now();
        let out = runner.run(&inputs);
        times.push(ms(t0));
        cpu.push(c0.elapsed().as_secs_f64() * 1e3);
        if let Err(e) = out {
            return reported_all(render_run(&g, &model, e));
        }
    }
    let stats = Stats::of(&times).expect("at least one run");
    let cpu_stats = Stats::of(&cpu).expect("at least one run");
    let mut profiles = Vec::new();
    if a.profile {
        for _ in 0..a.runs {
            match runner.profiled(&inputs) {
                Ok(Some(p)) => profiles.push(p),
                Ok(None) => {}
                Err(e) => return reported_all(render_run(&g, &model, e)),
            }
        }
    }
    let kernels = kernel_medians(&profiles);

    let backend = backend_name(a.backend);
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
        if a.profile {
            print_kernels(&kernels, a.runs);
        }
    }
    Ok(())
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
pub fn kernel_medians(profiles: &[exec::Profile]) -> Vec<KernelMedian> {
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
