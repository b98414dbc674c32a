//! Per-machine tuning (`smelt tune`): the schedule of each class of GEMM-shaped
//! node (convs, matmuls, attention and recurrences of given shapes,
//! [`class_key`]) measured on this host and the fastest kept.
//!
//! One node of each class goes into a benchmark graph of its own (its non-constant
//! operands become inputs, its weights stay constants), so that a candidate costs
//! one compilation of the distinct classes, not of the whole model. Candidates
//! are searched one knob at a time — the conv method (Winograd, output rows,
//! im2col GEMM), with threads whether the class runs on one, then the GEMM's KC,
//! MC and NC — each class keeping its best so far; a candidate replaces the kept one only when it is faster by more than
//! [`TuneOptions::margin`] (timer noise is not a choice). Every class is timed
//! through the kernel profiler: the median over the runs of the sum of its
//! node's kernels.
//!
//! The result is checked before it is returned: the whole model compiled with it
//! must match the reference interpreter on random inputs, and it is timed
//! against the untuned model, in alternation; choices that leave the model slower
//! (by more than the margin) are dropped, the calibration kept.

pub mod calibrate;
pub mod db;

use crate::backend::{self, Executable, Tensors};
use crate::error::{Error, ErrorKind, Result};
use crate::model::Model;
use crate::options::{BackendKind, Options};
use smelt_codegen::probe::{self, Host};
use smelt_codegen::schedule::{Calibration, Choice, ConvMethod, Target, Tuning, class_key};
use smelt_ir::{Bindings, Graph, NodeId, Op, Value};
use std::sync::Arc;
use std::time::Instant;

pub use db::{Entry, EntryChoice, Loaded, TuningDb};

/// How `tune` measures.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Sizes of the model's symbolic dims (unset ones are 1).
    pub dims: Vec<(String, u64)>,
    /// Profiled runs per candidate (after one warm-up run).
    pub runs: usize,
    /// A candidate must be this much faster (a fraction) to replace the kept one.
    pub margin: f64,
    /// Largest error of the tuned model against the interpreter, relative to the
    /// largest reference output.
    pub tolerance: f64,
}

impl Default for TuneOptions {
    fn default() -> TuneOptions {
        TuneOptions { dims: vec![], runs: 7, margin: 0.03, tolerance: 1e-3 }
    }
}

/// What was chosen for one class.
#[derive(Debug, Clone)]
pub struct ClassReport {
    pub key: String,
    /// The model's nodes of this class.
    pub nodes: Vec<String>,
    pub choice: Choice,
    /// The class's time with the target's defaults and with the choice, ms.
    pub default_ms: f64,
    pub tuned_ms: f64,
}

/// The result of [`tune`].
#[derive(Debug, Clone)]
pub struct TuneReport {
    pub host: Host,
    pub backend: BackendKind,
    pub threads: usize,
    pub classes: Vec<ClassReport>,
    /// Candidates compiled and timed.
    pub candidates: usize,
    /// The model's run time (median) untuned and tuned, ms.
    pub model_default_ms: f64,
    pub model_tuned_ms: f64,
    /// The tuned model's largest error against the interpreter, relative to the
    /// largest reference output.
    pub max_error: f64,
    pub peak_gflops: f64,
    pub bandwidth_gbs: f64,
    /// The backend's own rates on this machine (one thread).
    pub calibration: Calibration,
    pub seconds: f64,
    /// The choices that differ from the defaults (none when `!kept_choices`).
    pub tuning: Tuning,
    /// Whether the classes' choices were kept: not when the whole model ran
    /// slower with them than without.
    pub kept_choices: bool,
}

