//! Timings of the WGSL backend: square GEMMs (GFLOP/s) and models (milliseconds
//! per inference, batch 1 and 8), each the median of `--reps` runs after one
//! warm-up. A run is a whole inference as the runtime does it: inputs written,
//! one command buffer, outputs read back.
//!
//! Models are optimized at -O2 first (what `smelt bench` times). With `--profile`,
//! each line also gives the GPU time of the steps (timestamp queries: the sum over
//! the steps of one profiled run, without the transfers and the host's work) and,
//! for models, the slowest steps.
//!
//! `cargo bench --bench wgsl -- [--gemm 256,512] [--examples] [--zoo NAME,…|all]
//! [--batches 1,8] [--reps 5] [--profile] [--opt 0|1|2|3] [--schedule S] [--adapter ADAPTER]`; with no
//! arguments: GEMM 256 and 512 and the examples (sizes lavapipe runs in seconds).
//! `scripts/gpu-check.sh` runs it on a real GPU with GEMM 1024/2048/4096 and the zoo.

use smelt::engine::{self, BackendKind, CompiledModel, OptLevel, Options, ScheduleOptions, Tensors};
use smelt::frontends::zoo;
use smelt::interp::init::{random_inputs, random_weights};
use smelt::ir::{Bindings, Graph, load_model, text::parse};
use std::time::Instant;

struct Args {
    gemm: Vec<usize>,
    examples: bool,
    zoo: Vec<String>,
    batches: Vec<u64>,
    reps: usize,
    profile: bool,
    /// Optimization level of the models (`--opt 0|1|2|3`, default 2).
    opt: OptLevel,
    /// `--schedule wgsl-tile=128,…` (as `smelt run`).
    schedule: ScheduleOptions,
    adapter: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args { gemm: vec![], examples: false, zoo: vec![], batches: vec![1, 8], reps: 5, profile: false, opt: OptLevel::O2, schedule: ScheduleOptions::default(), adapter: None };
    let mut it = std::env::args().skip(1).filter(|s| s != "--bench");
    let mut any = false;
    while let Some(x) = it.next() {
        let list = |v: Option<String>| v.unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>();
        match x.as_str() {
            "--gemm" => a.gemm = list(it.next()).iter().filter_map(|s| s.parse().ok()).collect(),
            "--examples" => a.examples = true,
            "--zoo" => a.zoo = list(it.next()),
            "--batches" => a.batches = list(it.next()).iter().filter_map(|s| s.parse().ok()).collect(),
            "--reps" => a.reps = it.next().and_then(|s| s.parse().ok()).unwrap_or(5),
            "--adapter" => a.adapter = it.next(),
            "--opt" => a.opt = it.next().and_then(|s| s.parse().ok()).unwrap_or(OptLevel::O2),
            "--schedule" => match ScheduleOptions::parse(&it.next().unwrap_or_default()) {
                Ok(o) => a.schedule = o,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            },
            "--profile" => {
                a.profile = true;
                continue;
            }
            _ => continue,
        }
        any = true;
    }
    if !any || (a.gemm.is_empty() && !a.examples && a.zoo.is_empty()) {
        a.gemm = vec![256, 512];
        a.examples = true;
    }
    a
}

