//! Measuring smelt on a benchmark model: the ONNX file imported, optimized at
//! `-O2` (what `smelt bench` times), compiled by each backend, checked against ONNX
//! Runtime's outputs, then timed (warm-up, then the timed runs: median, min, mean),
//! and profiled once (each kernel call's time). A backend that cannot compile the
//! model gives an `n/a` entry with its message; the other backends go on.

use crate::check::{Values, compare};
use crate::report::{Entry, KernelCost, Status};
use smelt_engine::{BackendKind, CompiledModel, ErrorKind, OptLevel, Options};
use smelt_ir::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A model with the inputs and ONNX Runtime's outputs that every system gets.
#[derive(Debug)]
pub struct Case {
    pub model: String,
    pub path: PathBuf,
    /// By ONNX input name, in the graph's order.
    pub inputs: Vec<(String, Tensor)>,
    /// ONNX Runtime's outputs by ONNX output name, in the graph's order.
    pub expected: Vec<(String, Values)>,
}

/// How many runs, and the tolerance of the output check.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub warmup: usize,
    pub runs: usize,
    pub tolerance: f64,
}

pub fn values(t: &Tensor) -> Values {
    Values { shape: t.shape().to_vec(), data: t.to_f32() }
}

/// Reads `DIR/MODEL.onnx`'s graph input and output names and `DIR/MODEL.io.safetensors`
/// (written by ort_bench.py).
pub fn load_case(dir: &Path, model: &str) -> anyhow::Result<Case> {
    let path = dir.join(format!("{model}.onnx"));
    let bytes = std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let proto = smelt_frontends::onnx::decode_model(&bytes)?;
    let graph = proto.graph.ok_or_else(|| anyhow::anyhow!("{}: no graph", path.display()))?;
    let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let io_path = dir.join(format!("{model}.io.safetensors"));
    let mut io = smelt_ir::weights::read_safetensors(&io_path).map_err(|e| anyhow::anyhow!("{}", e.render(None)))?;
    let mut inputs = Vec::new();
    for i in graph.input.iter().filter(|i| !inits.contains(&i.name())) {
        let t = io.remove(i.name()).ok_or_else(|| anyhow::anyhow!("{}: no input `{}`", io_path.display(), i.name()))?;
        inputs.push((i.name().to_string(), t));
    }
    let mut expected = Vec::new();
    for o in &graph.output {
        let key = format!("expected.{}", o.name());
        let t = io.remove(&key).ok_or_else(|| anyhow::anyhow!("{}: no `{key}`", io_path.display()))?;
        expected.push((o.name().to_string(), values(&t)));
    }
    Ok(Case { model: model.to_string(), path, inputs, expected })
}

/// The model imported and optimized, with the ONNX ↔ smelt names.
#[derive(Debug)]
pub struct Prepared {
    pub graph: smelt_ir::Graph,
    pub inputs: BTreeMap<String, Tensor>,
    /// (ONNX name, smelt name) of each output.
    pub outputs: Vec<(String, String)>,
    pub optimize_ms: f64,
}

/// Imports and optimizes at `level` (the engine's pipeline, costed for a CPU).
pub fn prepare(case: &Case, level: OptLevel) -> anyhow::Result<Prepared> {
    let imported = smelt_frontends::onnx::import_file(&case.path, &smelt_frontends::onnx::Options::default())
        .map_err(|e| anyhow::anyhow!("import: {e}"))?;
    let mut graph = imported.graph;
    let t0 = Instant::now();
    smelt_engine::optimize(&mut graph, level, BackendKind::Cranelift).map_err(|e| anyhow::anyhow!("optimize: {e}"))?;
    let optimize_ms = ms(t0);
    let mut inputs = BTreeMap::new();
    for (onnx_name, t) in &case.inputs {
        let (_, name) = imported
            .inputs
            .iter()
            .find(|(o, _)| o == onnx_name)
            .ok_or_else(|| anyhow::anyhow!("the import has no input `{onnx_name}`"))?;
        inputs.insert(name.clone(), t.clone());
    }
    Ok(Prepared { graph, inputs, outputs: imported.outputs, optimize_ms })
}

