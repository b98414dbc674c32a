//! Model-to-model steps from Python: `quantize`, `prune` and `optimize` (and
//! `zoo` and `import_onnx`, `tools.rs`), each
//! giving a `Transformed` model (its graph and the step's report as JSON) that
//! can be saved as `.smelt` + `.safetensors` or compiled, as the CLI's
//! `smelt quantize`, `smelt prune` and `smelt opt` do.

use super::{Model, OptionsError, feeds_of, options, raise, source_of};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use smelt_engine::prune::PruneOptions;
use smelt_engine::quantize::{Mode, QuantizeOptions};
use smelt_engine::{Graph, Source, Tensors};
use smelt_ir::{Bindings, DType, weights};
use std::path::PathBuf;

/// A quantized, pruned or optimized model.
#[derive(Debug)]
#[pyclass(frozen, module = "smelt._smelt")]
pub struct Transformed {
    pub(crate) graph: Graph,
    pub(crate) report: String,
}

#[pymethods]
impl Transformed {
    /// The step's report as JSON (what `--report` writes; `{}` for `optimize`).
    #[getter]
    fn report_json(&self) -> &str {
        &self.report
    }

    /// The step's report as a dict (per-layer rows, the measured error, times).
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (&self.report,))
    }

    /// The model in smelt's text format.
    fn text(&self) -> String {
        smelt_ir::text::print(&self.graph)
    }

    /// Writes `OUT.smelt` and `OUT.safetensors` (each only once complete);
    /// returns both paths.
    fn save(&self, out: PathBuf) -> PyResult<(String, String)> {
        let (m, w) = weights::write_model(&self.graph, &out).map_err(|e| super::Error::new_err(e.render(None)))?;
        Ok((m.display().to_string(), w.display().to_string()))
    }

    /// Compiles the model, as `smelt.compile` does.
    #[pyo3(signature = (backend = "cranelift", opt_level = 2, threads = 1))]
    fn compile(&self, py: Python<'_>, backend: &str, opt_level: u8, threads: usize) -> PyResult<Model> {
        super::compile_source(py, Source::Graph(self.graph.clone()), backend, opt_level, threads)
    }
}

/// Sample inputs: the given feeds (each a dict, or stacked with one more
/// leading dim), else `random` seeded random ones (symbolic dims 1).
fn samples(g: &Graph, given: Option<Vec<Bound<'_, PyDict>>>, random: Option<usize>) -> PyResult<Vec<Tensors>> {
    let mut out = vec![];
    for d in given.unwrap_or_default() {
        let names: Vec<String> = g.inputs().iter().map(|&i| g.node(i).name().to_string()).collect();
        let t = feeds_of(&names, d.as_any())?;
        out.extend(smelt_engine::quantize::split_samples(g, t).map_err(raise)?);
    }
    if let Some(n) = random {
        out.extend(smelt_engine::quantize::random_samples(g, n, &Bindings::new()).map_err(raise)?);
    }
    Ok(out)
}

/// Post-training int8 quantization (see `smelt quantize --help`).
#[pyfunction]
#[pyo3(signature = (model, calibration = None, calibrate_random = None, mode = "static", method = "minmax", activations = "u8",
    symmetric = false, per_tensor = false, reduce_range = false, exclude = vec![], budget = None, backend = "cranelift", threads = 1))]
#[allow(clippy::too_many_arguments)]
pub fn quantize(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    calibration: Option<Vec<Bound<'_, PyDict>>>,
    calibrate_random: Option<usize>,
    mode: &str,
    method: &str,
    activations: &str,
    symmetric: bool,
    per_tensor: bool,
    reduce_range: bool,
    exclude: Vec<String>,
    budget: Option<f64>,
    backend: &str,
    threads: usize,
) -> PyResult<Transformed> {
    let source = source_of(model)?;
    let g = py.detach(|| smelt_engine::load(source)).map_err(raise)?;
    let mut o = QuantizeOptions::new(options(backend, threads)?);
    o.mode = match mode {
        "static" => Mode::Static,
        "dynamic" => Mode::Dynamic,
        m => return Err(OptionsError::new_err(format!("error: mode must be static or dynamic, found `{m}`"))),
    };
    o.method = smelt_passes::quant::calib::Method::parse(method).map_err(|e| OptionsError::new_err(format!("error: method: {e}")))?;
    o.activations = match activations {
        "u8" => DType::U8,
        "i8" | "s8" => DType::I8,
        a => return Err(OptionsError::new_err(format!("error: activations must be u8 or i8, found `{a}`"))),
    };
    o.symmetric_activations = symmetric;
    o.per_channel = !per_tensor;
    o.reduce_range = reduce_range;
    o.exclude = exclude;
    o.budget = budget;
    let random = match calibrate_random {
        None if calibration.is_none() && o.mode == Mode::Dynamic => Some(8),
        n => n,
    };
    let s = samples(&g, calibration, random)?;
    let q = py.detach(|| smelt_engine::quantize(&g, &s, &o, &mut |_, _, _| {})).map_err(raise)?;
    Ok(Transformed { report: q.report.to_json(), graph: q.graph })
}

/// Magnitude pruning (see `smelt prune --help`); `scope` is `layer` or `global`.
#[pyfunction]
#[pyo3(signature = (model, sparsity, pattern = "unstructured", scope = "layer", exclude = vec![], budget = None, inputs = None, random = None,
    backend = "cranelift", threads = 1))]
#[allow(clippy::too_many_arguments)]
pub fn prune(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    sparsity: f64,
    pattern: &str,
    scope: &str,
    exclude: Vec<String>,
    budget: Option<f64>,
    inputs: Option<Vec<Bound<'_, PyDict>>>,
    random: Option<usize>,
    backend: &str,
    threads: usize,
) -> PyResult<Transformed> {
    let source = source_of(model)?;
    let g = py.detach(|| smelt_engine::load(source)).map_err(raise)?;
    let mut o = PruneOptions::new(sparsity, options(backend, threads)?);
    o.pattern = pattern.parse().map_err(|e| OptionsError::new_err(format!("error: pattern: {e}")))?;
    o.global = match scope {
        "layer" => false,
        "global" => true,
        s => return Err(OptionsError::new_err(format!("error: scope must be layer or global, found `{s}`"))),
    };
    o.exclude = exclude;
    o.budget = budget;
    let random = random.or(if inputs.is_none() { Some(8) } else { None });
    let s = samples(&g, inputs, random)?;
    let p = py.detach(|| smelt_engine::prune(&g, &s, &o, &mut |_, _, _| {})).map_err(raise)?;
    Ok(Transformed { report: p.report.to_json(), graph: p.graph })
}

/// The model after the pass pipeline `-O{opt_level}` (as `smelt opt`).
#[pyfunction]
#[pyo3(signature = (model, opt_level = 2, backend = "cranelift"))]
pub fn optimize(py: Python<'_>, model: &Bound<'_, PyAny>, opt_level: u8, backend: &str) -> PyResult<Transformed> {
    let level = super::level(opt_level)?;
    let kind = options(backend, 1)?.backend;
    let source = source_of(model)?;
    let g = py
        .detach(|| {
            let mut g = smelt_engine::load(source)?;
            smelt_engine::optimize(&mut g, level, kind)?;
            Ok::<_, smelt_engine::Error>(g)
        })
        .map_err(raise)?;
    Ok(Transformed { graph: g, report: "{}".into() })
}