/// Median seconds of `reps` runs after a warm-up; `None` with the error printed.
fn time(model: &CompiledModel, inputs: &Tensors, reps: usize) -> Result<f64, String> {
    model.run(inputs).map_err(|e| e.to_string())?;
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        model.run(inputs).map_err(|e| e.to_string())?;
        ts.push(t0.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    Ok(ts[ts.len() / 2])
}

fn bindings(g: &Graph, batch: u64) -> Bindings {
    g.inputs()
        .iter()
        .flat_map(|&i| g.node(i).types[0].shape.symbols())
        .map(|s| {
            let v = match s.as_ref() {
                "N" | "B" => batch,
                "T" => 32,
                _ => 8,
            };
            (s.to_string(), v)
        })
        .collect()
}

/// The GPU seconds of each step of one profiled run (slowest first, with their
/// kernel names), or the error.
fn gpu_steps(model: &CompiledModel, inputs: &Tensors) -> Result<Vec<(f64, String)>, String> {
    let p = model.profile(inputs).map_err(|e| e.to_string())?;
    let mut v: Vec<(f64, String)> = p.kernels.iter().map(|k| (k.seconds, k.kernel.clone())).collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(v)
}

/// The engine's options for the WGSL backend at `level`.
fn options(a: &Args, level: OptLevel) -> Options {
    Options { adapter: a.adapter.clone(), schedule: a.schedule.clone(), ..Options::backend(BackendKind::Wgsl).opt(level) }
}

fn model_row(name: &str, g: &Graph, a: &Args) {
    let (batches, reps, profile) = (&a.batches, a.reps, a.profile);
    let model = match engine::compile(g, &options(a, a.opt)) {
        Ok(m) => m,
        Err(e) => return println!("{name:<28} {e}"),
    };
    for &b in batches.iter() {
        let dims = bindings(g, b);
        let inputs = match random_inputs(g, 1, &dims) {
            Ok(i) => i,
            Err(e) => return println!("{name:<28} inputs: {e}"),
        };
        let t0 = Instant::now();
        if let Err(e) = model.prepare(&inputs) {
            return println!("{name:<28} batch {b:<3} {e}");
        }
        let plan = t0.elapsed().as_secs_f64();
        match time(&model, &inputs, reps) {
            Ok(s) => println!("{name:<28} batch {b:<3} {:>10.3} ms   (plan: lowering, shaders, pipelines {:.2} s)", s * 1e3, plan),
            Err(e) => println!("{name:<28} batch {b:<3} {e}"),
        }
        if profile {
            match gpu_steps(&model, &inputs) {
                Ok(steps) => {
                    let total: f64 = steps.iter().map(|s| s.0).sum();
                    let top: Vec<String> = steps.iter().take(4).map(|(t, k)| format!("{k} {:.3}", t * 1e3)).collect();
                    println!("{:<28}           GPU {:>10.3} ms in {} steps; slowest: {}", "", total * 1e3, steps.len(), top.join(", "));
                }
                Err(e) => println!("{:<28}           profile: {e}", ""),
            }
        }
    }
}

fn main() {
    let a = parse_args();
    let w = engine::Wgsl { adapter: a.adapter.clone(), ..engine::Wgsl::default() };
    let device = match w.device() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("wgsl on {}", device.describe());
    for &n in &a.gemm {
        let src = format!("graph gemm(a: f32[{n}, {n}], b: f32[{n}, {n}]) -> (y) {{\n  y = matmul(a, b)\n}}\n");
        let g = parse(&src).expect("gemm graph");
        let model = match engine::compile(&g, &options(&a, OptLevel::O0)) {
            Ok(m) => m,
            Err(e) => {
                println!("gemm {n}: {e}");
                continue;
            }
        };
        let inputs = random_inputs(&g, 1, &Bindings::new()).expect("inputs");
        let flop = 2.0 * (n as f64).powi(3);
        match time(&model, &inputs, a.reps) {
            Ok(s) => println!("gemm {n:>5}x{n}x{n}   {:>10.3} ms  {:>8.1} GFLOP/s", s * 1e3, flop / s / 1e9),
            Err(e) => println!("gemm {n}: {e}"),
        }
        if a.profile {
            // The kernel alone: the best of `reps` profiled runs.
            let best = (0..a.reps.max(1)).filter_map(|_| gpu_steps(&model, &inputs).ok()).map(|v| v.iter().map(|s| s.0).sum::<f64>()).fold(f64::INFINITY, f64::min);
            if best.is_finite() && best > 0.0 {
                println!("gemm {n:>5}x{n}x{n}   {:>10.3} ms  {:>8.1} GFLOP/s  (GPU time of the kernel)", best * 1e3, flop / best / 1e9);
            }
        }
    }
    if a.examples {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
        files.sort();
        for p in files {
            let name = format!("example {}", p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default());
            match load_model(&p) {
                Ok(g) => model_row(&name, &g, &a),
                Err(e) => println!("{name}: {e:?}"),
            }
        }
    }
    let zoo_names: Vec<String> =
        if a.zoo.iter().any(|z| z == "all") { zoo::models().into_iter().map(|m| m.name.to_string()).collect() } else { a.zoo.clone() };
    for z in &zoo_names {
        let built = match zoo::build(z, &[]) {
            Ok(b) => b,
            Err(e) => {
                println!("zoo {z}: {e}");
                continue;
            }
        };
        let mut g = built.graph;
        match random_weights(&g, 1) {
            Ok(ws) => ws.into_iter().for_each(|(k, w)| g.set_weight(k, w)),
            Err(e) => {
                println!("zoo {z}: weights: {e}");
                continue;
            }
        }
        model_row(&format!("zoo {z}"), &g, &a);
    }
}
