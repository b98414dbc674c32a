//! The importer's state while it walks an ONNX graph: the smelt graph being built,
//! the smelt value (or the constant known at import time) behind every ONNX name,
//! name sanitizing, and helpers that add nodes and report failures against the
//! ONNX node being imported.

use super::error::{Error, NeedsConstant, Result};
use super::node::NodeRef;
use smelt_ir::attr::DimSpec;
use smelt_ir::{DType, Dim, Graph, NodeId, Op, Tensor, TensorType, UnaryOp, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A value known while importing: a tensor, or a 1-d (or scalar) i64 shape vector
/// some of whose entries are symbolic dims (from `Shape` of a value with symbols).
#[derive(Debug, Clone)]
pub enum Known {
    T(Tensor),
    Dims { dims: Vec<DimSpec>, scalar: bool },
}

impl Known {
    /// As a tensor, when every entry is known.
    pub fn tensor(&self) -> Option<Tensor> {
        match self {
            Known::T(t) => Some(t.clone()),
            Known::Dims { dims, scalar } => {
                let v: Option<Vec<i64>> =
                    dims.iter().map(|d| if let DimSpec::Int(i) = d { Some(*i) } else { None }).collect();
                let v = v?;
                let shape = if *scalar { vec![] } else { vec![v.len()] };
                Tensor::i64(shape, v).ok()
            }
        }
    }

    /// As a list of dims (ints or symbols), for 0-d/1-d integer values.
    pub fn dims(&self) -> Option<Vec<DimSpec>> {
        match self {
            Known::T(t) if t.rank() <= 1 && t.dtype().is_int() => {
                Some(t.to_i64().into_iter().map(DimSpec::Int).collect())
            }
            Known::T(_) => None,
            Known::Dims { dims, .. } => Some(dims.clone()),
        }
    }

    /// Builds a known value from dims: a tensor when all are ints.
    pub fn from_dims(dims: Vec<DimSpec>, scalar: bool) -> Known {
        let k = Known::Dims { dims, scalar };
        match k.tensor() {
            Some(t) => Known::T(t),
            None => k,
        }
    }
}

/// Names that the text format reserves.
const RESERVED: &[&str] = &[
    "graph", "param", "const", "quant", "inf", "nan", "true", "false", "f32", "f16", "bf16", "i8", "u8", "i32", "i64",
    "bool",
];

/// An identifier for an ONNX graph name (the graph's name becomes C symbols and
/// file names): `[A-Za-z_][A-Za-z0-9_.]*`, not reserved. Value names and
/// symbols are kept as the model spells them (the text format quotes them).
pub fn sanitize(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert_str(0, "v_");
    }
    if RESERVED.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// The ONNX node being imported.
#[derive(Debug, Default)]
struct Current {
    node: String,
    op_type: String,
    /// Base for the names of the nodes it creates.
    base: String,
    created: Vec<NodeId>,
}

/// Importer state.
#[derive(Debug)]
pub struct Ctx {
    pub g: Graph,
    /// The default domain's opset version.
    pub opset: i64,
    taken: HashSet<String>,
    vals: HashMap<String, Value>,
    known: HashMap<String, Known>,
    initializers: HashSet<String>,
    /// ONNX graph inputs (not frozen, not initializers) by name.
    pub graph_inputs: HashMap<String, Value>,
    /// Op types of the nodes reading each ONNX value (for look-ahead).
    pub consumers: HashMap<String, Vec<String>>,
    /// The ONNX name each created value was renamed to.
    pub renamed: HashMap<Value, String>,
    cur: Current,
    counter: usize,
    /// Nodes imported from loop bodies so far (see `control.rs`).
    pub unrolled: usize,
    /// The graph inputs each computed ONNX value depends on (see
    /// [`Ctx::need_known`]).
    from_inputs: HashMap<String, std::collections::BTreeSet<String>>,
}

impl Ctx {
    pub fn new(name: &str, opset: i64) -> Ctx {
        Ctx {
            g: Graph::new(sanitize(name)),
            opset,
            taken: HashSet::new(),
            vals: HashMap::new(),
            known: HashMap::new(),
            initializers: HashSet::new(),
            graph_inputs: HashMap::new(),
            consumers: HashMap::new(),
            renamed: HashMap::new(),
            cur: Current::default(),
            counter: 0,
            unrolled: 0,
            from_inputs: HashMap::new(),
        }
    }

    /// The count symbol of a data-dependent op imported for `n` (`nonzero`,
    /// `nms`, `unique`): `<node>_count`, unique, a plain identifier.
    pub fn count_symbol(&mut self, n: &NodeRef) -> DimSpec {
        let base = sanitize(n.name).replace('.', "_");
        DimSpec::Sym(self.claim(&format!("{base}_count")))
    }

    /// A unique smelt name for `s`: `s` itself unless it is taken (or empty).
    pub fn claim(&mut self, s: &str) -> String {
        let base = if s.is_empty() { "v".to_string() } else { s.to_string() };
        let mut name = base.clone();
        let mut k = 1;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    // ---- the ONNX name → value map ----

    pub fn add_input(&mut self, onnx: &str, ty: TensorType) -> Value {
        let name = self.claim(onnx);
        let v = self.g.add_input(name, ty);
        self.vals.insert(onnx.to_string(), v);
        self.graph_inputs.insert(onnx.to_string(), v);
        v
    }

    pub fn add_initializer(&mut self, onnx: &str, t: Tensor) {
        self.initializers.insert(onnx.to_string());
        self.known.insert(onnx.to_string(), Known::T(t));
    }

    pub fn set_known(&mut self, onnx: &str, k: Known) {
        self.vals.remove(onnx);
        self.known.insert(onnx.to_string(), k);
    }

    pub fn set_value(&mut self, onnx: &str, v: Value) {
        self.known.remove(onnx);
        self.vals.insert(onnx.to_string(), v);
    }

    pub fn is_defined(&self, onnx: &str) -> bool {
        self.vals.contains_key(onnx) || self.known.contains_key(onnx)
    }

    pub fn known(&self, onnx: &str) -> Option<&Known> {
        self.known.get(onnx)
    }

    /// The smelt value of an ONNX name when it already has one.
    pub fn value_peek(&self, onnx: &str) -> Option<Value> {
        self.vals.get(onnx).copied()
    }

    /// The smelt value of an ONNX name, making a param or const of a known value.
    pub fn value_of(&mut self, onnx: &str) -> Result<Value> {
        if let Some(v) = self.vals.get(onnx) {
            return Ok(*v);
        }
        let Some(k) = self.known.get(onnx) else {
            return Err(Error::Model(format!("value `{onnx}` is used before it is defined")));
        };
        let Some(t) = k.tensor() else {
            return Err(Error::Unsupported(vec![super::error::Unsupported {
                op_type: self.cur.op_type.clone(),
                node: self.cur.node.clone(),
                reason: Some(format!(
                    "`{onnx}` is a shape with symbolic dims, used as data; fix the dims when importing"
                )),
            }]));
        };
        let as_param = (self.initializers.contains(onnx) && t.numel() > 1) || t.numel() > 64;
        let name = self.claim(onnx);
        let v = if as_param {
            let v = self.g.add_param(name.clone(), t.tensor_type());
            self.g.set_weight(name, t);
            v
        } else {
            self.g.add_const(name, t)
        };
        self.vals.insert(onnx.to_string(), v);
        Ok(v)
    }

    /// The value of input `i` of `n` (which must be present).
    pub fn input(&mut self, n: &NodeRef, i: usize) -> Result<Value> {
        let name = n.input_name(i).ok_or_else(|| n.err(format!("input {i} is missing")))?;
        self.value_of(name)
    }

    /// The value of optional input `i`.
    pub fn opt_input(&mut self, n: &NodeRef, i: usize) -> Result<Option<Value>> {
        if n.has_input(i) { self.input(n, i).map(Some) } else { Ok(None) }
    }

    /// The graph inputs (not frozen) that the ONNX value `onnx` is computed from.
    pub fn input_deps(&self, onnx: &str) -> std::collections::BTreeSet<String> {
        if self.graph_inputs.contains_key(onnx) {
            return [onnx.to_string()].into();
        }
        self.from_inputs.get(onnx).cloned().unwrap_or_default()
    }

    /// Records that the outputs of `n` are computed from the graph inputs its
    /// inputs are (`extra`: more names it reads, such as a body's outer values).
    pub fn record_deps(&mut self, n: &NodeRef, extra: &[&str]) {
        let mut deps = std::collections::BTreeSet::new();
        for i in (0..n.num_inputs()).filter_map(|i| n.input_name(i)).chain(extra.iter().copied()) {
            deps.extend(self.input_deps(i));
        }
        if deps.is_empty() {
            return;
        }
        for o in n.p.output.iter().filter(|o| !o.is_empty()) {
            self.from_inputs.insert(o.clone(), deps.clone());
        }
    }

    /// The known value of input `i`, or an error saying it must be known, naming
    /// the graph inputs to freeze when it is one or is computed from some.
    pub fn need_known(&self, n: &NodeRef, i: usize, what: &str) -> Result<Known> {
        let name = n.input_name(i).ok_or_else(|| n.err(format!("input {i} ({what}) is missing")))?;
        if let Some(k) = self.known.get(name) {
            return Ok(k.clone());
        }
        let deps = self.input_deps(name);
        if !deps.is_empty() {
            return Err(Error::NeedsConstant(
                deps.into_iter()
                    .map(|input| NeedsConstant {
                        input,
                        node: n.name.to_string(),
                        op_type: n.op_type().to_string(),
                        what: what.to_string(),
                    })
                    .collect(),
            ));
        }
        Err(n.unsupported(format!("the {what} (input {i}, `{name}`) must be a constant")))
    }

    /// The known tensor of input `i` (see [`Ctx::need_known`]).
    pub fn need_tensor(&self, n: &NodeRef, i: usize, what: &str) -> Result<Tensor> {
        self.need_known(n, i, what)?
            .tensor()
            .ok_or_else(|| n.unsupported(format!("the {what} depends on symbolic dims; fix them when importing")))
    }

    /// The known ints of input `i`.
    pub fn need_ints(&self, n: &NodeRef, i: usize, what: &str) -> Result<Vec<i64>> {
        let t = self.need_tensor(n, i, what)?;
        if !t.dtype().is_int() {
            return Err(n.err(format!("the {what} must be integers, found {}", t.dtype())));
        }
        Ok(t.to_i64())
    }

    /// The known floats of input `i`.
    pub fn need_floats(&self, n: &NodeRef, i: usize, what: &str) -> Result<Vec<f32>> {
        Ok(self.need_tensor(n, i, what)?.to_f32())
    }

    // ---- building nodes ----

    /// Starts importing node `n`.
    pub fn begin(&mut self, n: &NodeRef) {
        let base = n.p.output.iter().find(|o| !o.is_empty()).map(String::as_str).unwrap_or(n.name);
        self.cur = Current {
            node: n.name.to_string(),
            op_type: n.op_type().to_string(),
            base: base.to_string(),
            created: vec![],
        };
    }

    /// Whether `v` was made by the node being imported.
    pub fn is_new(&self, v: Value) -> bool {
        self.cur.created.contains(&v.node)
    }

    fn temp_names(&mut self, k: usize) -> Vec<String> {
        (0..k)
            .map(|_| {
                self.counter += 1;
                let n = format!("{}.{}", self.cur.base, self.counter);
                self.claim(&n)
            })
            .collect()
    }

    fn fail(&self, message: String) -> Error {
        Error::Node { node: self.cur.node.clone(), op_type: self.cur.op_type.clone(), message }
    }

    /// Adds an op; returns its outputs.
    pub fn op_multi(&mut self, op: Op, ins: &[Value]) -> Result<Vec<Value>> {
        let k = op.num_outputs();
        let names = self.temp_names(k);
        let id = self.g.add_node(op, ins, names);
        self.cur.created.push(id);
        if let Err(d) = self.g.infer_node(id) {
            let opn = self.g.node(id).op.name();
            return Err(self.fail(format!("smelt {opn}: {}", d.message)));
        }
        Ok((0..k).map(|output| Value { node: id, output }).collect())
    }

    /// Adds a one-output op.
    pub fn op(&mut self, op: Op, ins: &[Value]) -> Result<Value> {
        Ok(self.op_multi(op, ins)?[0])
    }

    /// An inline constant.
    pub fn konst(&mut self, t: Tensor) -> Value {
        let name = self.temp_names(1).remove(0);
        let v = self.g.add_const(name, t);
        self.cur.created.push(v.node);
        v
    }

    /// A scalar constant of dtype `d`.
    pub fn scalar(&mut self, x: f64, d: DType) -> Value {
        let data = if d.is_float() {
            smelt_ir::Data::from_f32(d, &[x as f32])
        } else {
            smelt_ir::Data::from_i64(d, &[x as i64])
        };
        self.konst(Tensor::new(vec![], data).expect("one element"))
    }

    /// Renames a value this node made to the ONNX name it defines.
    pub fn rename(&mut self, v: Value, onnx: &str) {
        if !self.is_new(v) || self.renamed.contains_key(&v) {
            return;
        }
        let name = self.claim(onnx);
        self.g.node_mut(v.node).names[v.output] = name;
        self.renamed.insert(v, onnx.to_string());
    }

    // ---- types ----

    pub fn ty(&self, v: Value) -> TensorType {
        self.g.value_type(v).cloned().expect("values made by the importer are typed")
    }

    pub fn dims(&self, v: Value) -> Vec<Dim> {
        self.ty(v).shape.0
    }

    pub fn rank(&self, v: Value) -> usize {
        self.ty(v).rank()
    }

    /// Fixed dims of `v`, or an "unsupported" error naming `why`.
    pub fn fixed_dims(&self, n: &NodeRef, v: Value, why: &str) -> Result<Vec<usize>> {
        let t = self.ty(v);
        t.shape.fixed().ok_or_else(|| n.unsupported(format!("{why} needs fixed dims, found {t}")))
    }

    // ---- common lowerings ----

    pub fn unary(&mut self, u: UnaryOp, x: Value) -> Result<Value> {
        self.op(Op::Unary(u), &[x])
    }

    pub fn binary(&mut self, b: smelt_ir::BinaryOp, x: Value, y: Value) -> Result<Value> {
        self.op(Op::Binary(b), &[x, y])
    }

    pub fn cast(&mut self, x: Value, to: DType) -> Result<Value> {
        if self.ty(x).dtype == to && self.ty(x).quant.is_none() {
            return Ok(x);
        }
        self.op(Op::Cast { to }, &[x])
    }

    /// Reshape to explicit dims (fixed or symbolic). A symbol is written as `0`
    /// (copy) where the input has it at the same position, else as the one `-1`: a
    /// reshape target names no symbol, so that binding the inputs' sizes later needs
    /// no rewriting of attributes.
    pub fn reshape(&mut self, x: Value, dims: &[Dim]) -> Result<Value> {
        let input = self.dims(x);
        if input == dims {
            return Ok(x);
        }
        self.check_dims(dims)?;
        // A 0 in the target would mean "copy"; an empty result is a constant.
        if dims.contains(&Dim::Fixed(0)) {
            let shape = dims.iter().map(|d| d.fixed().unwrap_or(0) as usize).collect();
            let t =
                Tensor::new(shape, smelt_ir::Data::zeros(self.ty(x).dtype, 0)).map_err(|e| self.fail(e.to_string()))?;
            return Ok(self.konst(t));
        }
        let mut spec = Vec::with_capacity(dims.len());
        let mut inferred = false;
        for (i, d) in dims.iter().enumerate() {
            spec.push(match d {
                Dim::Fixed(n) => DimSpec::Int(*n as i64),
                s if input.get(i) == Some(s) => DimSpec::Int(0),
                _ if !inferred => {
                    inferred = true;
                    DimSpec::Int(-1)
                }
                _ => {
                    return Err(Error::Unsupported(vec![super::error::Unsupported {
                        op_type: self.cur.op_type.clone(),
                        node: self.cur.node.clone(),
                        reason: Some(format!(
                            "a reshape of {} to {} moves symbolic dims; fix them when importing",
                            self.ty(x),
                            smelt_ir::Shape(dims.to_vec())
                        )),
                    }]));
                }
            });
        }
        let y = self.op(Op::Reshape { shape: spec }, &[x])?;
        if self.dims(y) != dims {
            return Err(self.fail(format!(
                "reshape of {} gave {}, expected {}",
                self.ty(x),
                self.ty(y),
                smelt_ir::Shape(dims.to_vec())
            )));
        }
        Ok(y)
    }

    /// Reshape to fixed sizes (see [`Ctx::reshape`]).
    pub fn reshape_fixed(&mut self, x: Value, dims: &[usize]) -> Result<Value> {
        self.reshape(x, &smelt_ir::Shape::from(dims).0)
    }

    /// Broadcast to `shape` (ONNX Expand). A symbol in the target must stand over the
    /// same symbol of the input, and is written as 1 (see [`Ctx::reshape`]).
    pub fn expand(&mut self, x: Value, shape: &[DimSpec]) -> Result<Value> {
        if let Some(k) = shape.iter().find_map(|d| match d {
            DimSpec::Int(k) if *k > smelt_ir::shape::MAX_DIM as i64 => Some(*k),
            _ => None,
        }) {
            return Err(self.fail(format!("an expand to size {k} (at most 2^48)")));
        }
        let input = self.dims(x);
        let off = shape.len() as i64 - input.len() as i64;
        let mut spec = Vec::with_capacity(shape.len());
        for (i, d) in shape.iter().enumerate() {
            spec.push(match d {
                DimSpec::Sym(s) => {
                    let j = i as i64 - off;
                    if j >= 0 && input.get(j as usize) == Some(&Dim::sym(s)) {
                        DimSpec::Int(1)
                    } else {
                        return Err(Error::Unsupported(vec![super::error::Unsupported {
                            op_type: self.cur.op_type.clone(),
                            node: self.cur.node.clone(),
                            reason: Some(format!(
                                "an expand of {} to symbolic dim {s}; fix it when importing",
                                self.ty(x)
                            )),
                        }]));
                    }
                }
                d => d.clone(),
            });
        }
        self.op(Op::Expand { shape: spec }, &[x])
    }

    /// A copy of `x` as a new value (for graph outputs that alias another value).
    pub fn copy(&mut self, x: Value) -> Result<Value> {
        let t = self.ty(x);
        if t.quant.is_none() && UnaryOp::Identity.accepts(t.dtype) {
            return self.unary(UnaryOp::Identity, x);
        }
        let spec = t.dims().iter().map(|d| match d {
            Dim::Fixed(n) => DimSpec::Int(*n as i64),
            Dim::Sym(_) => DimSpec::Int(0),
        });
        self.op(Op::Reshape { shape: spec.collect() }, &[x])
    }

    /// The constant `t` broadcast to fixed `dims` (an `expand` of a scalar when large).
    pub fn filled(&mut self, value: &Tensor, dims: &[Dim]) -> Result<Value> {
        // Symbolic dims that the graph's inputs define (torch's zero initial
        // state [1, batch, hidden]): an `expand` of the scalar to them, which
        // binding resolves.
        let input_syms: std::collections::HashSet<String> = self
            .graph_inputs
            .values()
            .flat_map(|&v| self.g.value_type(v).map(|t| t.shape.symbols()).unwrap_or_default())
            .map(|s| s.to_string())
            .collect();
        let bound = |d: &Dim| match d {
            Dim::Fixed(_) => true,
            Dim::Sym(s) => input_syms.contains(&**s),
        };
        if !smelt_ir::Shape(dims.to_vec()).is_fixed() && dims.iter().all(bound) {
            self.check_dims(dims)?;
            let s = self.konst(value.clone());
            let s = if value.rank() > 0 { self.reshape(s, &[])? } else { s };
            let spec: Vec<DimSpec> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => DimSpec::Int(*n as i64),
                    Dim::Sym(s) => DimSpec::Sym(s.to_string()),
                })
                .collect();
            return self.op(Op::Expand { shape: spec }, &[s]);
        }
        let Some(sh) = smelt_ir::Shape(dims.to_vec()).fixed() else {
            return Err(Error::Unsupported(vec![super::error::Unsupported {
                op_type: self.cur.op_type.clone(),
                node: self.cur.node.clone(),
                reason: Some(format!(
                    "a constant of symbolic shape {}; fix the dims when importing",
                    smelt_ir::Shape(dims.to_vec())
                )),
            }]));
        };
        self.check_dims(dims)?;
        let n = sh.iter().try_fold(1usize, |a, &k| a.checked_mul(k));
        let n = n.ok_or_else(|| self.fail(format!("a constant of shape {sh:?} has too many elements")))?;
        let d = value.dtype();
        if n <= 64 {
            let data = if d.is_float() {
                smelt_ir::Data::from_f32(d, &vec![value.to_f32().first().copied().unwrap_or(0.0); n])
            } else {
                smelt_ir::Data::from_i64(d, &vec![value.to_i64().first().copied().unwrap_or(0); n])
            };
            return Ok(self.konst(Tensor::new(sh, data).map_err(|e| self.fail(e.to_string()))?));
        }
        let s = self.konst(value.clone());
        let s = if value.rank() > 0 { self.reshape(s, &[])? } else { s };
        let spec: Vec<DimSpec> = sh.iter().map(|&n| DimSpec::Int(n as i64)).collect();
        self.op(Op::Expand { shape: spec }, &[s])
    }

    /// Fails on a fixed dim over smelt's limit (2^48), as a node error.
    fn check_dims(&self, dims: &[Dim]) -> Result<()> {
        match dims.iter().find(|d| d.fixed().is_some_and(|k| k > smelt_ir::shape::MAX_DIM)) {
            Some(d) => {
                Err(self.fail(format!("a dim of size {d} in {} (at most 2^48)", smelt_ir::Shape(dims.to_vec()))))
            }
            None => Ok(()),
        }
    }

    /// The known value of an Arc'd constant node, if `v` is one.
    pub fn const_of(&self, v: Value) -> Option<Arc<Tensor>> {
        match &self.g.node(v.node).op {
            Op::Const(t) => Some(t.clone()),
            Op::Param => self.g.weight(self.g.value_name(v)).cloned(),
            _ => None,
        }
    }
}