impl TuneReport {
    /// The database entry of this result.
    pub fn entry(&self) -> Entry {
        Entry {
            cpu: self.host.cpu.clone(),
            features: self.host.features.clone(),
            backend: self.backend.name().to_string(),
            threads: self.threads,
            peak_gflops: self.peak_gflops,
            bandwidth_gbs: self.bandwidth_gbs,
            gemm_gflops: self.calibration.gemm_mflops as f64 * 1e-3,
            stream_gbs: self.calibration.stream_mbs as f64 * 1e-3,
            launch_us: self.calibration.launch_ns as f64 * 1e-3,
            classes: self.tuning.choices.iter().map(|(k, c)| (k.clone(), EntryChoice::from_choice(c))).collect(),
        }
    }
}

/// One class: its key, a representative node and every node of the model in it.
struct Class {
    key: String,
    node: NodeId,
    nodes: Vec<String>,
    conv: bool,
}

/// The distinct classes of `g` in topological order.
fn classes(g: &Graph) -> Result<Vec<Class>> {
    let order = g.topo_order().ok_or_else(|| Error::text(ErrorKind::Model, "error: the graph has a cycle"))?;
    let mut out: Vec<Class> = Vec::new();
    for id in order {
        let Some(key) = class_key(g, id) else { continue };
        let name = g.node(id).name().to_string();
        match out.iter_mut().find(|c| c.key == key) {
            Some(c) => c.nodes.push(name),
            None => {
                let conv = matches!(g.node(id).op, Op::Conv(_) | Op::FusedConv { .. });
                out.push(Class { key, node: id, nodes: vec![name], conv });
            }
        }
    }
    Ok(out)
}

/// A graph of one node per class (`k{i}`), each reading inputs of its own and
/// its own copies of its weights.
fn bench_graph(g: &Graph, classes: &[Class]) -> Graph {
    let mut b = Graph::new(format!("{}_tune", g.name));
    let mut outs = Vec::new();
    for (i, c) in classes.iter().enumerate() {
        let n = g.node(c.node);
        let ins: Vec<Value> = g
            .node_inputs(c.node)
            .into_iter()
            .enumerate()
            .map(|(j, v)| {
                let src = g.node(v.node);
                let name = format!("k{i}_in{j}");
                let ty = g.value_type(v).cloned().unwrap_or_else(|| src.types[v.output].clone());
                match &src.op {
                    Op::Const(t) => b.add_const(name, (**t).clone()),
                    Op::Param => {
                        if let Some(w) = g.weight(src.name()) {
                            b.set_weight(name.clone(), w.clone());
                        }
                        b.add_param(name, ty)
                    }
                    _ => b.add_input(name, ty),
                }
            })
            .collect();
        let names: Vec<String> = (0..n.names.len()).map(|o| if o == 0 { format!("k{i}") } else { format!("k{i}_{o}") }).collect();
        let id = b.add_node(n.op.clone(), &ins, names);
        b.node_mut(id).types = n.types.clone();
        outs.extend((0..n.types.len()).map(|o| Value { node: id, output: o }));
    }
    b.set_outputs(outs);
    b
}

/// Median of `xs` (0 for none).
fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One class timed with one candidate.
#[derive(Debug, Clone, Copy)]
struct Timed {
    seconds: f64,
    /// The conv method its kernels show it ran with (a method that does not
    /// apply to a conv falls to another: the choice records what ran).
    method: ConvMethod,
}

/// The conv method a node's kernel names show (`…_winograd_gemm`, `…_rows`).
fn method_of(kernels: &[String]) -> ConvMethod {
    if kernels.iter().any(|k| k.contains("_winograd4")) {
        ConvMethod::Winograd4
    } else if kernels.iter().any(|k| k.contains("_winograd")) {
        ConvMethod::Winograd
    } else if kernels.iter().any(|k| k.ends_with("_rows")) {
        ConvMethod::Rows
    } else {
        ConvMethod::Gemm
    }
}

