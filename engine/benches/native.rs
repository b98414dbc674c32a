//! Benchmarks of the native backends side by side, through the engine API (run
//! with `cargo bench -p smelt-engine --bench native [gemm|examples|zoo|quant|models]`): f32 GEMM
//! throughput at 256/512/1024 on 1 and 2 threads for Cranelift and LLVM, the quantized
//! GEMM against the plain i32 loops (qmatmul and a qconv2d, 1 thread), the latency
//! of each example model and of zoo models at small settings on the interpreter,
//! Cranelift and LLVM, and the JIT compile time of each (lowering, code generation
//! and memory plan), and ResNet-18 at 224×224 with the speedup over the interpreter
//! (`models`). Models are optimized at the engine's default, -O2 (what users
//! run); the interpreter runs the graph as given. Timings are medians of
//! repeated runs after a warm-up; compilation is not part of the run times.
//!
//! `SMELT_BENCH_QUICK=1` runs fewer repetitions.

use smelt_engine::{BackendKind as Backend, CompiledModel, Options, ScheduleOptions, compile};
use smelt_interp::init::random_inputs;
use smelt_ir::{Bindings, Graph, Tensor, load_model, text::parse};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const BACKENDS: [Backend; 2] = [Backend::Cranelift, Backend::Llvm];

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

/// Compiles `g` and builds its plan for `dims`; returns the model and the time.
fn compile_timed(g: &Graph, backend: Backend, threads: usize, dims: &Bindings) -> Result<(CompiledModel, Duration), String> {
    let t = Instant::now();
    let model = compile(g, &Options::backend(backend).threads(threads)).map_err(|e| e.to_string())?;
    let inputs = random_inputs(g, 1, dims).map_err(|e| e.to_string())?;
    model.prepare(&inputs).map_err(|e| e.to_string())?;
    Ok((model, t.elapsed()))
}

fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

fn gemm(quick: bool) {
    println!("f32 GEMM (C = A·B, both operands packed at run time; median)");
    println!("{:>6} {:<10} {:>8} {:>12} {:>10} {:>12}", "n", "backend", "threads", "time", "GFLOP/s", "compile");
    for n in [256usize, 512, 1024] {
        let src = format!("graph gemm(a: f32[{n}, {n}], b: f32[{n}, {n}]) -> (c) {{\n  c = matmul(a, b)\n}}\n");
        let g = parse(&src).expect("parses");
        let inputs = random_inputs(&g, 1, &Bindings::new()).expect("inputs");
        for backend in BACKENDS {
            for threads in [1usize, 2] {
                let (model, ct) = compile_timed(&g, backend, threads, &Bindings::new()).expect("compiles");
                let reps = if quick { 3 } else { 20 };
                let t = time(reps, Duration::from_secs(3), || {
                    model.run(&inputs).expect("runs");
                });
                let gflops = 2.0 * (n as f64).powi(3) / t.as_secs_f64() / 1e9;
                println!("{n:>6} {:<10} {threads:>8} {:>12} {gflops:>10.1} {:>12}", backend.name(), ms(t), ms(ct));
            }
        }
    }
}

/// Quantized products on one thread: qmatmul 256×1024×1024 (u8 × constant i8,
/// i32 out) and a 3×3 qconv2d (64 → 64 channels, 56×56, requantized to u8), each
/// through the packed GEMM of i16 pairs (`pairs`) and through the plain i32 loops
/// (`plain`, the schedule's `quant_pairs` off). GOPS counts a multiply-add as 2.
fn quant(quick: bool) {
    println!("\nquantized ops, 1 thread (GOPS = 2·M·N·K / time; median)");
    println!("{:<28} {:<10} {:<6} {:>12} {:>10} {:>12}", "op", "backend", "path", "time", "GOPS", "compile");
    let cases: [(&str, &str, f64); 2] = [
        (
            "qmatmul 256x1024x1024",
            "graph q(a: u8[256, 1024] quant(scale = 0.02, zero_point = 128)) -> (y) {\n  w = param i8[1024, 1024] quant(scale = 0.01, zero_point = 3)\n  y = qmatmul(a, w)\n}\n",
            2.0 * 256.0 * 1024.0 * 1024.0,
        ),
        (
            "qconv2d 64x56x56 k3 -> 64",
            "graph q(x: u8[1, 64, 56, 56] quant(scale = 0.02, zero_point = 128)) -> (y) {\n  w = param i8[64, 64, 3, 3] quant(scale = 0.01, zero_point = 0)\n  bias = param i32[64]\n  y = qconv2d(x, w, bias) {pad = [1, 1, 1, 1], dtype = u8, scale = 0.5, zero_point = 10}\n}\n",
            2.0 * 64.0 * 56.0 * 56.0 * 64.0 * 9.0,
        ),
    ];
    for (name, src, ops) in cases {
        // Alternating the paths, each backend in turn, so that load from other
        // processes falls on both alike.
        for backend in BACKENDS {
            for pairs in [false, true, false, true] {
                let mut g = parse(src).expect("parses");
                for (k, w) in smelt_interp::init::random_weights(&g, 1).expect("weights") {
                    g.set_weight(k, w);
                }
                let inputs = random_inputs(&g, 1, &Bindings::new()).expect("inputs");
                let opts = Options::backend(backend).schedule(ScheduleOptions { quant_pairs: Some(pairs), ..ScheduleOptions::default() });
                let t0 = Instant::now();
                let model = compile(&g, &opts).expect("compiles");
                model.prepare(&inputs).expect("plans");
                let ct = t0.elapsed();
                let path = if pairs { "pairs" } else { "plain" };
                let reps = if quick { 3 } else { 10 };
                let t = time(reps, Duration::from_secs(3), || {
                    model.run(&inputs).expect("runs");
                });
                println!("{name:<28} {:<10} {path:<6} {:>12} {:>10.1} {:>12}", backend.name(), ms(t), ops / t.as_secs_f64() / 1e9, ms(ct));
            }
        }
    }
}

