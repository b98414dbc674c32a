//! Post-training quantization (`smelt quantize`): calibrate (static) or compute
//! activation parameters at run time (dynamic), choose a precision per layer
//! under an accuracy budget, and write integer kernels.
//!
//! 1. The model is cleaned at `-O1` (batch norms folded into their convs, constants
//!    folded) and its quantizable layers found ([`smelt_passes::quant::insert::layers`]).
//! 2. **Calibration**: the model, with every layer's activation made an output, is
//!    compiled on the options' backend and run over the calibration inputs: a first
//!    pass for each activation's range, a second for its histogram when the method
//!    needs one ([`Method`]).
//! 3. Every layer not excluded is quantized (QDQ pairs, then `fold-qdq` makes them
//!    integer kernels) and the whole model is checked against the float model on
//!    held-out inputs (every fifth calibration input when there are five or more;
//!    else the calibration inputs themselves): the relative L2 error of the outputs.
//! 4. With a budget, while the error exceeds it, the layer that alone costs the
//!    most error (its *sensitivity*, measured by quantizing it alone) goes back to
//!    f32. The report says, per layer, the precision chosen and why.
//!
//! In [`Mode::Dynamic`] step 2 is skipped: matmuls and gemms get integer kernels
//! whose activation scale and zero point are computed from each run's data
//! ([`smelt_passes::quant::dynamic`]); convolutions stay f32. The calibration
//! inputs then only serve the check and the budget.
//!
//! Lossy steps are measured, never assumed: the report's error, SQNR and argmax
//! agreement are measured on the held-out inputs.

use crate::backend::{self, Tensors};
use crate::error::{Error, ErrorKind, Result};
use crate::options::Options;
use smelt_ir::{DType, Graph, Tensor, Value};
use smelt_passes::quant::calib::{self, Method, Observer};
use smelt_passes::quant::dynamic::{self, DynamicScheme};
use smelt_passes::quant::insert::{self, ActParams, Layer, WeightScheme};
use smelt_passes::{OptLevel, PassManager};
use std::collections::{BTreeMap, HashMap};

/// Static (calibrated activation ranges) or dynamic (ranges from each run's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Static,
    Dynamic,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Static => "static",
            Mode::Dynamic => "dynamic",
        })
    }
}

/// What `quantize` does.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// Static or dynamic quantization.
    pub mode: Mode,
    /// How activation ranges are chosen.
    pub method: Method,
    /// Activation dtype: u8 (default) or i8.
    pub activations: DType,
    /// Symmetric activation ranges (zero point at the middle).
    pub symmetric_activations: bool,
    /// Weights per output channel (default) or per tensor.
    pub per_channel: bool,
    /// 7-bit weights (±63): faster on AVX2 hosts without VNNI (see
    /// [`WeightScheme::reduce_range`]).
    pub reduce_range: bool,
    /// Layers (by node name) that stay f32.
    pub exclude: Vec<String>,
    /// The largest relative L2 error of the outputs allowed on held-out inputs.
    pub budget: Option<f64>,
    /// The backend (and its options) that runs calibration and checks.
    pub run: Options,
}

impl QuantizeOptions {
    /// MinMax, u8 asymmetric activations, per-channel weights, no budget.
    pub fn new(run: Options) -> QuantizeOptions {
        QuantizeOptions {
            mode: Mode::Static,
            method: Method::MinMax,
            activations: DType::U8,
            symmetric_activations: false,
            per_channel: true,
            reduce_range: false,
            exclude: vec![],
            budget: None,
            run,
        }
    }
}

/// One layer's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    pub name: String,
    pub op: String,
    /// `int8`, `int8-dynamic` or `f32`.
    pub precision: String,
    /// Why: `quantized`, `excluded`, `kept in f32 for the budget`.
    pub reason: String,
    pub macs: u64,
    /// The output error with this layer alone quantized (measured under a budget).
    pub sensitivity: Option<f64>,
    /// The calibrated activation range and its parameters (static mode).
    pub range: Option<(f32, f32)>,
    pub scale: Option<f32>,
    pub zero_point: Option<i32>,
}