/// Times the benchmark graph with `tuning`: per class, the median over `runs`
/// of its node's kernel time, in seconds.
fn time_classes(opts: &Options, g: &Graph, inputs: &Tensors, tuning: Tuning, n: usize, runs: usize) -> Result<Vec<Timed>> {
    let exe = compile_tuned(opts, g, &tuning)?;
    exe.run(inputs)?;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut names: Vec<Vec<String>> = vec![Vec::new(); n];
    for run in 0..runs.max(1) {
        let (_, p) = exe.run_profiled(inputs)?;
        let mut sums = vec![0.0; n];
        for k in p.map(|p| p.kernels).unwrap_or_default() {
            let class = k.node.strip_prefix('k').and_then(|s| s.split('_').next()).and_then(|s| s.parse::<usize>().ok());
            if let Some(i) = class.filter(|&i| i < n) {
                sums[i] += k.seconds;
                if run == 0 {
                    names[i].push(k.kernel);
                }
            }
        }
        for (v, s) in per.iter_mut().zip(sums) {
            v.push(s);
        }
    }
    Ok(per.into_iter().zip(&names).map(|(t, k)| Timed { seconds: median(t), method: method_of(k) }).collect())
}

/// `a` and `b` (one model, two schedules) timed in alternating blocks of `runs`
/// (so that both see the same load; a pause between blocks lets the other's pool
/// threads go to sleep, or on two cores they take turns with the runs): each
/// one's median, in seconds.
fn time_pair(a: &dyn Executable, b: &dyn Executable, inputs: &Tensors, runs: usize) -> Result<(f64, f64)> {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        for (e, ts) in [(a, &mut ta), (b, &mut tb)] {
            std::thread::sleep(std::time::Duration::from_millis(20));
            e.run(inputs)?;
            for _ in 0..runs.max(1) {
                let t0 = Instant::now();
                e.run(inputs)?;
                ts.push(t0.elapsed().as_secs_f64());
            }
        }
    }
    Ok((median(ta), median(tb)))
}

/// `g` compiled with `opts` and this tuning.
fn compile_tuned(opts: &Options, g: &Graph, tuning: &Tuning) -> Result<Box<dyn Executable>> {
    let mut o = opts.clone();
    o.schedule.tuning = Some(Arc::new(tuning.clone()));
    backend::for_options(&o)?.compile(g)
}

/// Largest |a − b| over every float output, relative to the largest |reference|.
fn relative_error(got: &Tensors, want: &Tensors) -> f64 {
    let (mut err, mut scale) = (0f64, 0f64);
    for (name, w) in want {
        let Some(g) = got.get(name) else { return f64::INFINITY };
        if !w.dtype().is_float() {
            if g != w {
                return f64::INFINITY;
            }
            continue;
        }
        for (a, b) in g.to_f32().iter().zip(w.to_f32()) {
            let d = (*a as f64 - b as f64).abs();
            err = if d.is_nan() { f64::INFINITY } else { err.max(d) };
            scale = scale.max((b as f64).abs());
        }
    }
    err / scale.max(1e-12)
}

/// The knobs searched after the conv method, with their candidate values for
/// target `t`: every value is a whole number of panels.
fn knob_values(t: &Target) -> Vec<(&'static str, Vec<usize>)> {
    let kc = vec![64, 128, 192, 256, 384, 512, 768, 1024];
    let mc: Vec<usize> = [2, 4, 8, 12, 16, 24, 32].iter().map(|m| m * t.mr).collect();
    let nc: Vec<usize> = [2, 4, 8, 16, 32, 64].iter().map(|m| m * t.nr).collect();
    vec![("kc", kc), ("mc", mc), ("nc", nc)]
}

fn with_knob(c: Choice, knob: &str, v: usize) -> Choice {
    match knob {
        "kc" => Choice { kc: Some(v), ..c },
        "mc" => Choice { mc: Some(v), ..c },
        _ => Choice { nc: Some(v), ..c },
    }
}