fn header(what: &str) {
    println!("\n{what} (median latency; inputs random, seed 1; compile = lowering + JIT + memory plan)");
    println!(
        "{:<20} {:<12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "model", "dims", "interpreter", "cranelift×1", "cranelift×2", "llvm×1", "llvm×2", "compile (cl)", "compile (llvm)"
    );
}

fn examples(quick: bool) {
    header("example models");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("examples/").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
    files.sort();
    for path in files {
        let g: Graph = load_model(&path).expect("loads");
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        row(&name, &g, &dims(8), quick);
    }
}

/// Zoo models at settings small enough for the interpreter, random weights.
fn zoo(quick: bool) {
    header("zoo models");
    let models: [(&str, &[(&str, &str)]); 6] = [
        ("resnet18", &[("width", "16"), ("image", "64")]),
        ("transformer_encoder", &[("layers", "2"), ("d_model", "128"), ("heads", "4"), ("ffn", "512")]),
        ("lstm", &[("input", "64"), ("hidden", "128"), ("layers", "2")]),
        ("alphazero", &[("board", "9"), ("blocks", "4"), ("channels", "64")]),
        ("wavenet", &[("layers", "6")]),
        ("dqn", &[]),
    ];
    for (name, settings) in models {
        let settings: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut g = smelt_frontends::zoo::build(name, &settings).expect("builds").graph;
        for (k, w) in smelt_interp::init::random_weights(&g, 1).expect("weights") {
            g.set_weight(k, w);
        }
        let label = format!("{name}{}", if settings.is_empty() { "" } else { "*" });
        row(&label, &g, &dims(1), quick);
    }
    println!("(* at smaller settings than the defaults; see zoo() in this file)");
}

/// Symbolic dims: batch `n`, 16 time steps.
fn dims(n: u64) -> Bindings {
    [("N", n), ("B", n.min(2)), ("T", 16)].into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// One table row: the interpreter, both backends on 1 and 2 threads, compile times.
fn row(name: &str, g: &Graph, dims: &Bindings, quick: bool) {
    {
        let inputs: BTreeMap<String, Tensor> = random_inputs(g, 1, dims).expect("inputs");
        let used: Vec<String> = dims
            .iter()
            .filter(|(k, _)| g.inputs().iter().any(|&i| g.node(i).types[0].shape.symbols().iter().any(|s| &**s == k.as_str())))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let reps = if quick { 3 } else { 50 };
        let ti = time(reps.min(10), Duration::from_secs(3), || {
            smelt_interp::run(g, &inputs).expect("runs");
        });
        let mut cells = vec![];
        let mut compiles = vec![];
        for backend in BACKENDS {
            for threads in [1usize, 2] {
                let cell = match compile_timed(g, backend, threads, dims) {
                    Ok((model, ct)) => {
                        if threads == 1 {
                            compiles.push(ms(ct));
                        }
                        let t = time(reps, Duration::from_secs(3), || {
                            model.run(&inputs).expect("runs");
                        });
                        ms(t)
                    }
                    Err(e) => format!("({e})").chars().take(12).collect(),
                };
                cells.push(cell);
            }
        }
        compiles.resize(2, "-".into());
        println!(
            "{name:<20} {:<12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
            used.join(","),
            ms(ti),
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            compiles[0],
            compiles[1]
        );
    }
}

/// Full-size zoo models (ResNet-18 at 224×224, batch 1): the interpreter (one run)
/// next to each backend on 1 and 2 threads, with the speedup.
fn models(quick: bool) {
    println!("\nzoo models at full size (inference; interpreter: one run, backends: median)");
    println!("{:<10} {:<14} {:>12} {:<10} {:>12} {:>12} {:>10} {:>10}", "model", "config", "interpreter", "backend", "×1", "×2", "speedup×1", "speedup×2");
    for (name, label, n) in [("resnet18", "image=224", 1u64)] {
        let mut g = smelt_frontends::zoo::build(name, &[]).expect("builds").graph;
        for (k, w) in smelt_interp::init::random_weights(&g, 1).expect("weights") {
            g.set_weight(k, w);
        }
        let dims: Bindings = [("N".to_string(), n)].into_iter().collect();
        let inputs = random_inputs(&g, 1, &dims).expect("inputs");
        let t = Instant::now();
        smelt_interp::run(&g, &inputs).expect("runs");
        let ti = t.elapsed();
        for backend in BACKENDS {
            let mut times = vec![];
            for threads in [1usize, 2] {
                let (model, _) = compile_timed(&g, backend, threads, &dims).expect("compiles");
                let reps = if quick { 3 } else { 20 };
                times.push(time(reps, Duration::from_secs(10), || {
                    model.run(&inputs).expect("runs");
                }));
            }
            let x = |d: Duration| format!("{:.1}×", ti.as_secs_f64() / d.as_secs_f64());
            let cfg = format!("{label} N={n}");
            println!(
                "{name:<10} {cfg:<14} {:>12} {:<10} {:>12} {:>12} {:>10} {:>10}",
                ms(ti),
                backend.name(),
                ms(times[0]),
                ms(times[1]),
                x(times[0]),
                x(times[1])
            );
        }
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
    if filter.is_empty() || "zoo".contains(filter.as_str()) || filter == "--bench" {
        zoo(quick);
    }
    if filter.is_empty() || "quant".contains(filter.as_str()) || filter == "--bench" {
        quant(quick);
    }
    if filter.is_empty() || "models".contains(filter.as_str()) || filter == "--bench" {
        models(quick);
    }
}
