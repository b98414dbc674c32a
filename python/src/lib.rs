//! `smelt._smelt`: the Python extension module (PyO3) over smelt's engine API.
//! `smelt/__init__.py` is the public package around it: it documents the API,
//! accepts `onnx.ModelProto`s and PyTorch modules, and re-exports what is here.
//!
//! - `compile(model, backend, opt_level, threads)` → `Model`: the model is a
//!   path (`.onnx`, `.smelt`) or ONNX bytes; the compile runs with the GIL
//!   released.
//! - `Model.run(feeds)`: NumPy arrays in (copied into smelt's tensors, C order
//!   or not), NumPy arrays out (smelt's output buffers become the arrays, no
//!   copy); the GIL is released while the model runs, so a model can be used
//!   from several Python threads.
//! - `quantize`, `prune`, `optimize` (`transform.rs`): model-to-model steps.
//! - Errors are `smelt.Error` subclasses by the engine's `ErrorKind`, with the
//!   message the CLI prints.

use numpy::{PyArray1, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use smelt_engine::{BackendKind, CompiledModel, ErrorKind, OptLevel, Options, Source, Tensors};
use smelt_ir::{DType, Data, Dim, Tensor, TensorType};
use std::path::PathBuf;

mod tools;
mod transform;

create_exception!(_smelt, Error, PyException, "Every error smelt raises; the message is what the CLI prints.");
create_exception!(_smelt, ModelError, Error, "The model cannot be read, parsed, imported, verified or optimized.");
create_exception!(_smelt, UnsupportedError, Error, "A backend does not run an op (`not supported on <backend>: <op> at node <name>`).");
create_exception!(_smelt, OptionsError, Error, "Bad options (an unknown backend, a schedule the host cannot run), or a backend not built.");
create_exception!(_smelt, InputError, Error, "Inputs that do not match the model: names, dtypes, shapes.");
create_exception!(_smelt, RunError, Error, "A node failed at run time (an index out of range, a division by zero).");
create_exception!(_smelt, DeviceError, Error, "The GPU device could not be opened or failed.");

fn raise(e: smelt_engine::Error) -> PyErr {
    let msg = e.to_string();
    match e.kind() {
        ErrorKind::Model => ModelError::new_err(msg),
        ErrorKind::Unsupported { .. } => UnsupportedError::new_err(msg),
        ErrorKind::Options | ErrorKind::NotBuilt { .. } => OptionsError::new_err(msg),
        ErrorKind::Inputs => InputError::new_err(msg),
        ErrorKind::Run | ErrorKind::Memory => RunError::new_err(msg),
        ErrorKind::Device => DeviceError::new_err(msg),
        ErrorKind::Io | ErrorKind::Internal => Error::new_err(msg),
    }
}

/// NumPy's name for a smelt dtype.
fn numpy_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::I8 => "int8",
        DType::U8 => "uint8",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::Bool => "bool",
    }
}

/// `(name, dtype, shape)` with symbolic dims as their names.
fn describe<'py>(py: Python<'py>, name: &str, ty: &TensorType) -> PyResult<Bound<'py, PyAny>> {
    let shape = PyList::empty(py);
    for d in ty.dims() {
        match d {
            Dim::Fixed(n) => shape.append(*n)?,
            Dim::Sym(s) => shape.append(&**s)?,
        }
    }
    Ok((name, numpy_name(ty.dtype), shape).into_pyobject(py)?.into_any())
}

/// One NumPy array as a smelt tensor (a copy, in C order).
fn tensor(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        InputError::new_err(format!("error: input `{name}` must be a NumPy array, found {}", obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()))
    })?;
    let shape = arr.shape().to_vec();
    macro_rules! take {
        ($t:ty, $variant:ident) => {{
            let a: PyReadonlyArrayDyn<'_, $t> = obj.extract()?;
            // `as_slice` also takes Fortran order (memory order, not logical):
            // only a C-contiguous array is copied as one slice.
            let v: Vec<$t> = match a.as_slice() {
                Ok(s) if arr.is_c_contiguous() => s.to_vec(),
                _ => a.as_array().iter().copied().collect(),
            };
            Data::$variant(v)
        }};
    }
    let dt = arr.dtype();
    let py = obj.py();
    let data = if dt.is_equiv_to(&numpy::dtype::<f32>(py)) {
        take!(f32, F32)
    } else if dt.is_equiv_to(&numpy::dtype::<i64>(py)) {
        take!(i64, I64)
    } else if dt.is_equiv_to(&numpy::dtype::<i32>(py)) {
        take!(i32, I32)
    } else if dt.is_equiv_to(&numpy::dtype::<i8>(py)) {
        take!(i8, I8)
    } else if dt.is_equiv_to(&numpy::dtype::<u8>(py)) {
        take!(u8, U8)
    } else if dt.is_equiv_to(&numpy::dtype::<bool>(py)) {
        take!(bool, Bool)
    } else if dt.is_equiv_to(&numpy::dtype::<half::f16>(py)) {
        take!(half::f16, F16)
    } else if is_bfloat16(dt.as_any()) {
        take!(half::bf16, BF16)
    } else {
        let found = dt.str().map(|s| s.to_string()).unwrap_or_default();
        return Err(InputError::new_err(format!(
            "error: input `{name}` has NumPy dtype {found}, which smelt does not take (float32, float16, bfloat16 from ml_dtypes, int64, int32, int8, uint8, bool); convert it, e.g. x.astype(np.float32)"
        )));
    };
    Tensor::new(shape, data).map_err(|e| InputError::new_err(format!("error: input `{name}`: {e}")))
}