pub fn system_name(b: BackendKind) -> String {
    format!("smelt-{}", b.name())
}

/// A system ready to be timed: compiled, and its outputs checked.
pub trait Subject {
    /// One run; its time in ms.
    fn once(&mut self) -> Result<f64, String>;
    /// Each kernel call's time in one run (smelt only).
    fn profile(&mut self) -> Vec<KernelCost> {
        Vec::new()
    }
}

/// An entry, and the subject to time when the system passed the check.
pub type Prepped<'a> = (Entry, Option<Box<dyn Subject + 'a>>);

struct SmeltSubject<'a> {
    m: CompiledModel,
    p: &'a Prepared,
}

impl Subject for SmeltSubject<'_> {
    fn once(&mut self) -> Result<f64, String> {
        let t0 = Instant::now();
        self.m.run(&self.p.inputs).map_err(|e| e.to_string())?;
        Ok(ms(t0))
    }

    fn profile(&mut self) -> Vec<KernelCost> {
        let Ok(prof) = self.m.profile(&self.p.inputs) else { return Vec::new() };
        prof.kernels
            .iter()
            .map(|k| KernelCost {
                kernel: k.kernel.clone(),
                node: k.node.clone(),
                kind: kind(&self.p.graph, &k.node, &k.kernel),
                ms: k.seconds * 1e3,
            })
            .collect()
    }
}

/// One smelt backend at one thread count: compiled (a backend that cannot is `n/a`)
/// and checked.
pub fn smelt_subject<'a>(
    case: &Case,
    p: &'a Prepared,
    backend: BackendKind,
    threads: usize,
    tolerance: f64,
    tuning: Option<&smelt_engine::TuningDb>,
) -> Prepped<'a> {
    let mut e = Entry::new(&case.model, &system_name(backend), threads, Status::Ok);
    e.optimize_ms = Some(p.optimize_ms);
    // The graph is optimized already (`prepare`, timed apart): -O0 here.
    let mut opts = Options::backend(backend).threads(threads).opt(OptLevel::O0);
    if let Some(db) = tuning {
        let host = smelt_engine::probe::Host::detect();
        opts.schedule.tuning = db.tuning_for(&host, backend.name(), threads).0.map(std::sync::Arc::new);
    }
    let t0 = Instant::now();
    let compiled = smelt_engine::compile(&p.graph, &opts).and_then(|m| {
        // The plan for these shapes (built by `compile` for static models).
        m.prepare(&p.inputs)?;
        Ok(m)
    });
    let m = match compiled {
        Ok(m) => m,
        Err(err) => {
            e.status = match err.kind() {
                ErrorKind::Unsupported { .. } | ErrorKind::NotBuilt { .. } => Status::NotAvailable,
                _ => Status::Error,
            };
            e.note = Some(err.to_string());
            return (e, None);
        }
    };
    e.compile_ms = Some(ms(t0));
    let out = match m.run(&p.inputs) {
        Ok(out) => p.outputs.iter().filter_map(|(o, s)| out.get(s).map(|t| (o.clone(), values(t)))).collect::<Vec<_>>(),
        Err(err) => {
            e.status = Status::Error;
            e.note = Some(err.to_string());
            return (e, None);
        }
    };
    if let Err(note) = check(&mut e, &out, &case.expected, tolerance) {
        e.status = Status::Mismatch;
        e.note = Some(note);
        return (e, None);
    }
    (e, Some(Box::new(SmeltSubject { m, p })))
}

