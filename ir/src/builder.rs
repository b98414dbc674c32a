//! A builder for writing graphs in Rust: each op call adds a node, infers its type
//! at once, and returns its value. Problems are collected and returned by
//! [`GraphBuilder::finish`], so model code reads as straight-line math.
//!
//! ```
//! use smelt_ir::{GraphBuilder, TensorType, ops::Conv, shape};
//! let mut b = GraphBuilder::new("block");
//! let x = b.input("x", TensorType::f32(shape!["N", 8, 12, 12]));
//! let w = b.param("w", TensorType::f32([8, 8, 3, 3]));
//! let mut c = Conv::new(2);
//! c.pad = vec![1; 4];
//! let y = b.conv(x, w, None, c);
//! let y = b.relu(y);
//! let y = b.add(y, x);
//! b.output("y", y);
//! let g = b.finish().unwrap();
//! assert_eq!(g.value_type(g.outputs()[0]).unwrap().to_string(), "f32[N, 8, 12, 12]");
//! ```

use crate::attr::DimSpec;
use crate::error::{Diagnostic, Diagnostics};
use crate::expr::Expr;
use crate::graph::{Graph, Value};
use crate::ops::*;
use crate::tensor::Tensor;
use crate::types::TensorType;
use std::collections::{HashMap, HashSet};

#[derive(Debug)]
pub struct GraphBuilder {
    g: Graph,
    errors: Vec<Diagnostic>,
    taken: HashSet<String>,
    counters: HashMap<String, usize>,
    scopes: Vec<String>,
    outputs: Vec<Value>,
}

impl GraphBuilder {
    pub fn new(name: impl Into<String>) -> GraphBuilder {
        GraphBuilder {
            g: Graph::new(name),
            errors: vec![],
            taken: HashSet::new(),
            counters: HashMap::new(),
            scopes: vec![],
            outputs: vec![],
        }
    }

    /// Names made inside `f` are prefixed with `name.` (nested scopes join).
    pub fn scope<R>(&mut self, name: &str, f: impl FnOnce(&mut GraphBuilder) -> R) -> R {
        self.scopes.push(name.to_string());
        let r = f(self);
        self.scopes.pop();
        r
    }

    fn qualify(&self, name: &str) -> String {
        if self.scopes.is_empty() { name.to_string() } else { format!("{}.{name}", self.scopes.join(".")) }
    }

    fn claim(&mut self, name: String) -> String {
        if !self.taken.insert(name.clone()) {
            self.errors.push(Diagnostic::new(format!("value `{name}` is defined twice")).node(name.clone()));
        }
        name
    }

    /// A fresh name `scope.base_k`.
    fn fresh(&mut self, base: &str) -> String {
        loop {
            let q = self.qualify(base);
            let k = self.counters.entry(q.clone()).or_insert(0);
            let name = format!("{q}_{k}");
            *k += 1;
            if !self.taken.contains(&name) {
                return self.claim(name);
            }
        }
    }

    pub fn input(&mut self, name: &str, ty: TensorType) -> Value {
        let n = self.claim(name.to_string());
        self.g.add_input(n, ty)
    }

    /// Declares a parameter (scoped name) whose value will come from a weights file.
    pub fn param(&mut self, name: &str, ty: TensorType) -> Value {
        let n = self.qualify(name);
        let n = self.claim(n);
        self.g.add_param(n, ty)
    }

    /// Declares a parameter and sets its value.
    pub fn param_value(&mut self, name: &str, t: Tensor) -> Value {
        let v = self.param(name, t.tensor_type());
        let n = self.g.value_name(v).to_string();
        self.g.set_weight(n, t);
        v
    }

    /// An inline constant.
    pub fn constant(&mut self, t: Tensor) -> Value {
        let n = self.fresh("c");
        self.g.add_const(n, t)
    }

    /// An f32 scalar constant.
    pub fn scalar(&mut self, x: f32) -> Value {
        self.constant(Tensor::scalar_f32(x))
    }