/// Whether a NumPy dtype is `bfloat16` (NumPy has none: ml_dtypes' is the one
/// JAX, TensorFlow and ONNX's reference use; rust-numpy maps `half::bf16` to it).
fn is_bfloat16(dt: &Bound<'_, PyAny>) -> bool {
    dt.getattr("name").and_then(|n| n.extract::<String>()).is_ok_and(|n| n == "bfloat16")
}

/// A smelt tensor as a NumPy array: its buffer becomes the array's.
fn array(py: Python<'_>, t: Tensor) -> PyResult<Bound<'_, PyAny>> {
    if t.dtype() == DType::BF16 && py.import("ml_dtypes").is_err() {
        // rust-numpy finds the bfloat16 dtype by name, which ml_dtypes registers.
        return Err(Error::new_err("error: a bfloat16 output needs the ml_dtypes package (`pip install ml_dtypes`), whose dtype NumPy arrays of bfloat16 use"));
    }
    let shape = t.shape().to_vec();
    macro_rules! give {
        ($v:expr) => {
            PyArray1::from_vec(py, $v).reshape(shape)?.into_any()
        };
    }
    Ok(match t.into_data() {
        Data::F32(v) => give!(v),
        Data::F16(v) => give!(v),
        Data::BF16(v) => give!(v),
        Data::I8(v) => give!(v),
        Data::U8(v) => give!(v),
        Data::I32(v) => give!(v),
        Data::I64(v) => give!(v),
        Data::Bool(v) => give!(v),
    })
}

/// A compiled model.
#[pyclass(frozen, module = "smelt._smelt")]
struct Model {
    inner: CompiledModel,
    backend: String,
}

#[pymethods]
impl Model {
    /// The inputs: `(name, dtype, shape)`, symbolic dims as their names.
    #[getter]
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner.inputs().iter().map(|d| describe(py, &d.name, &d.ty)).collect()
    }

    /// The outputs: `(name, dtype, shape)`.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner.outputs().iter().map(|d| describe(py, &d.name, &d.ty)).collect()
    }

    #[getter]
    fn backend(&self) -> &str {
        &self.backend
    }

    /// Runs on `feeds` — a dict of NumPy arrays by input name, or a list in
    /// the order of `inputs` — and returns a dict of NumPy arrays by output
    /// name (only `output_names`, in that order, when given).
    #[pyo3(signature = (feeds, output_names = None))]
    fn run<'py>(&self, py: Python<'py>, feeds: &Bound<'py, PyAny>, output_names: Option<Vec<String>>) -> PyResult<Bound<'py, PyDict>> {
        let names: Vec<String> = self.inner.inputs().into_iter().map(|d| d.name).collect();
        let inputs = feeds_of(&names, feeds)?;
        let mut out = py.detach(|| self.inner.run(&inputs)).map_err(raise)?;
        let d = PyDict::new(py);
        match output_names {
            Some(names) => {
                for n in names {
                    let t = out.remove(&n).ok_or_else(|| {
                        let have: Vec<String> = self.inner.outputs().into_iter().map(|o| o.name).collect();
                        InputError::new_err(format!("error: no output named `{n}` (outputs: {})", have.join(", ")))
                    })?;
                    d.set_item(n, array(py, t)?)?;
                }
            }
            None => {
                for (k, t) in out {
                    d.set_item(k, array(py, t)?)?;
                }
            }
        }
        Ok(d)
    }

    /// One run with every kernel call timed: `[(kernel, node, ms)]` in call
    /// order (compiled backends; the interpreter has no kernels).
    fn profile(&self, py: Python<'_>, feeds: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String, f64)>> {
        let names: Vec<String> = self.inner.inputs().into_iter().map(|d| d.name).collect();
        let inputs = feeds_of(&names, feeds)?;
        let p = py.detach(|| self.inner.profile(&inputs)).map_err(raise)?;
        Ok(p.kernels.into_iter().map(|k| (k.kernel, k.node, k.seconds * 1e3)).collect())
    }

    /// Writes the model as an ahead-of-time C library into `dir` (as `smelt
    /// compile --emit lib`): `lib<model>.so`, `lib<model>.a`, `<model>.h`,
    /// `<model>.weights` and their sources, built with the C compiler `cc`
    /// (default `$CC`, else `cc`). AOT code has fixed shapes: `dims` sizes the
    /// symbolic dims (the rest 1). Native backends only (cranelift, llvm).
    /// Returns the paths written.
    #[pyo3(signature = (dir, dims = None, cc = None))]
    fn save_library(&self, py: Python<'_>, dir: PathBuf, dims: Option<std::collections::BTreeMap<String, u64>>, cc: Option<String>) -> PyResult<Vec<String>> {
        let kind = self.inner.options().backend;
        if !matches!(kind, BackendKind::Cranelift | BackendKind::Llvm) {
            return Err(OptionsError::new_err(format!(
                "error: save_library writes native code: compile with backend=\"cranelift\" or \"llvm\", not {}",
                kind.name()
            )));
        }
        let model = self.inner.model();
        let dims: Vec<(String, u64)> = dims.unwrap_or_default().into_iter().collect();
        let bindings = model.bindings(&dims).map_err(raise)?;
        let cc = cc.or_else(|| std::env::var("CC").ok()).unwrap_or_else(|| "cc".into());
        py.detach(|| {
            let lib = match model.emit(smelt_engine::Emit::Lib, &bindings)? {
                smelt_engine::Emitted::Library(lib) => lib,
                _ => return Err(smelt_engine::Error::text(ErrorKind::Internal, "emitting a library gave no library")),
            };
            let n = lib.name.clone();
            smelt_engine::write_library(&lib, &dir, &cc)?;
            Ok::<_, smelt_engine::Error>(
                [format!("lib{n}.so"), format!("lib{n}.a"), format!("{n}.h"), format!("{n}.weights")]
                    .iter()
                    .map(|f| dir.join(f).display().to_string())
                    .collect(),
            )
        })
        .map_err(raise)
    }

    /// Milliseconds the optimization and the compilation took.
    fn timings(&self) -> (f64, f64) {
        let t = self.inner.timings();
        (t.optimize_ms, t.compile_ms)
    }

    fn __repr__(&self) -> String {
        format!("<smelt.Model on {}: {} inputs, {} outputs>", self.backend, self.inner.inputs().len(), self.inner.outputs().len())
    }
}