/// Times the subjects side by side, so that all of them run under the same load
/// (the machine may be shared): each one's warm-up runs, then `runs` rounds in which
/// every subject runs once, in an order that rotates from round to round. Fills in
/// each entry's times and profile; a subject that fails is marked `error`.
pub fn interleave(subjects: &mut [Prepped<'_>], s: &Settings) {
    let n = subjects.len();
    let fail = |slot: &mut Prepped<'_>, msg: String| {
        slot.0.status = Status::Error;
        slot.0.note = Some(msg);
        slot.1 = None;
    };
    for slot in subjects.iter_mut() {
        for _ in 0..s.warmup {
            let Some(sub) = slot.1.as_mut() else { break };
            if let Err(msg) = sub.once() {
                fail(slot, msg);
            }
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(s.runs); n];
    for r in 0..s.runs {
        for i in 0..n {
            let k = (i + r) % n;
            let slot = &mut subjects[k];
            let Some(sub) = slot.1.as_mut() else { continue };
            match sub.once() {
                Ok(t) => times[k].push(t),
                Err(msg) => fail(slot, msg),
            }
        }
    }
    for (slot, t) in subjects.iter_mut().zip(&times) {
        if let Some(sub) = slot.1.as_mut() {
            set_times(&mut slot.0, t);
            slot.0.profile = sub.profile();
        }
    }
}

/// A kernel's kind: its node's op, and the kernel's part of it (the suffix that
/// `lower` adds to the node's name: `gemm`, `pack_a`, `steps`).
fn kind(g: &smelt_ir::Graph, node: &str, kernel: &str) -> String {
    let op = g.find(node).map(|v| g.node(v.node).op.name().to_string()).unwrap_or_else(|| "?".into());
    let base: String = node.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let part = kernel.strip_prefix(&base).unwrap_or("").trim_start_matches('_');
    // Drop the `_2`, `_3` that keep names unique.
    let part = part.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('_');
    if part.is_empty() { op } else { format!("{op}/{part}") }
}

/// Compares outputs with ONNX Runtime's and records the error; `Err` says why they
/// disagree.
pub fn check(
    e: &mut Entry,
    out: &[(String, Values)],
    expected: &[(String, Values)],
    tolerance: f64,
) -> Result<(), String> {
    let err = compare(out, expected)?;
    e.max_rel_err = Some(err);
    if err > tolerance {
        return Err(format!("max relative error {err:.1e} > {tolerance:.0e}"));
    }
    Ok(())
}

/// Median, min and mean into an entry.
pub fn set_times(e: &mut Entry, times: &[f64]) {
    let mut v = times.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return;
    }
    e.median_ms = Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) });
    e.min_ms = Some(v[0]);
    e.mean_ms = Some(v.iter().sum::<f64>() / n as f64);
}

pub fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_mean() {
        let mut e = Entry::new("m", "s", 1, Status::Ok);
        set_times(&mut e, &[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((e.median_ms, e.min_ms, e.mean_ms), (Some(2.5), Some(1.0), Some(4.0)));
    }

    /// Counts its runs; fails on run `fail_at`.
    struct Fake {
        calls: std::rc::Rc<std::cell::RefCell<Vec<usize>>>,
        id: usize,
        fail_at: Option<usize>,
        n: usize,
    }

    impl Subject for Fake {
        fn once(&mut self) -> Result<f64, String> {
            self.n += 1;
            self.calls.borrow_mut().push(self.id);
            if Some(self.n) == self.fail_at { Err("boom".into()) } else { Ok(self.id as f64 + 1.0) }
        }
    }

    #[test]
    fn interleaved_rounds_rotate_and_failures_stop_a_subject() {
        let calls = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let fake = |id, fail_at| -> Option<Box<dyn Subject>> {
            Some(Box::new(Fake { calls: calls.clone(), id, fail_at, n: 0 }))
        };
        let mut subjects: Vec<Prepped<'_>> = vec![
            (Entry::new("m", "a", 1, Status::Ok), fake(0, None)),
            (Entry::new("m", "b", 1, Status::NotAvailable), None),
            (Entry::new("m", "c", 1, Status::Ok), fake(2, Some(3))),
        ];
        interleave(&mut subjects, &Settings { warmup: 1, runs: 3, tolerance: 1e-4 });
        // Warm-up a, c; round 0: a, c; round 1 starts at b (none), c fails; round 2: a.
        assert_eq!(*calls.borrow(), vec![0, 2, 0, 2, 2, 0, 0]);
        assert_eq!((subjects[0].0.median_ms, subjects[0].0.min_ms), (Some(1.0), Some(1.0)));
        assert_eq!(subjects[1].0.status, Status::NotAvailable);
        assert_eq!((subjects[2].0.status, subjects[2].0.note.as_deref()), (Status::Error, Some("boom")));
        assert!(subjects[2].1.is_none() && subjects[2].0.median_ms.is_none());
    }
}