    /// The type of a value (None when its node failed).
    pub fn ty(&self, v: Value) -> Option<&TensorType> {
        self.g.value_type(v)
    }

    /// Adds an op with a fresh name; returns its outputs.
    pub fn op_multi(&mut self, op: Op, inputs: &[Value]) -> Vec<Value> {
        let base = op.name();
        let first = self.fresh(base);
        let mut names = vec![first.clone()];
        for i in 1..op.num_outputs() {
            names.push(self.claim(format!("{first}.{i}")));
        }
        self.add_node(op, inputs, names)
    }

    /// Adds a one-output op with a fresh name.
    pub fn op(&mut self, op: Op, inputs: &[Value]) -> Value {
        self.op_multi(op, inputs)[0]
    }

    /// Adds a one-output op with a given (scoped) name.
    pub fn op_named(&mut self, name: &str, op: Op, inputs: &[Value]) -> Value {
        let n = self.qualify(name);
        let n = self.claim(n);
        self.add_node(op, inputs, vec![n])[0]
    }

    fn add_node(&mut self, op: Op, inputs: &[Value], names: Vec<String>) -> Vec<Value> {
        let k = op.num_outputs();
        let id = self.g.add_node(op, inputs, names);
        let typed = inputs.iter().all(|v| self.g.value_type(*v).is_some());
        if typed && let Err(d) = self.g.infer_node(id) {
            self.errors.push(d);
        }
        (0..k).map(|i| Value { node: id, output: i }).collect()
    }

    /// Marks `v` as a graph output named `name` (renaming the value).
    pub fn output(&mut self, name: &str, v: Value) {
        let old = self.g.value_name(v).to_string();
        if old != name {
            let n = self.claim(name.to_string());
            self.taken.remove(&old);
            self.g.node_mut(v.node).names[v.output] = n;
        }
        self.outputs.push(v);
    }

    /// Finishes: every collected problem, or the verified graph.
    pub fn finish(mut self) -> Result<Graph, Diagnostics> {
        self.g.set_outputs(self.outputs);
        if !self.errors.is_empty() {
            return Err(Diagnostics(self.errors));
        }
        crate::verify::verify(&self.g, crate::verify::Weights::IfPresent)?;
        Ok(self.g)
    }

    // ---- conveniences, one per common op ----