/// The model argument with `dims` (sizes of symbolic dims by name): an ONNX
/// path is imported with them fixed (as the CLI's `--dim`); for the other
/// sources they are returned, to bind at run or emission time. (`smelt/__init__.py`
/// writes ONNX bytes given with dims to a temporary file first.)
fn source_with_dims(model: &Bound<'_, PyAny>, dims: Option<Vec<(String, u64)>>) -> PyResult<(Source, Vec<(String, u64)>)> {
    let source = source_of(model)?;
    match (source, dims) {
        (Source::Path(path), Some(dims)) if smelt_engine::load::is_onnx(&path) && !dims.is_empty() => Ok((
            Source::PinnedOnnx { path, input_shapes: Default::default(), dims: dims.into_iter().collect(), values: Default::default() },
            vec![],
        )),
        (source, dims) => Ok((source, dims.unwrap_or_default())),
    }
}

/// The model argument: a path, or ONNX bytes.
fn source_of(model: &Bound<'_, PyAny>) -> PyResult<Source> {
    if let Ok(b) = model.cast::<PyBytes>() {
        Ok(Source::Onnx { bytes: b.as_bytes().to_vec(), name: "model".into() })
    } else if let Ok(p) = model.extract::<PathBuf>() {
        Ok(Source::Path(p))
    } else {
        Err(ModelError::new_err("error: a model is a path (.onnx, .smelt), ONNX bytes or an onnx.ModelProto"))
    }
}

fn level(opt_level: u8) -> PyResult<OptLevel> {
    Ok(match opt_level {
        0 => OptLevel::O0,
        1 => OptLevel::O1,
        2 => OptLevel::O2,
        3 => OptLevel::O3,
        n => return Err(OptionsError::new_err(format!("error: opt_level must be 0, 1, 2 or 3, found {n}"))),
    })
}