/// Tunes `model` (compiled for its options' backend, a CPU one) on this host;
/// `progress(done, total, what)` is called before each candidate.
pub fn tune(model: &Model, o: &TuneOptions, progress: &mut dyn FnMut(usize, usize, &str)) -> Result<TuneReport> {
    let t0 = Instant::now();
    let mut opts = model.options().clone();
    let codegen = opts.backend.codegen().filter(|b| *b != smelt_codegen::Backend::Wgsl).ok_or_else(|| {
        Error::text(ErrorKind::Options, format!("error: smelt tune tunes the CPU backends (cranelift, llvm), not {}", opts.backend))
    })?;
    opts.schedule.tuning = None;
    let target = Target::for_backend(codegen, &opts.schedule).map_err(|e| crate::error::codegen(model.graph(), e))?;
    let bindings: Bindings = model.bindings(&o.dims)?;
    let bound = model.graph().bind(&bindings).map_err(|d| Error::diags(ErrorKind::Model, d.0))?;
    let classes = classes(&bound)?;
    let knobs = knob_values(&target);
    let any_conv = classes.iter().any(|c| c.conv);
    let parallel = opts.threads > 1;
    let n = classes.len();
    let candidates = if n == 0 {
        0
    } else {
        usize::from(any_conv) * ConvMethod::ALL.len() + usize::from(parallel) + knobs.iter().map(|(_, v)| v.len()).sum::<usize>()
    };
    // The peak, the rates, the defaults, the candidates, the check (and its retry).
    let total = 4 + candidates + usize::from(parallel);
    let mut done = 0;
    let mut step = |what: &str| {
        progress(done, total, what);
        done += 1;
    };

    step("the machine's peak");
    let peak_gflops = probe::fma_peak(0.3);
    let bandwidth_gbs = probe::read_bandwidth();
    step("the backend's rates");
    let calibration = calibrate::calibrate(&opts)?;

    let mut kept = vec![Choice::default(); n];
    let mut kept_s = vec![f64::INFINITY; n];
    let mut default_s = vec![0.0; n];
    // The classes' choices as a tuning (those that change something).
    let table = |choices: &[Choice]| Tuning {
        choices: classes.iter().zip(choices).filter(|(_, c)| !c.is_empty()).map(|(c, ch)| (c.key.clone(), *ch)).collect(),
        calibration: None,
    };
    if n > 0 {
        let bench = bench_graph(&bound, &classes);
        let inputs = crate::quantize::random_samples(&bench, 1, &Bindings::new())?.remove(0);
        let consider = |cand: &[Choice], times: &[Timed], kept: &mut [Choice], kept_s: &mut [f64]| {
            for i in 0..n {
                if times[i].seconds < kept_s[i] * (1.0 - o.margin) {
                    kept[i] = cand[i];
                    kept_s[i] = times[i].seconds;
                    if classes[i].conv {
                        kept[i].conv = Some(times[i].method);
                    }
                }
            }
        };
        // The defaults first: what every candidate must beat.
        step("the defaults");
        let defaults = time_classes(&opts, &bench, &inputs, Tuning::default(), n, o.runs)?;
        default_s = defaults.iter().map(|t| t.seconds).collect();
        kept_s.copy_from_slice(&default_s);
        let default_method: Vec<ConvMethod> = defaults.iter().map(|t| t.method).collect();
        if any_conv {
            for m in ConvMethod::ALL {
                step(&format!("conv={}", m.name()));
                // A class whose default is this method has been timed with it.
                let cand: Vec<Choice> = classes
                    .iter()
                    .zip(&kept)
                    .zip(&default_method)
                    .map(|((c, k), d)| if c.conv && *d != m { Choice { conv: Some(m), ..*k } } else { *k })
                    .collect();
                let times = time_classes(&opts, &bench, &inputs, table(&cand), n, o.runs)?;
                consider(&cand, &times, &mut kept, &mut kept_s);
            }
        }
        // With threads: each class on one thread, where the split does not pay.
        if parallel {
            step("serial");
            let cand: Vec<Choice> = kept.iter().map(|k| Choice { serial: Some(true), ..*k }).collect();
            let times = time_classes(&opts, &bench, &inputs, table(&cand), n, o.runs)?;
            consider(&cand, &times, &mut kept, &mut kept_s);
        }
        for (knob, values) in &knobs {
            for &v in values {
                step(&format!("{knob}={v}"));
                let cand: Vec<Choice> = kept.iter().map(|k| with_knob(*k, knob, v)).collect();
                let times = time_classes(&opts, &bench, &inputs, table(&cand), n, o.runs)?;
                consider(&cand, &times, &mut kept, &mut kept_s);
            }
        }
    }
    let tuning = Tuning { calibration: Some(calibration), ..table(&kept) };

    // The check: the whole model, tuned, against the interpreter.
    step("checking the tuned model against the interpreter");
    let inputs = crate::quantize::random_samples(model.source_graph(), 1, &bindings)?.remove(0);
    let want = smelt_interp::run(model.source_graph(), &inputs).map_err(|e| crate::error::runtime(model.source_graph(), e))?;
    let untuned = backend::for_options(&opts)?.compile(model.graph())?;
    let tuned = compile_tuned(&opts, model.graph(), &tuning)?;
    let (untuned_out, got) = (untuned.run(&inputs)?, tuned.run(&inputs)?);
    let runs = o.runs.max(5);
    let (model_default_s, mut model_tuned_s) = time_pair(&*untuned, &*tuned, &inputs, runs)?;
    drop(tuned);
    let max_error = relative_error(&got, &want);
    // As close as the untuned schedule (a quantized model's requantization rounds
    // apart from the interpreter's either way), within the tolerance besides.
    let allowed = o.tolerance + 1.5 * relative_error(&untuned_out, &want);
    if max_error.is_nan() || max_error > allowed {
        return Err(Error::text(
            ErrorKind::Internal,
            format!(
                "error: the tuned schedule's outputs differ from the interpreter's by {max_error:.3e} (relative; allowed {allowed:.1e}); nothing is kept"
            ),
        ));
    }
    // Classes timed alone may not add up in the model (caches, threads): choices
    // that leave the whole model slower are not kept.
    // Running a class on one thread is the likeliest to mislead alone: without
    // those, once more, before giving up every choice.
    let mut tuning = tuning;
    if model_tuned_s > model_default_s * (1.0 + o.margin) && kept.iter().any(|c| c.serial.is_some()) {
        step("again, without the serial choices");
        let no_serial: Vec<Choice> = kept.iter().map(|c| Choice { serial: None, ..*c }).collect();
        let without = Tuning { calibration: tuning.calibration, ..table(&no_serial) };
        let (d, t) = time_pair(&*untuned, &*compile_tuned(&opts, model.graph(), &without)?, &inputs, runs)?;
        if t <= d * (1.0 + o.margin) {
            (kept, tuning, model_tuned_s) = (no_serial, without, t * model_default_s / d);
        }
    }
    let kept_choices = tuning.choices.is_empty() || model_tuned_s <= model_default_s * (1.0 + o.margin);
    let tuning = if kept_choices { tuning } else { Tuning { choices: Default::default(), ..tuning } };
    let reports = classes
        .iter()
        .enumerate()
        .map(|(i, c)| ClassReport {
            key: c.key.clone(),
            nodes: c.nodes.clone(),
            choice: kept[i],
            default_ms: default_s[i] * 1e3,
            tuned_ms: kept_s[i].min(default_s[i]) * 1e3,
        })
        .collect();
    Ok(TuneReport {
        host: Host::detect(),
        backend: opts.backend,
        threads: opts.threads,
        classes: reports,
        candidates,
        model_default_ms: model_default_s * 1e3,
        model_tuned_ms: model_tuned_s * 1e3,
        max_error,
        peak_gflops,
        bandwidth_gbs,
        calibration,
        seconds: t0.elapsed().as_secs_f64(),
        tuning,
        kept_choices,
    })
}