/// What quantization did and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeReport {
    pub mode: Mode,
    /// The calibration method (static mode).
    pub method: String,
    pub calibration_inputs: usize,
    pub held_out_inputs: usize,
    /// Whether the check ran on inputs calibration did not see.
    pub held_out: bool,
    pub layers: Vec<LayerReport>,
    /// Relative L2 error of the outputs against the float model.
    pub error: f64,
    /// `-20·log10(error)`.
    pub sqnr_db: f64,
    /// The share of rows whose argmax agrees with the float model's (outputs
    /// whose last dim is > 1).
    pub argmax_agreement: Option<f64>,
    pub budget: Option<f64>,
    /// The backend the times were measured on, and the median time of one run
    /// on the held-out inputs of the float and the quantized model (ms; one run
    /// per input, so a rough figure: `smelt bench` measures properly).
    pub backend: String,
    pub f32_ms: f64,
    pub quantized_ms: f64,
}

/// A quantized model and its report.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// The model with integer kernels (cleaned at `-O1`).
    pub graph: Graph,
    pub report: QuantizeReport,
}

pub(crate) fn err(kind: ErrorKind, msg: impl Into<String>) -> Error {
    Error::text(kind, msg)
}

pub(crate) fn cleanup(g: &mut Graph) -> Result<()> {
    PassManager::pipeline(OptLevel::O1)
        .run(g)
        .map(|_| ())
        .map_err(|e| err(ErrorKind::Model, format!("error: {e}").replace('\n', "\n  ")))
}

/// Runs `g` compiled on the options' backend over `inputs`; the median time of
/// a run in milliseconds (each input once, after one untimed run of the first)
/// and the graph as optimized for it.
pub(crate) fn run_all(g: &Graph, o: &Options, inputs: &[&Tensors], mut each: impl FnMut(usize, Tensors) -> Result<()>) -> Result<(f64, Graph)> {
    let b = backend::for_options(o)?;
    let mut g = g.clone();
    crate::optimize(&mut g, o.opt_level, o.backend)?;
    let exe = b.compile(&g)?;
    if let Some(x) = inputs.first() {
        exe.run(x)?;
    }
    let mut ms = vec![];
    for (i, x) in inputs.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let out = exe.run(x)?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        each(i, out)?;
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms.get(ms.len() / 2).copied().unwrap_or(0.0), g))
}

/// Checks sample inputs against the model's signature (names, dtypes, ranks),
/// so a wrong file says so before anything runs; `what` names them in errors
/// (`calibration input`).
pub(crate) fn check_inputs(g: &Graph, samples: &[Tensors], what: &str) -> Result<()> {
    if samples.is_empty() {
        return Err(err(ErrorKind::Inputs, format!("error: no {what}s were given")));
    }
    for (i, s) in samples.iter().enumerate() {
        smelt_interp::bind_inputs(g, s).map_err(|e| err(ErrorKind::Inputs, format!("error: {what} {}: {e}", i + 1)))?;
    }
    Ok(())
}

/// Splits sample sets whose tensors carry one more leading dim than the model's
/// inputs (a file of many samples) into one set per index of that dim.
pub fn split_samples(g: &Graph, file: Tensors) -> Result<Vec<Tensors>> {
    let ranks: HashMap<String, usize> =
        g.inputs().iter().map(|&i| (g.node(i).name().to_string(), g.node(i).types[0].rank())).collect();
    let stacked = !file.is_empty() && file.iter().all(|(k, t)| ranks.get(k).is_some_and(|&r| t.rank() == r + 1));
    if !stacked {
        return Ok(vec![file]);
    }
    let n = file.values().next().map(|t| t.shape()[0]).unwrap_or(0);
    if file.values().any(|t| t.shape()[0] != n) {
        return Err(err(ErrorKind::Inputs, "error: a stacked calibration file needs one leading size for every input"));
    }
    let mut out = vec![Tensors::new(); n];
    for (k, t) in &file {
        let inner: usize = t.shape()[1..].iter().product();
        for (i, s) in out.iter_mut().enumerate() {
            let pos: Vec<usize> = (i * inner..(i + 1) * inner).collect();
            let one = Tensor::new(t.shape()[1..].to_vec(), t.data().take(&pos)).expect("shape matches");
            s.insert(k.clone(), one);
        }
    }
    Ok(out)
}

