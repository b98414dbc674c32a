//! The CLI's other commands from Python: `zoo` and `zoo_models` (`smelt zoo`,
//! `smelt zoo --list`), `import_onnx` (`smelt import`) and `bench` (`smelt
//! bench`), each through the engine function the CLI calls.

use super::{Error, ModelError, OptionsError, compile_options, raise, source_with_dims};
use crate::transform::Transformed;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use smelt_engine::Source;
use smelt_engine::bench::BenchOptions;
use std::path::PathBuf;

/// The zoo model `name` with `settings` (a dict of key → value over the
/// defaults; `zoo_models()` lists them) and seeded random weights.
#[pyfunction]
#[pyo3(signature = (name, settings = None, seed = 0))]
pub fn zoo(py: Python<'_>, name: &str, settings: Option<Bound<'_, PyDict>>, seed: u64) -> PyResult<Transformed> {
    let mut pairs = Vec::new();
    for (k, v) in settings.iter().flat_map(|d| d.iter()) {
        let key: String = k.extract().map_err(|_| OptionsError::new_err("error: zoo settings are keyed by name (strings)"))?;
        // Python's True/False as the zoo's true/false; numbers and strings as written.
        let value = if v.is_instance_of::<PyBool>() { v.extract::<bool>()?.to_string() } else { v.str()?.to_string() };
        pairs.push((key, value));
    }
    let name = name.to_string();
    let z = py.detach(|| smelt_engine::zoo::build(&name, &pairs, seed)).map_err(raise)?;
    let report = serde_json::json!({
        "model": name,
        "about": z.about,
        "seed": seed,
        "settings": z.settings.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
    });
    Ok(Transformed { graph: z.graph, report: report.to_string() })
}

/// Every zoo model: name → `{"about": …, "settings": {key: {"default": …, "help": …}}}`.
#[pyfunction]
pub fn zoo_models(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for m in smelt_frontends::zoo::models() {
        let keys = PyDict::new(py);
        for k in &m.keys {
            let d = PyDict::new(py);
            d.set_item("default", &k.value)?;
            d.set_item("help", k.help)?;
            keys.set_item(k.name, d)?;
        }
        let d = PyDict::new(py);
        d.set_item("about", m.about)?;
        d.set_item("settings", keys)?;
        out.set_item(m.name, d)?;
    }
    Ok(out)
}

/// An ONNX model imported as a smelt graph (`save` writes `.smelt` and
/// `.safetensors`, as `smelt import`), its symbolic dims fixed by `dims`,
/// the graph named `name`.
#[pyfunction]
#[pyo3(signature = (model, dims = None, name = None))]
pub fn import_onnx(py: Python<'_>, model: &Bound<'_, PyAny>, dims: Option<Vec<(String, u64)>>, name: Option<String>) -> PyResult<Transformed> {
    let (source, _) = source_with_dims(model, dims)?;
    match &source {
        Source::Path(p) if !smelt_engine::load::is_onnx(p) => {
            return Err(ModelError::new_err(format!("error: {}: import_onnx takes an .onnx file, ONNX bytes or an onnx.ModelProto", p.display())));
        }
        _ => {}
    }
    let mut g = py.detach(|| smelt_engine::load(source)).map_err(raise)?;
    if let Some(n) = name {
        if n.is_empty() || n.contains(['/', '\\']) {
            return Err(OptionsError::new_err(format!("error: `{n}` is not a model name")));
        }
        g.name = n;
    }
    g.doc = vec!["imported from ONNX by smelt.import_onnx".into()];
    Ok(Transformed { graph: g, report: "{}".into() })
}

/// Times `model` as `smelt bench` does; returns its report as a dict.
#[pyfunction]
#[pyo3(signature = (model, backend = "cranelift", opt_level = 2, threads = 1, runs = 10, warmup = 3, seed = 0, dims = None,
    schedule = None, tuning = None, profile = false))]
#[allow(clippy::too_many_arguments)]
pub fn bench<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    backend: &str,
    opt_level: u8,
    threads: usize,
    runs: usize,
    warmup: usize,
    seed: u64,
    dims: Option<Vec<(String, u64)>>,
    schedule: Option<&str>,
    tuning: Option<PathBuf>,
    profile: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let options = compile_options(py, backend, opt_level, threads, schedule, tuning.as_deref())?;
    let (source, dims) = source_with_dims(model, dims)?;
    let o = BenchOptions { runs, warmup, seed, dims, profile };
    o.check(options.backend).map_err(raise)?;
    let report = py
        .detach(|| {
            let model = smelt_engine::prepare(source, &options)?;
            smelt_engine::bench::bench(model, &o)
        })
        .map_err(raise)?;
    let text = report.json().to_string();
    py.import("json")?.call_method1("loads", (text,)).map_err(|e| Error::new_err(format!("error: the bench report: {e}")))
}