/// Feeds — a dict of arrays by name, or a list in the order of `names` — as tensors.
fn feeds_of(names: &[String], feeds: &Bound<'_, PyAny>) -> PyResult<Tensors> {
    let mut inputs = Tensors::new();
    if let Ok(d) = feeds.cast::<PyDict>() {
        for (k, v) in d.iter() {
            let name: String = k.extract().map_err(|_| InputError::new_err("error: input names must be strings"))?;
            let t = tensor(&name, &v)?;
            inputs.insert(name, t);
        }
    } else if let Ok(list) = feeds.extract::<Vec<Bound<'_, PyAny>>>() {
        if list.len() != names.len() {
            return Err(InputError::new_err(format!("error: the model takes {} inputs ({}), found {}", names.len(), names.join(", "), list.len())));
        }
        for (name, v) in names.iter().zip(list) {
            let t = tensor(name, &v)?;
            inputs.insert(name.clone(), t);
        }
    } else {
        return Err(InputError::new_err("error: feeds are a dict of NumPy arrays by input name, or a list in the order of Model.inputs"));
    }
    Ok(inputs)
}

/// Engine options for `backend` on `threads` threads (at `-O2`).
fn options(backend: &str, threads: usize) -> PyResult<Options> {
    let kind: BackendKind = backend.parse().map_err(|e: String| OptionsError::new_err(format!("error: {e}")))?;
    if threads == 0 {
        return Err(OptionsError::new_err("error: threads must be at least 1"));
    }
    Ok(Options { threads, ..Options::backend(kind) })
}

fn compile_source(py: Python<'_>, source: Source, backend: &str, opt_level: u8, threads: usize) -> PyResult<Model> {
    compile_with(py, source, compile_options(py, backend, opt_level, threads, None, None)?)
}

fn compile_with(py: Python<'_>, source: Source, options: Options) -> PyResult<Model> {
    let inner = py.detach(|| smelt_engine::compile(source, &options)).map_err(raise)?;
    Ok(Model { inner, backend: options.backend.to_string() })
}

/// The entry of the tuning file at `path` for this host, `backend` and
/// `threads` (a file that cannot be used is a `UserWarning`, as the CLI's
/// one-line warning; a missing one an error).
fn tuning_from(py: Python<'_>, path: &std::path::Path, backend: BackendKind, threads: usize) -> PyResult<Option<smelt_engine::Tuning>> {
    if !path.exists() {
        return Err(OptionsError::new_err(format!("error: tuning {}: no such file (`smelt tune MODEL --tuning FILE` writes one)", path.display())));
    }
    let (tuning, warnings) = smelt_engine::TuningDb::read_for_host(path, backend.name(), threads);
    for w in &warnings {
        PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyUserWarning>(), &std::ffi::CString::new(w.as_str()).unwrap_or_default(), 1)?;
    }
    Ok(tuning)
}

/// Engine options from the keyword arguments `compile` and `bench` share.
fn compile_options(py: Python<'_>, backend: &str, opt_level: u8, threads: usize, schedule: Option<&str>, tuning: Option<&std::path::Path>) -> PyResult<Options> {
    let mut options = Options { opt_level: level(opt_level)?, ..options(backend, threads)? };
    if let Some(s) = schedule {
        options.schedule = smelt_engine::ScheduleOptions::parse(s).map_err(|e| OptionsError::new_err(format!("error: {e}")))?;
    }
    if let Some(path) = tuning
        && matches!(options.backend, BackendKind::Cranelift | BackendKind::Llvm)
    {
        options.schedule.tuning = tuning_from(py, path, options.backend, threads)?.map(std::sync::Arc::new);
    }
    Ok(options)
}

/// Compiles `model` (a path, or ONNX bytes) for `backend` at `opt_level` with
/// `threads` threads, with `schedule` switches (`KEY=VALUE,...`), the
/// `tuning` file's entry for this machine, and an ONNX model's symbolic dims
/// fixed by `dims`.
#[pyfunction]
#[pyo3(signature = (model, backend = "cranelift", opt_level = 2, threads = 1, schedule = None, tuning = None, dims = None))]
#[allow(clippy::too_many_arguments)]
fn compile(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    backend: &str,
    opt_level: u8,
    threads: usize,
    schedule: Option<&str>,
    tuning: Option<PathBuf>,
    dims: Option<Vec<(String, u64)>>,
) -> PyResult<Model> {
    let options = compile_options(py, backend, opt_level, threads, schedule, tuning.as_deref())?;
    let (source, _) = source_with_dims(model, dims)?;
    compile_with(py, source, options)
}

#[pymodule]
fn _smelt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(transform::quantize, m)?)?;
    m.add_function(wrap_pyfunction!(transform::prune, m)?)?;
    m.add_function(wrap_pyfunction!(transform::optimize, m)?)?;
    m.add_function(wrap_pyfunction!(tools::zoo, m)?)?;
    m.add_function(wrap_pyfunction!(tools::zoo_models, m)?)?;
    m.add_function(wrap_pyfunction!(tools::import_onnx, m)?)?;
    m.add_function(wrap_pyfunction!(tools::bench, m)?)?;
    m.add_class::<Model>()?;
    m.add_class::<transform::Transformed>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("OptionsError", py.get_type::<OptionsError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    m.add("DeviceError", py.get_type::<DeviceError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
