//! The ONNX importer: `.onnx` files (protobuf, decoded with prost from the vendored
//! schema) into smelt IR graphs.
//!
//! - Initializers become params (weights; a scalar becomes an inline const), and
//!   constants are folded at import time where smelt needs them static: shape
//!   subgraphs (`Shape → Gather → Concat → Reshape`) fold to reshape targets, with
//!   symbolic dims kept as symbols ([`fold`]).
//! - Graph inputs keep their names; `dim_param`s become symbolic dims.
//! - One importer per ONNX op family under [`ops`]; ops without a smelt counterpart
//!   are lowered to several smelt ops where that is exact (ConvTranspose, RNN, the
//!   rarer activations and reductions, DynamicQuantizeLinear, …).
//! - An unsupported op is an error listing every unsupported node — never dropped.
//!
//! ```no_run
//! let g = smelt_frontends::onnx::load("model.onnx".as_ref()).unwrap();
//! println!("{}", smelt_ir::text::print(&g));
//! ```

mod control;
mod ctx;
pub mod error;
mod fold;
mod node;
pub mod ops;
pub mod proto;
pub mod tensor;

pub use error::{Error, NeedsConstant, Result, Unsupported};

use ctx::Ctx;
use node::NodeRef;
use prost::Message;
use smelt_ir::{Dim, Graph, Shape, Tensor, TensorType};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Name of the smelt graph (default: the ONNX graph's name, else `model`).
    pub name: Option<String>,
    /// Fixed shapes for inputs, by ONNX name: each must have the input's rank
    /// and agree with its fixed dims; its symbolic dims take these sizes.
    pub input_shapes: BTreeMap<String, Vec<usize>>,
    /// Sizes of symbolic input dims, by symbol (the model's `dim_param`, or
    /// `INPUT_dI` for an anonymous dim I of INPUT).
    pub dims: BTreeMap<String, u64>,
    /// Inputs whose values are fixed at import time (they stop being inputs), for
    /// models that feed shapes, axes or pads as inputs.
    pub frozen: BTreeMap<String, Tensor>,
    /// Folder of the model file, for external tensor data.
    pub base_dir: Option<PathBuf>,
}

/// An imported model: the graph and how ONNX names map to smelt names.
#[derive(Debug, Clone)]
pub struct Imported {
    pub graph: Graph,
    /// (ONNX name, smelt name) of each graph input, in order.
    pub inputs: Vec<(String, String)>,
    /// (ONNX name, smelt name) of each graph output, in order.
    pub outputs: Vec<(String, String)>,
    /// The default domain's opset version.
    pub opset: i64,
}

/// Decodes a `ModelProto`.
pub fn decode_model(bytes: &[u8]) -> Result<proto::ModelProto> {
    proto::ModelProto::decode(bytes).map_err(|e| Error::Decode { what: "model".into(), source: e })
}