/// `n` seeded random sample inputs (seeds 0…n−1), the model's symbolic dims
/// sized by `dims`, else 1.
pub fn random_samples(g: &Graph, n: usize, dims: &smelt_ir::Bindings) -> Result<Vec<Tensors>> {
    let mut b = dims.clone();
    for &i in g.inputs() {
        for s in g.node(i).types[0].shape.symbols() {
            b.entry(s.to_string()).or_insert(1);
        }
    }
    (0..n as u64).map(|seed| smelt_interp::init::random_inputs(g, seed, &b).map_err(|e| err(ErrorKind::Inputs, format!("error: {e}")))).collect()
}

/// Output errors of a candidate against the float reference.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Measured {
    pub(crate) err_sq: f64,
    pub(crate) ref_sq: f64,
    pub(crate) rows: u64,
    pub(crate) agree: u64,
}

impl Measured {
    pub(crate) fn add(&mut self, reference: &Tensors, got: &Tensors) {
        for (k, r) in reference {
            let (Some(q), true) = (got.get(k), r.dtype().is_float()) else { continue };
            let (r, q) = (r.to_f32(), q.to_f32());
            for (a, b) in r.iter().zip(&q) {
                let d = (*a as f64) - (*b as f64);
                self.err_sq += d * d;
                self.ref_sq += (*a as f64) * (*a as f64);
            }
        }
        for (k, r) in reference {
            let (Some(q), true) = (got.get(k), r.dtype().is_float()) else { continue };
            let last = *r.shape().last().unwrap_or(&1);
            if last < 2 {
                continue;
            }
            let (r, q) = (r.to_f32(), q.to_f32());
            for (a, b) in r.chunks(last).zip(q.chunks(last)) {
                self.rows += 1;
                self.agree += u64::from(argmax(a) == argmax(b));
            }
        }
    }

    pub(crate) fn error(&self) -> f64 {
        if self.ref_sq > 0.0 { (self.err_sq / self.ref_sq).sqrt() } else { self.err_sq.sqrt() }
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &x)| if x > best.1 { (i, x) } else { best }).0
}

