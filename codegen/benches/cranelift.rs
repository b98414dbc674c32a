//! Benchmarks of the Cranelift backend (run with `cargo bench -p smelt-codegen`):
//! f32 GEMM throughput at 256/512/1024 on 1 and 2 threads, and the latency of
//! each example model next to the reference interpreter, and full-size zoo
//! models (ResNet-18 at 224×224, batch 1) with the speedup over the interpreter.
//! Timings are medians of repeated runs after a warm-up; weight loading and
//! compilation are not timed. `cargo bench -p smelt-codegen -- models` runs one
//! section.
//!
//! `SMELT_BENCH_QUICK=1` runs fewer repetitions.

use smelt_ir::{Bindings, Graph, Tensor, load_model, text::parse};
use smelt_runtime::exec::{Options, compile};
use smelt_runtime::init::random_inputs;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time of `f` over `reps` runs (after one warm-up), stopping early after
/// about `budget`.
fn time(reps: usize, budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    let mut v = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
        if start.elapsed() > budget && v.len() >= 3 {
            break;
        }
    }
    median(v)
}

fn gemm(quick: bool) {
    println!("f32 GEMM (C = A·B, both operands packed at run time; median)");
    println!("{:>6} {:>8} {:>12} {:>10}", "n", "threads", "time", "GFLOP/s");
    for n in [256usize, 512, 1024] {
        let src = format!("graph gemm(a: f32[{n}, {n}], b: f32[{n}, {n}]) -> (c) {{\n  c = matmul(a, b)\n}}\n");
        let g = parse(&src).expect("parses");
        let inputs = random_inputs(&g, 1, &Bindings::new()).expect("inputs");
        for threads in [1usize, 2] {
            let model = compile(&g, &Options { threads, ..Options::default() }).expect("compiles");
            let reps = if quick { 3 } else { 20 };
            let t = time(reps, Duration::from_secs(3), || {
                model.run(&inputs).expect("runs");
            });
            let gflops = 2.0 * (n as f64).powi(3) / t.as_secs_f64() / 1e9;
            println!("{n:>6} {threads:>8} {:>10.3}ms {gflops:>10.1}", t.as_secs_f64() * 1e3);
        }
    }
}

fn examples(quick: bool) {
    println!("\nexample models (median latency; inputs random, seed 1)");
    println!("{:<12} {:<18} {:>14} {:>14} {:>14}", "model", "dims", "interpreter", "cranelift×1", "cranelift×2");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("examples/").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
    files.sort();
    for path in files {
        let g: Graph = load_model(&path).expect("loads");
        let dims: Bindings = [("N", 8u64), ("B", 2), ("T", 16)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let inputs: BTreeMap<String, Tensor> = random_inputs(&g, 1, &dims).expect("inputs");
        let used: Vec<String> = dims.iter().filter(|(k, _)| g.inputs().iter().any(|&i| g.node(i).types[0].shape.symbols().iter().any(|s| &**s == k.as_str()))).map(|(k, v)| format!("{k}={v}")).collect();
        let reps = if quick { 3 } else { 50 };
        let ti = time(reps.min(10), Duration::from_secs(3), || {
            smelt_runtime::run(&g, &inputs).expect("runs");
        });
        let mut cells = vec![];
        for threads in [1usize, 2] {
            let cell = match compile(&g, &Options { threads, ..Options::default() }) {
                Ok(model) => {
                    let t = time(reps, Duration::from_secs(3), || {
                        model.run(&inputs).expect("runs");
                    });
                    format!("{:.3}ms", t.as_secs_f64() * 1e3)
                }
                Err(e) => format!("({e})").chars().take(14).collect(),
            };
            cells.push(cell);
        }
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        println!("{name:<12} {:<18} {:>12.3}ms {:>14} {:>14}", used.join(","), ti.as_secs_f64() * 1e3, cells[0], cells[1]);
    }
}

/// Zoo models at full size: the interpreter timed once (it takes seconds), the
/// compiled model as a median after a warm-up; weights random (seed 1) and
/// loaded, and the model compiled, outside the timing.
fn models(quick: bool) {
    println!("\nzoo models at full size (inference; interpreter: one run, cranelift: median)");
    println!("{:<10} {:<14} {:>14} {:>14} {:>14} {:>10} {:>10}", "model", "config", "interpreter", "cranelift×1", "cranelift×2", "speedup×1", "speedup×2");
    for (name, settings, label, dims) in [("resnet18", vec![], "image=224", [("N", 1u64)])] {
        let mut g = smelt_frontends::zoo::build(name, &settings).expect("builds").graph;
        for (k, w) in smelt_runtime::init::random_weights(&g, 1).expect("weights") {
            g.set_weight(k, w);
        }
        let dims: Bindings = dims.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let inputs = random_inputs(&g, 1, &dims).expect("inputs");
        let t = Instant::now();
        smelt_runtime::run(&g, &inputs).expect("runs");
        let ti = t.elapsed();
        let mut times = vec![];
        for threads in [1usize, 2] {
            let model = compile(&g, &Options { threads, ..Options::default() }).expect("compiles");
            let reps = if quick { 3 } else { 20 };
            times.push(time(reps, Duration::from_secs(10), || {
                model.run(&inputs).expect("runs");
            }));
        }
        let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1e3);
        let x = |d: Duration| format!("{:.1}×", ti.as_secs_f64() / d.as_secs_f64());
        let cfg = format!("{label} N={}", dims["N"]);
        println!("{name:<10} {cfg:<14} {:>14} {:>14} {:>14} {:>10} {:>10}", ms(ti), ms(times[0]), ms(times[1]), x(times[0]), x(times[1]));
    }
}

fn main() {
    let quick = std::env::var("SMELT_BENCH_QUICK").is_ok_and(|v| v != "0");
    let filter = std::env::args().nth(1).unwrap_or_default();
    if filter.is_empty() || "gemm".contains(filter.as_str()) || filter == "--bench" {
        gemm(quick);
    }
    if filter.is_empty() || "examples".contains(filter.as_str()) || filter == "--bench" {
        examples(quick);
    }
    if filter.is_empty() || "models".contains(filter.as_str()) || filter == "--bench" {
        models(quick);
    }
}
