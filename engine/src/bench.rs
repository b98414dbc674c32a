//! Timing a model the way `smelt bench` and Python's `smelt.bench` do (and the
//! peer benchmarks, `scripts/bench/run.sh`): the prepared (optimized) model is
//! compiled and planned for seeded random inputs, run `warmup` times untimed,
//! then `runs` times; each run's wall time and the process's CPU time are kept.
//! With `profile`, `runs` more runs time each kernel call (warm). Memory: the
//! process's peak resident set and, on the CPU backends, the plan's arena and
//! constants.

use crate::error::{Error, ErrorKind, Result};
use crate::model::Model;
use crate::options::BackendKind;
use smelt_runtime::exec::{PlanStats, Profile};
use std::time::Instant;

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Timed runs (at least 1).
    pub runs: usize,
    /// Untimed runs first.
    pub warmup: usize,
    /// Seed of the random inputs.
    pub seed: u64,
    /// Sizes of the inputs' symbolic dims (the rest 1).
    pub dims: Vec<(String, u64)>,
    /// Time each kernel call over `runs` more runs (compiled backends).
    pub profile: bool,
}

impl BenchOptions {
    /// Fails on requests no model can satisfy (checked before a model is
    /// loaded, and again by [`bench`]).
    pub fn check(&self, backend: BackendKind) -> Result<()> {
        if self.runs == 0 {
            return Err(Error::text(ErrorKind::Options, "runs must be at least 1"));
        }
        if self.profile && backend == BackendKind::Interp {
            return Err(crate::model::no_kernels());
        }
        Ok(())
    }
}

impl Default for BenchOptions {
    fn default() -> BenchOptions {
        BenchOptions { runs: 10, warmup: 3, seed: 0, dims: Vec::new(), profile: false }
    }
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

/// The process's peak resident memory so far (`VmHWM`; Linux only).
pub fn peak_rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: usize = s.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// What a benchmark measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The graph's name.
    pub graph: String,
    pub backend: BackendKind,
    pub threads: usize,
    pub opt_level: String,
    /// Nodes as loaded and after optimization.
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub optimize_ms: f64,
    /// Compilation and the plan for these inputs (`None` on the interpreter).
    pub compile_ms: Option<f64>,
    pub warmup: usize,
    /// Each timed run's wall time, in order.
    pub times_ms: Vec<f64>,
    /// Each timed run's CPU time of the process (all threads).
    pub cpu_ms: Vec<f64>,
    pub wall: Stats,
    pub cpu: Stats,
    pub peak_rss_bytes: Option<usize>,
    /// Arena and constants of the plan (CPU backends).
    pub plan: Option<PlanStats>,
    /// Each kernel call's median (with `profile`), in call order.
    pub kernels: Vec<KernelMedian>,
}

impl BenchReport {
    /// The report as JSON (what `smelt bench --json` prints, less the model's
    /// path; Python's `smelt.bench` returns it as a dict).
    pub fn json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "graph": self.graph,
            "backend": self.backend.name(),
            "threads": self.threads,
            "opt_level": self.opt_level,
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "optimize_ms": self.optimize_ms,
            "compile_ms": self.compile_ms,
            "warmup": self.warmup,
            "runs": self.times_ms.len(),
            "median_ms": self.wall.median,
            "min_ms": self.wall.min,
            "mean_ms": self.wall.mean,
            "times_ms": self.times_ms,
            "cpu_median_ms": self.cpu.median,
            "cpu_ms": self.cpu_ms,
            "peak_rss_bytes": self.peak_rss_bytes,
        });
        if let Some(p) = self.plan {
            doc["arena_bytes"] = p.peak_bytes.into();
            doc["constant_bytes"] = p.const_bytes.into();
        }
        if !self.kernels.is_empty() {
            doc["profile"] = self
                .kernels
                .iter()
                .map(|k| serde_json::json!({"kernel": k.kernel, "node": k.node, "median_ms": k.median_ms}))
                .collect();
        }
        doc
    }
}

fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

/// Compiles the prepared `model` and times it on seeded random inputs.
pub fn bench(model: Model, o: &BenchOptions) -> Result<BenchReport> {
    let options = model.options().clone();
    o.check(options.backend)?;
    let nodes_before = model.source_graph().len();
    let nodes_after = model.graph().len();
    let bindings = model.bindings(&o.dims)?;
    model.check_memory(&bindings)?;
    let inputs = smelt_interp::init::random_inputs(model.source_graph(), o.seed, &bindings).map_err(|m| Error::text(ErrorKind::Inputs, m))?;
    // Compile; the plan for these inputs' shapes is part of the compile time.
    let t0 = Instant::now();
    let runner = model.compile()?;
    runner.prepare(&inputs)?;
    let compile_ms = (options.backend != BackendKind::Interp).then(|| ms(t0));
    for _ in 0..o.warmup {
        runner.run(&inputs)?;
    }
    let mut times_ms = Vec::with_capacity(o.runs);
    let mut cpu_ms = Vec::with_capacity(o.runs);
    for _ in 0..o.runs {
        let c0 = cpu_time::ProcessTime::now();
        let t0 = Instant::now();
        let out = runner.run(&inputs);
        times_ms.push(ms(t0));
        cpu_ms.push(c0.elapsed().as_secs_f64() * 1e3);
        out?;
    }
    let mut profiles = Vec::new();
    if o.profile {
        for _ in 0..o.runs {
            if let (_, Some(p)) = runner.run_profiled(&inputs)? {
                profiles.push(p);
            }
        }
    }
    let plan = runner.plan_stats(&inputs)?;
    Ok(BenchReport {
        graph: runner.graph().name.clone(),
        backend: options.backend,
        threads: options.threads,
        opt_level: format!("{:?}", options.opt_level),
        nodes_before,
        nodes_after,
        optimize_ms: runner.timings().optimize_ms,
        compile_ms,
        warmup: o.warmup,
        wall: Stats::of(&times_ms).expect("at least one run"),
        cpu: Stats::of(&cpu_ms).expect("at least one run"),
        times_ms,
        cpu_ms,
        peak_rss_bytes: peak_rss_bytes(),
        plan,
        kernels: kernel_medians(&profiles),
    })
}

#[cfg(test)]
mod tests {
    use super::{Stats, kernel_medians};
    use smelt_runtime::exec::{KernelTime, Profile};

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