/// Serializes a `ModelProto` (for tools and tests that build models in Rust).
pub fn encode_model(m: &proto::ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

/// Decodes a serialized `TensorProto` (a test-data `.pb` file) into a tensor.
pub fn decode_tensor(bytes: &[u8]) -> Result<(String, Tensor)> {
    let t = proto::TensorProto::decode(bytes).map_err(|e| Error::Decode { what: "tensor".into(), source: e })?;
    Ok((t.name().to_string(), tensor::from_proto(&t, None)?))
}

/// Reads and imports an `.onnx` file (its folder holds any external data).
pub fn import_file(path: &Path, opts: &Options) -> Result<Imported> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
    // Decoded from the buffer itself, the tensors' raw data are slices of it.
    let bytes = prost::bytes::Bytes::from(bytes);
    let mut o = opts.clone();
    if o.base_dir.is_none() {
        o.base_dir = Some(path.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    if o.name.is_none() {
        o.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    let m = proto::ModelProto::decode(bytes).map_err(|e| Error::Decode { what: "model".into(), source: e })?;
    import_model(&m, &o)
}

/// Imports an `.onnx` file with default options; returns the graph with its weights.
pub fn load(path: &Path) -> Result<Graph> {
    import_file(path, &Options::default()).map(|m| m.graph)
}

/// Imports a serialized model.
pub fn import(bytes: &[u8], opts: &Options) -> Result<Imported> {
    import_model(&decode_model(bytes)?, opts)
}

/// The default domain's opset version of a model.
pub fn opset_of(m: &proto::ModelProto) -> Result<i64> {
    let mut v = None;
    for o in &m.opset_import {
        if matches!(o.domain(), "" | "ai.onnx") {
            v = Some(o.version());
        }
    }
    match v {
        Some(v) if v >= 1 => Ok(v),
        Some(v) => Err(Error::Opset(format!("default-domain opset {v}"))),
        None if m.opset_import.is_empty() => Err(Error::Opset("the model imports no opset".into())),
        None => Ok(1),
    }
}

/// Imports a decoded model.
pub fn import_model(m: &proto::ModelProto, opts: &Options) -> Result<Imported> {
    let opset = opset_of(m)?;
    let gp = m.graph.as_ref().ok_or(Error::NoGraph)?;
    let nodes: Vec<NodeRef> = gp.node.iter().map(NodeRef::new).collect();

    // Every unsupported op, at once, before anything else.
    let unsupported: Vec<Unsupported> = nodes
        .iter()
        .filter(|n| ops::lookup(n.p.domain(), n.op_type()).is_none())
        .map(|n| Unsupported {
            op_type: match n.p.domain() {
                "" | "ai.onnx" => n.op_type().to_string(),
                d => format!("{d}:{}", n.op_type()),
            },
            node: n.name.to_string(),
            reason: None,
        })
        .collect();
    if !unsupported.is_empty() {
        return Err(Error::Unsupported(unsupported));
    }

    let name = opts.name.clone().or_else(|| Some(gp.name().to_string()).filter(|s| !s.is_empty()));
    let mut cx = Ctx::new(name.as_deref().unwrap_or("model"), opset);
    for n in &nodes {
        for i in n.p.input.iter().filter(|s| !s.is_empty()) {
            cx.consumers.entry(i.clone()).or_default().push(n.op_type().to_string());
        }
    }
    let mut problems = Vec::new();
    for init in &gp.initializer {
        match tensor::from_proto(init, opts.base_dir.as_deref()) {
            Ok(t) => cx.add_initializer(init.name(), t),
            Err(e) => problems.push(dtype_problem(e, "initializer", init.name())),
        }
    }
    if !gp.sparse_initializer.is_empty() {
        problems.push(Error::Unsupported(vec![Unsupported {
            op_type: "sparse initializer".into(),
            node: gp.sparse_initializer.len().to_string(),
            reason: None,
        }]));
    }
    let mut inputs = Vec::new();
    // Each symbol's size and where it came from: `dims`, then the shapes given.
    let mut sizes: BTreeMap<String, (u64, String)> =
        opts.dims.iter().map(|(k, &v)| (k.clone(), (v, "the dims given".to_string()))).collect();
    let declared = input_symbols(&gp.input);
    for (sym, n) in &opts.dims {
        if !declared.contains(sym) {
            let known: Vec<&str> = declared.iter().map(String::as_str).collect();
            problems.push(Error::Model(format!(
                "the dim {sym} = {n} is given, but no input of the model has a dim `{sym}` (symbols: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        }
    }
    // The shapes given fix their symbols for every input (errors are reported below).
    for vi in &gp.input {
        if let Some(f) = opts.input_shapes.get(vi.name()) {
            let _ = input_type(vi, Some(f), &mut sizes);
        }
    }
    for vi in &gp.input {
        let onnx = vi.name();
        if let Some(t) = opts.frozen.get(onnx) {
            cx.add_initializer(onnx, t.clone());
            continue;
        }
        if cx.is_defined(onnx) {
            continue; // an initializer listed as an input (IR < 4): a constant
        }
        match input_type(vi, opts.input_shapes.get(onnx), &mut sizes) {
            Ok(ty) => {
                let v = cx.add_input(onnx, ty);
                inputs.push((onnx.to_string(), cx.g.value_name(v).to_string()));
            }
            Err(msg) if opts.input_shapes.contains_key(onnx) => problems.push(Error::Model(format!("input `{onnx}`: {msg}"))),
            Err(msg) => problems.push(Error::Unsupported(vec![Unsupported {
                op_type: "graph input".into(),
                node: onnx.to_string(),
                reason: Some(msg),
            }])),
        }
    }

    let mut poisoned: HashSet<String> = HashSet::new();
    for n in &nodes {
        let ins: Vec<&str> = (0..n.num_inputs()).filter_map(|i| n.input_name(i)).collect();
        if ins.iter().any(|i| poisoned.contains(*i)) {
            poisoned.extend(n.p.output.iter().cloned());
            continue;
        }
        if let Some(bad) = ins.iter().find(|i| !cx.is_defined(i)) {
            problems.push(n.err(format!("input `{bad}` is not defined before the node")));
            poisoned.extend(n.p.output.iter().cloned());
            continue;
        }
        cx.begin(n);
        if let Err(e) = import_node(&mut cx, n) {
            problems.push(e);
            poisoned.extend(n.p.output.iter().cloned());
        }
    }
    if !problems.is_empty() {
        return Err(Error::merge(problems));
    }

    // Outputs: each a value of its own, named as in ONNX.
    let mut outs = Vec::new();
    let mut outputs = Vec::new();
    let mut used = HashSet::new();
    for vi in &gp.output {
        let onnx = vi.name();
        cx.begin(&NodeRef { p: &proto::NodeProto::default(), name: onnx });
        let mut v = cx.value_of(onnx)?;
        let own =
            cx.renamed.get(&v).is_some_and(|o| o == onnx) || (!cx.renamed.contains_key(&v) && is_computed(&cx, v));
        if !own || !used.insert(v) {
            v = cx.copy(v)?;
            used.insert(v);
        }
        cx.rename(v, onnx);
        outs.push(v);
        outputs.push((onnx.to_string(), cx.g.value_name(v).to_string()));
    }
    let mut g = cx.g;
    g.set_outputs(outs);
    smelt_ir::verify(&g, smelt_ir::Weights::Required)?;
    Ok(Imported { graph: g, inputs, outputs, opset })
}

/// A computed value (not an input, param or const).
fn is_computed(cx: &Ctx, v: smelt_ir::Value) -> bool {
    !cx.g.node(v.node).op.is_source()
}

/// A dtype problem of an initializer or input counts as unsupported.
fn dtype_problem(e: Error, what: &str, name: &str) -> Error {
    match e {
        Error::Tensor { message, .. } if message.starts_with("smelt has no") || message.contains("not supported") => {
            Error::Unsupported(vec![Unsupported { op_type: what.into(), node: name.into(), reason: Some(message) }])
        }
        e => e,
    }
}

/// The symbols of the graph inputs' dims (anonymous dims as `INPUT_dI`).
fn input_symbols(inputs: &[proto::ValueInfoProto]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for vi in inputs {
        let Ok((_, Some(dims))) = tensor::value_type(vi.r#type.as_ref()) else { continue };
        for (i, d) in dims.into_iter().enumerate() {
            match d {
                Ok(_) => {}
                Err(Some(p)) => {
                    out.insert(p);
                }
                Err(None) => {
                    out.insert(format!("{}_d{i}", vi.name()));
                }
            }
        }
    }
    out
}

/// The smelt type of a graph input: its symbolic dims (named by the model, or
/// fresh ones for anonymous dims) fixed by `fixed` (the whole shape) or `dims`
/// (by symbol).
fn input_type(
    vi: &proto::ValueInfoProto,
    fixed: Option<&Vec<usize>>,
    sizes: &mut BTreeMap<String, (u64, String)>,
) -> std::result::Result<TensorType, String> {
    let (code, dims) = tensor::value_type(vi.r#type.as_ref())?;
    let dt = tensor::dtype(code)?;
    let max = smelt_ir::shape::MAX_DIM;
    let declared_sizes = dims.iter().flatten().filter_map(|d| d.as_ref().ok().copied());
    if let Some(n) = declared_sizes.chain(fixed.into_iter().flatten().map(|&n| n as u64)).find(|&n| n > max) {
        return Err(format!("dim {n} is larger than smelt's limit of {max}"));
    }
    let Some(dims) = dims else {
        return match fixed {
            Some(f) => Ok(TensorType::new(dt, Shape::new(f.iter().copied()))),
            None => Err("the input has no shape; give it one when importing".into()),
        };
    };
    let declared: Vec<Dim> = dims
        .into_iter()
        .enumerate()
        .map(|(i, d)| match d {
            Ok(n) => Dim::Fixed(n),
            // Symbols keep the model's names; an anonymous dim (`?`, `-1`, an
            // empty `dim_param`) gets a fresh one of its own.
            Err(Some(p)) => Dim::sym(&p),
            Err(None) => Dim::sym(&format!("{}_d{i}", vi.name())),
        })
        .collect();
    let shown = || {
        let d: Vec<String> = declared.iter().map(|d| d.to_string()).collect();
        format!("[{}]", d.join(", "))
    };
    if let Some(f) = fixed {
        if f.len() != declared.len() {
            return Err(format!("given the shape {f:?}, but the model declares {} (rank {})", shown(), declared.len()));
        }
        for (i, (d, &n)) in declared.iter().zip(f).enumerate() {
            match d {
                Dim::Fixed(m) if *m as usize != n => {
                    return Err(format!("given the shape {f:?}, but the model declares {} (dim {i} is {m})", shown()));
                }
                Dim::Sym(sym) => match sizes.get(&**sym) {
                    Some((m, from)) if *m as usize != n => {
                        return Err(format!(
                            "given the shape {f:?}, which makes {sym} = {n} in the model's {}, but {from} make {sym} = {m}",
                            shown()
                        ));
                    }
                    Some(_) => {}
                    None => {
                        sizes.insert(sym.to_string(), (n as u64, format!("the shape of input `{}`", vi.name())));
                    }
                },
                Dim::Fixed(_) => {}
            }
        }
        return Ok(TensorType::new(dt, Shape::new(f.iter().copied())));
    }
    let out: Vec<Dim> = declared
        .into_iter()
        .map(|d| match &d {
            Dim::Sym(s) => sizes.get(&**s).map_or(d.clone(), |&(n, _)| Dim::Fixed(n)),
            Dim::Fixed(_) => d,
        })
        .collect();
    Ok(TensorType::new(dt, Shape(out)))
}

/// Imports one node: folds it when its inputs are known, else runs its importer.
fn import_node(cx: &mut Ctx, n: &NodeRef) -> Result<()> {
    // What each output is computed from (for the graph inputs to freeze when a
    // later node needs it known).
    cx.record_deps(n, &[]);
    if matches!(n.p.domain(), "" | "ai.onnx") {
        match n.op_type() {
            "If" => return control::import_if(cx, n),
            "Loop" => return control::import_loop(cx, n),
            "Scan" => return control::import_scan(cx, n),
            _ => {}
        }
    }
    if let Some(ks) = fold::fold(cx, n)? {
        for (k, o) in ks.into_iter().zip(&n.p.output) {
            if !o.is_empty() {
                cx.set_known(o, k);
            }
        }
        return Ok(());
    }
    let f = ops::lookup(n.p.domain(), n.op_type()).ok_or_else(|| n.unsupported("no importer"))?;
    let outs = f(cx, n)?;
    for (i, o) in n.p.output.iter().enumerate() {
        if o.is_empty() {
            continue;
        }
        let v = *outs.get(i).ok_or_else(|| n.unsupported(format!("output {i} is not supported")))?;
        cx.rename(v, o);
        cx.set_value(o, v);
    }
    Ok(())
}
