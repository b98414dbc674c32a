//! `smelt quantize MODEL -o OUT`: post-training int8 quantization, static or
//! dynamic (`--mode`), through the engine ([`smelt::engine::quantize`]).
//! Calibration inputs come from
//! safetensors files (`--calibrate`, each like `run --inputs`, or stacked with one
//! more leading dim holding many inputs) or are drawn at random
//! (`--calibrate-random N`; dynamic mode draws 8 when none are given, for the
//! error check alone). Prints the per-layer report and the measured error;
//! writes `OUT.smelt` and `OUT.safetensors` (atomically, only on success), and the
//! report as JSON with `--report`.

use super::{BackendArg, EngineArgs, engine_err, reported, shown, weight_bytes};
use smelt::engine::quantize::{Mode, QuantizeOptions, QuantizeReport};
use smelt::engine;
use smelt::ir::DType;
use smelt::passes::quant::calib::Method;
use std::path::PathBuf;

/// What `quantize` was asked to do.
#[derive(Debug)]
pub struct QuantizeArgs {
    pub model: PathBuf,
    pub out: PathBuf,
    pub calibrate: Vec<PathBuf>,
    pub calibrate_random: Option<usize>,
    pub dynamic: bool,
    pub method: String,
    pub activations: String,
    pub symmetric: bool,
    pub per_tensor: bool,
    pub reduce_range: bool,
    pub exclude: Vec<String>,
    pub budget: Option<String>,
    pub report: Option<PathBuf>,
    pub dims: Vec<(String, u64)>,
    pub backend: BackendArg,
    pub threads: usize,
    pub engine: EngineArgs,
}

/// `1%`, `0.5%` or a fraction (`0.01`).
pub fn parse_budget(s: &str) -> Result<f64, String> {
    let (num, scale) = match s.trim().strip_suffix('%') {
        Some(p) => (p, 0.01),
        None => (s.trim(), 1.0),
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("--budget `{s}` is not an error like 1% or 0.01"))?;
    let v = v * scale;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("--budget must be a positive error, found `{s}`"));
    }
    Ok(v)
}

pub fn main(a: &QuantizeArgs) -> anyhow::Result<()> {
    let method = Method::parse(&a.method).or_else(|e| reported(format!("error: --method: {e}")))?;
    let activations = match a.activations.as_str() {
        "u8" => DType::U8,
        "i8" | "s8" => DType::I8,
        other => return reported(format!("error: --activations must be u8 or i8, found `{other}`")),
    };
    let budget = match &a.budget {
        Some(b) => Some(parse_budget(b).or_else(|e| reported(format!("error: {e}")))?),
        None => None,
    };
    let calibrate_random = match a.calibrate_random {
        None if a.dynamic && a.calibrate.is_empty() => Some(8),
        n => n,
    };
    if a.calibrate.is_empty() && calibrate_random.is_none() {
        return reported("error: give calibration inputs: --calibrate FILE.safetensors… or --calibrate-random N");
    }
    let run = a.engine.options(a.backend.kind(), a.threads, None)?;
    let (source, dims) = super::source_with_dims(&a.model, &a.dims);
    let g = engine::load(source).map_err(engine_err)?;

    let samples = super::steps::samples(&g, &a.calibrate, calibrate_random, dims)?;

    let mut o = QuantizeOptions::new(run);
    o.mode = if a.dynamic { Mode::Dynamic } else { Mode::Static };
    o.method = method;
    o.activations = activations;
    o.symmetric_activations = a.symmetric;
    o.per_channel = !a.per_tensor;
    o.reduce_range = a.reduce_range;
    o.exclude = a.exclude.clone();
    o.budget = budget;
    let q = super::steps::with_progress(|p| engine::quantize(&g, &samples, &o, p)).map_err(engine_err)?;
    print_report(&q.report);

    let report = a.report.as_deref().map(|r| (r, q.report.to_json()));
    let (mpath, wpath) = super::steps::write(&q.graph, &a.out, report)?;
    let (before, after) = (weight_bytes(&g), weight_bytes(&q.graph));
    eprintln!(
        "wrote {} and {} (weights {} → {} bytes, {:.2}×)",
        shown(&mpath),
        shown(&wpath),
        before,
        after,
        after as f64 / before.max(1) as f64
    );
    Ok(())
}

fn print_report(r: &QuantizeReport) {
    println!("{:<32} {:<8} {:<12} {:>12} {:>11}  reason", "layer", "op", "prec", "act scale", "sensitivity");
    for l in &r.layers {
        let sens = l.sensitivity.map(|s| format!("{:.4}%", s * 100.0)).unwrap_or_else(|| "-".into());
        let scale = l.scale.map(|s| format!("{s:.4e}")).unwrap_or_else(|| "run time".into());
        println!("{:<32} {:<8} {:<12} {:>12} {:>11}  {}", l.name, l.op, l.precision, scale, sens, l.reason);
    }
    let int8 = r.layers.iter().filter(|l| l.precision != "f32").count();
    let set = if r.held_out { "held-out" } else { "calibration" };
    let how = match r.mode {
        Mode::Static => format!("{} calibration inputs, {}", r.calibration_inputs, r.method),
        Mode::Dynamic => "dynamic: activation ranges computed at run time".to_string(),
    };
    print!(
        "{int8}/{} layers int8 ({how}); output error {:.4}% ({:.1} dB SQNR) on {} {set} inputs",
        r.layers.len(),
        r.error * 100.0,
        r.sqnr_db,
        r.held_out_inputs
    );
    if let Some(a) = r.argmax_agreement {
        print!(", argmax agreement {:.2}%", a * 100.0);
    }
    if let Some(b) = r.budget {
        print!(", budget {:.3}%", b * 100.0);
    }
    println!();
    let speedup = r.f32_ms / r.quantized_ms.max(1e-9);
    println!(
        "time on {}: f32 {:.3} ms, quantized {:.3} ms ({speedup:.2}×; median of one run per held-out input)",
        r.backend, r.f32_ms, r.quantized_ms
    );
    if speedup < 1.0 {
        println!("note: the quantized model is slower than the float one on {} (see `smelt bench`)", r.backend);
    }
}