    pub fn unary(&mut self, u: UnaryOp, x: Value) -> Value {
        self.op(Op::Unary(u), &[x])
    }
    pub fn relu(&mut self, x: Value) -> Value {
        self.unary(UnaryOp::Relu, x)
    }
    pub fn gelu(&mut self, x: Value) -> Value {
        self.unary(UnaryOp::Gelu, x)
    }
    pub fn tanh(&mut self, x: Value) -> Value {
        self.unary(UnaryOp::Tanh, x)
    }
    pub fn sigmoid(&mut self, x: Value) -> Value {
        self.unary(UnaryOp::Sigmoid, x)
    }
    pub fn binary(&mut self, op: BinaryOp, a: Value, b: Value) -> Value {
        self.op(Op::Binary(op), &[a, b])
    }
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Add, a, b)
    }
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Sub, a, b)
    }
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Mul, a, b)
    }
    pub fn div(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Div, a, b)
    }
    pub fn matmul(&mut self, a: Value, b: Value) -> Value {
        self.op(Op::MatMul, &[a, b])
    }
    pub fn gemm(&mut self, a: Value, b: Value, c: Option<Value>, g: Gemm) -> Value {
        let ins: Vec<Value> = [a, b].into_iter().chain(c).collect();
        self.op(Op::Gemm(g), &ins)
    }
    /// `x·w + b` for x [.., K], w [K, N], b [N].
    pub fn linear(&mut self, x: Value, w: Value, b: Option<Value>) -> Value {
        let y = self.matmul(x, w);
        match b {
            Some(b) => self.add(y, b),
            None => y,
        }
    }
    pub fn conv(&mut self, x: Value, w: Value, b: Option<Value>, c: Conv) -> Value {
        let ins: Vec<Value> = [x, w].into_iter().chain(b).collect();
        self.op(Op::Conv(c), &ins)
    }
    pub fn pool(&mut self, x: Value, p: Pool) -> Value {
        self.op(Op::Pool(p), &[x])
    }
    pub fn global_avg_pool(&mut self, x: Value) -> Value {
        self.op(Op::GlobalPool(PoolKind::Avg), &[x])
    }
    pub fn batch_norm(&mut self, x: Value, scale: Value, bias: Value, mean: Value, var: Value, epsilon: f32) -> Value {
        self.op(Op::BatchNorm { epsilon }, &[x, scale, bias, mean, var])
    }
    pub fn layer_norm(&mut self, x: Value, scale: Value, bias: Option<Value>, epsilon: f32) -> Value {
        let ins: Vec<Value> = [x, scale].into_iter().chain(bias).collect();
        self.op(Op::LayerNorm { axis: -1, epsilon }, &ins)
    }
    pub fn softmax(&mut self, x: Value, axis: i64) -> Value {
        self.op(Op::Softmax { axis, log: false }, &[x])
    }
    pub fn log_softmax(&mut self, x: Value, axis: i64) -> Value {
        self.op(Op::Softmax { axis, log: true }, &[x])
    }
    pub fn reduce(&mut self, x: Value, kind: ReduceKind, axes: &[i64], keepdims: bool) -> Value {
        self.op(Op::Reduce { kind, axes: axes.to_vec(), keepdims }, &[x])
    }
    /// Reshape; `shape` entries are sizes (`0` copies, `-1` infers) or symbols.
    pub fn reshape(&mut self, x: Value, shape: &[DimSpec]) -> Value {
        self.op(Op::Reshape { shape: shape.to_vec() }, &[x])
    }
    pub fn transpose(&mut self, x: Value, perm: &[usize]) -> Value {
        self.op(Op::Transpose { perm: Some(perm.to_vec()) }, &[x])
    }
    pub fn concat(&mut self, xs: &[Value], axis: i64) -> Value {
        self.op(Op::Concat { axis }, xs)
    }
    pub fn split(&mut self, x: Value, axis: i64, sizes: &[usize]) -> Vec<Value> {
        self.op_multi(Op::Split { axis, sizes: sizes.to_vec() }, &[x])
    }
    pub fn slice(&mut self, x: Value, s: Slice) -> Value {
        self.op(Op::Slice(s), &[x])
    }
    pub fn gather(&mut self, data: Value, indices: Value, axis: i64) -> Value {
        self.op(Op::Gather { axis }, &[data, indices])
    }
    pub fn pad(&mut self, x: Value, pads: &[usize], mode: PadMode, value: f32) -> Value {
        self.op(Op::Pad { pads: pads.to_vec(), mode, value }, &[x])
    }
    /// `(y, h, c)` of an LSTM.
    pub fn lstm(&mut self, x: Value, w: Value, r: Value, b: Value, init: Option<(Value, Value)>, rnn: Rnn) -> Vec<Value> {
        let mut ins = vec![x, w, r, b];
        if let Some((h, c)) = init {
            ins.extend([h, c]);
        }
        self.op_multi(Op::Lstm(rnn), &ins)
    }
    /// `(y, h)` of a GRU.
    pub fn gru(&mut self, x: Value, w: Value, r: Value, b: Value, h0: Option<Value>, rnn: Rnn) -> Vec<Value> {
        let ins: Vec<Value> = [x, w, r, b].into_iter().chain(h0).collect();
        self.op_multi(Op::Gru(rnn), &ins)
    }
    pub fn attention(&mut self, q: Value, k: Value, v: Value, mask: Option<Value>, a: Attention) -> Value {
        let ins: Vec<Value> = [q, k, v].into_iter().chain(mask).collect();
        self.op(Op::Attention(a), &ins)
    }
    pub fn elementwise(&mut self, expr: Expr, inputs: &[Value]) -> Value {
        self.op(Op::Elementwise { expr }, inputs)
    }
}