/// Quantizes `g` (see the module docs). `progress(stage, done, total)` is called
/// as calibration and checks advance.
pub fn quantize(g: &Graph, samples: &[Tensors], o: &QuantizeOptions, progress: &mut dyn FnMut(&str, usize, usize)) -> Result<Quantized> {
    if !matches!(o.activations, DType::U8 | DType::I8) {
        return Err(err(ErrorKind::Options, format!("error: activations must be u8 or i8, found {}", o.activations)));
    }
    if let Some(b) = o.budget
        && !(b > 0.0 && b.is_finite())
    {
        return Err(err(ErrorKind::Options, format!("error: the budget must be a positive error, found {b}")));
    }
    check_inputs(g, samples, "calibration input")?;
    let mut g0 = g.clone();
    cleanup(&mut g0)?;
    let dynamic = o.mode == Mode::Dynamic;
    let mut all = insert::layers(&g0);
    if dynamic {
        all.retain(|l| dynamic::supports(&g0, l));
    }
    if all.is_empty() {
        let what = if dynamic { "matmul or gemm" } else { "conv, matmul or gemm" };
        return Err(err(ErrorKind::Model, format!("error: nothing to quantize ({} mode): the model has no {what} with constant f32 weights", o.mode)));
    }
    for x in &o.exclude {
        if !all.iter().any(|l| &l.name == x) {
            let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).take(12).collect();
            let more = if all.len() > 12 { ", …" } else { "" };
            return Err(err(ErrorKind::Options, format!("error: --exclude `{x}` names no quantizable layer (they are: {}{more})", names.join(", "))));
        }
    }
    // Held-out inputs for the check.
    let n = samples.len();
    // Dynamic mode calibrates nothing: every input is held out.
    let held: Vec<usize> = if n >= 5 && !dynamic { (0..n).filter(|i| i % 5 == 4).collect() } else { (0..n).collect() };
    let calib: Vec<&Tensors> = if dynamic {
        vec![]
    } else if n >= 5 {
        (0..n).filter(|i| i % 5 != 4).map(|i| &samples[i]).collect()
    } else {
        samples.iter().collect()
    };
    let eval: Vec<&Tensors> = held.iter().map(|&i| &samples[i]).collect();

    let stats = if dynamic { HashMap::new() } else { calibrate(&g0, &all, &calib, o, progress)? };
    let params: HashMap<Value, (ActParams, (f32, f32))> = stats
        .iter()
        .map(|(v, obs)| {
            let levels = 256;
            let (lo, hi) = obs.choose(o.method, levels);
            let (scale, zero_point) = calib::params(lo, hi, o.activations, o.symmetric_activations);
            (*v, (ActParams { dtype: o.activations, scale, zero_point }, (lo, hi)))
        })
        .collect();

    // The float reference on the held-out inputs.
    let mut reference = vec![Tensors::new(); eval.len()];
    let (f32_ms, _) = run_all(&g0, &o.run, &eval, |i, out| {
        reference[i] = out;
        Ok(())
    })?;
    let measure = |chosen: &[&Layer]| -> Result<(Graph, Measured, f64)> {
        let mut q = g0.clone();
        let act: HashMap<Value, ActParams> = chosen.iter().filter_map(|l| Some((l.act, params.get(&l.act)?.0))).collect();
        let owned: Vec<Layer> = chosen.iter().map(|l| (*l).clone()).collect();
        if dynamic {
            let s = DynamicScheme {
                activations: o.activations,
                symmetric: o.symmetric_activations,
                per_channel: o.per_channel,
                reduce_range: o.reduce_range,
            };
            dynamic::insert_dynamic(&mut q, &owned, s);
        } else {
            insert::insert_qdq(&mut q, &owned, &act, WeightScheme { per_channel: o.per_channel, reduce_range: o.reduce_range });
        }
        cleanup(&mut q)?;
        let mut m = Measured::default();
        let (ms, _) = run_all(&q, &o.run, &eval, |i, out| {
            m.add(&reference[i], &out);
            Ok(())
        })?;
        Ok((q, m, ms))
    };

    let mut chosen: Vec<&Layer> = all.iter().filter(|l| !o.exclude.contains(&l.name)).collect();
    let mut reasons: BTreeMap<String, String> =
        o.exclude.iter().map(|x| (x.clone(), "excluded".to_string())).collect();
    let mut sens: HashMap<String, f64> = HashMap::new();
    progress("check", 0, 1);
    let (mut graph, mut m, mut int8_ms) = measure(&chosen)?;
    if let Some(budget) = o.budget
        && m.error() > budget
    {
        // Each layer's sensitivity: the error with it alone quantized.
        for (i, l) in chosen.iter().enumerate() {
            progress("sensitivity", i, chosen.len());
            let (_, ml, _) = measure(&[l])?;
            sens.insert(l.name.clone(), ml.error());
        }
        progress("sensitivity", chosen.len(), chosen.len());
        chosen.sort_by(|a, b| sens[&b.name].total_cmp(&sens[&a.name]));
        while m.error() > budget {
            if chosen.len() <= 1 {
                let err_all = m.error();
                return Err(err(
                    ErrorKind::Options,
                    format!(
                        "error: the budget {} cannot be met: with only `{}` in int8 the output error is {:.3}%; every other layer would stay f32",
                        pct(budget),
                        chosen.first().map(|l| l.name.as_str()).unwrap_or("-"),
                        err_all * 100.0
                    ),
                ));
            }
            let l = chosen.remove(0);
            reasons.insert(l.name.clone(), format!("kept in f32 for the budget (sensitivity {})", pct(sens[&l.name])));
            progress("budget", all.len() - chosen.len(), all.len());
            (graph, m, int8_ms) = measure(&chosen)?;
        }
    }
    progress("check", 1, 1);
    let layers = all
        .iter()
        .map(|l| {
            let p = params.get(&l.act).copied();
            let q = chosen.iter().any(|c| c.name == l.name);
            let int8 = if dynamic { "int8-dynamic" } else { "int8" };
            LayerReport {
                name: l.name.clone(),
                op: l.op.to_string(),
                precision: if q { int8 } else { "f32" }.to_string(),
                reason: if q { "quantized".to_string() } else { reasons.get(&l.name).cloned().unwrap_or_default() },
                macs: l.macs,
                sensitivity: sens.get(&l.name).copied(),
                range: p.map(|p| p.1),
                scale: p.map(|p| p.0.scale),
                zero_point: p.map(|p| p.0.zero_point),
            }
        })
        .collect();
    let e = m.error();
    let report = QuantizeReport {
        mode: o.mode,
        method: if dynamic { "run-time min/max".to_string() } else { o.method.to_string() },
        calibration_inputs: calib.len(),
        held_out_inputs: eval.len(),
        held_out: n >= 5 || dynamic,
        layers,
        error: e,
        sqnr_db: if e > 0.0 { -20.0 * e.log10() } else { f64::INFINITY },
        argmax_agreement: (m.rows > 0).then(|| m.agree as f64 / m.rows as f64),
        budget: o.budget,
        backend: o.run.backend.to_string(),
        f32_ms,
        quantized_ms: int8_ms,
    };
    Ok(Quantized { graph, report })
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.3}%", x * 100.0)
}

