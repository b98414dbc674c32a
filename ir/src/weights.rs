//! Weights in safetensors files: loading them into a graph's parameters (checked
//! against the declared types) and writing them back.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::tensor::{Data, Tensor};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn from_st(d: StDtype) -> Option<DType> {
    Some(match d {
        StDtype::F32 => DType::F32,
        StDtype::F16 => DType::F16,
        StDtype::BF16 => DType::BF16,
        StDtype::I8 => DType::I8,
        StDtype::U8 => DType::U8,
        StDtype::I32 => DType::I32,
        StDtype::I64 => DType::I64,
        StDtype::BOOL => DType::Bool,
        _ => return None,
    })
}

fn to_st(d: DType) -> StDtype {
    match d {
        DType::F32 => StDtype::F32,
        DType::F16 => StDtype::F16,
        DType::BF16 => StDtype::BF16,
        DType::I8 => StDtype::I8,
        DType::U8 => StDtype::U8,
        DType::I32 => StDtype::I32,
        DType::I64 => StDtype::I64,
        DType::Bool => StDtype::BOOL,
    }
}

/// Parses safetensors bytes into named tensors (`what` names the source in errors).
pub fn parse_safetensors(bytes: &[u8], what: &str) -> Result<BTreeMap<String, Tensor>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Weights(format!("{what}: not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dt = from_st(view.dtype())
            .ok_or_else(|| Error::Weights(format!("{what}: tensor `{name}` has unsupported dtype {:?}", view.dtype())))?;
        let data = Data::from_le_bytes(dt, view.data())
            .ok_or_else(|| Error::Weights(format!("{what}: tensor `{name}` has malformed {dt} data")))?;
        let t = Tensor::new(view.shape().to_vec(), data).map_err(|e| Error::Weights(format!("{what}: tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Reads a safetensors file.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
    parse_safetensors(&bytes, &path.display().to_string())
}

/// Serializes named tensors as safetensors bytes.
pub fn to_safetensors_bytes<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<Vec<u8>> {
    let bufs: Vec<(String, DType, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.dtype(), t.shape().to_vec(), t.data().to_le_bytes()))
        .collect();
    let mut views = Vec::new();
    for (n, d, s, b) in &bufs {
        let v = TensorView::new(to_st(*d), s.clone(), b).map_err(|e| Error::Weights(format!("tensor `{n}`: {e}")))?;
        views.push((n.clone(), v));
    }
    safetensors::serialize(views, None).map_err(|e| Error::Weights(e.to_string()))
}

/// Writes named tensors to a safetensors file atomically (a temporary file beside
/// the target, renamed into place), so a failure never leaves a partial file.
pub fn write_safetensors<'a>(path: &Path, tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<()> {
    let bytes = to_safetensors_bytes(tensors)?;
    write_atomic(path, &bytes)
}

/// Writes bytes to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e| Error::Io { path: path.display().to_string(), source: e };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// The weights file beside a model: same stem, `.safetensors`.
pub fn weights_path(model: &Path) -> PathBuf {
    model.with_extension("safetensors")
}

/// Writes `g` as `OUT.smelt` and its weights as `OUT.safetensors` beside it
/// (`out` is `OUT` or `OUT.smelt`), each file only once complete, the weights
/// first; returns both paths.
pub fn write_model(g: &Graph, out: &Path) -> Result<(PathBuf, PathBuf)> {
    let model = if out.extension().is_some_and(|e| e == "smelt") { out.to_path_buf() } else { out.with_extension("smelt") };
    let w = weights_path(&model);
    write_safetensors(&w, g.weights().iter().map(|(k, v)| (k.as_str(), &**v)))?;
    write_atomic(&model, crate::text::print(g).as_bytes())?;
    Ok((model, w))
}

/// Loads weights into `g`'s params: every param must be present with its declared
/// dtype and shape; tensors that name no param are an error too (a stale file).
pub fn load_weights(g: &mut Graph, tensors: BTreeMap<String, Tensor>, what: &str) -> Result<()> {
    let mut problems = Vec::new();
    let params = g.params();
    let mut tensors = tensors;
    for id in params {
        let n = g.node(id);
        let (name, ty) = (n.name().to_string(), n.types[0].clone());
        match tensors.remove(&name) {
            Some(t) if t.fits(&ty) => g.set_weight(name, t),
            Some(t) => problems.push(format!("weight `{name}` is {}{:?}, but the model declares {ty}", t.dtype(), t.shape())),
            None => problems.push(format!("no weight named `{name}` (the model declares {ty})")),
        }
    }
    for extra in tensors.keys() {
        problems.push(format!("tensor `{extra}` names no param of the model"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Weights(format!("{what}: {}", problems.join("; "))))
    }
}