/// Runs the calibration passes; the statistics of each layer's activation.
fn calibrate(
    g0: &Graph,
    layers: &[Layer],
    calib: &[&Tensors],
    o: &QuantizeOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<HashMap<Value, Observer>> {
    let mut acts: Vec<Value> = vec![];
    for l in layers {
        if !acts.contains(&l.act) {
            acts.push(l.act);
        }
    }
    // Activations that are graph inputs are read from the inputs; the others
    // become outputs of an instrumented copy.
    let mut inst = g0.clone();
    let mut outs = inst.outputs().to_vec();
    let mut names: Vec<(Value, String, bool)> = vec![];
    for &v in &acts {
        let name = g0.value_name(v).to_string();
        let is_input = g0.inputs().contains(&v.node);
        if !is_input && !outs.contains(&v) {
            outs.push(v);
        }
        names.push((v, name, is_input));
    }
    inst.set_outputs(outs);
    let passes = if o.method.needs_histogram() { 2 } else { 1 };
    let mut stats: HashMap<Value, Observer> = acts.iter().map(|&v| (v, Observer::default())).collect();
    for pass in 0..passes {
        let stage = if pass == 0 { "calibrate (ranges)" } else { "calibrate (histograms)" };
        let total = calib.len();
        run_all(&inst, &o.run, calib, |i, out| {
            progress(stage, i + 1, total);
            for (v, name, is_input) in &names {
                let t = if *is_input { calib[i].get(name) } else { out.get(name) };
                let Some(t) = t else { continue };
                let vals = t.to_f32();
                let obs = stats.get_mut(v).expect("observed");
                if pass == 0 { obs.observe_range(&vals) } else { obs.observe_histogram(&vals) }
            }
            Ok(())
        })?;
    }
    Ok(stats)
}

impl QuantizeReport {
    /// The report as JSON (`smelt quantize --report`).
    pub fn to_json(&self) -> String {
        let r = self;
        let finite = |x: f64| if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null };
        let layers: Vec<serde_json::Value> = r
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "op": l.op, "precision": l.precision, "reason": l.reason, "macs": l.macs,
                    "sensitivity": l.sensitivity, "range": l.range.map(|r| [r.0, r.1]), "scale": l.scale, "zero_point": l.zero_point,
                })
            })
            .collect();
        let v = serde_json::json!({
            "mode": r.mode.to_string(), "method": r.method, "calibration_inputs": r.calibration_inputs, "held_out_inputs": r.held_out_inputs,
            "held_out": r.held_out, "error": finite(r.error), "sqnr_db": finite(r.sqnr_db),
            "argmax_agreement": r.argmax_agreement, "budget": r.budget, "backend": r.backend,
            "f32_ms": r.f32_ms, "quantized_ms": r.quantized_ms, "layers": layers,
        });
        serde_json::to_string_pretty(&v).expect("json") + "\n"
    }
}
