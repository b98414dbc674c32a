//! The graph: a DAG of nodes on petgraph's `StableGraph` (so passes may delete
//! nodes), with named inputs, outputs and parameters.
//!
//! Edges carry ports: an edge `a → b` with `Port { output: i, input: j }` feeds
//! output `i` of node `a` into input `j` of node `b`. The edges are the only record
//! of a node's inputs.

use crate::attr::DimSpec;
use crate::error::{Diagnostic, Diagnostics, Span};
use crate::ops::Op;
use crate::shape::Bindings;
use crate::tensor::Tensor;
use crate::types::TensorType;
use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::cmp::Reverse;
use std::fmt;
use std::sync::Arc;

/// A node of the graph. Prints as `n3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub NodeIndex<u32>);

impl NodeId {
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0.index())
    }
}

/// One output of a node. Prints as `n3.1` (or `n3` for output 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Value {
    pub node: NodeId,
    pub output: usize,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.output == 0 { write!(f, "{}", self.node) } else { write!(f, "{}.{}", self.node, self.output) }
    }
}

/// Which output feeds which input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    pub output: usize,
    pub input: usize,
}

/// A node: an op, a name per output, a type per output, and where it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub op: Op,
    /// One name per output; the first names the node in messages.
    pub names: Vec<String>,
    /// One type per output: declared for sources, inferred for the rest (empty until
    /// inference has run, or when it failed).
    pub types: Vec<TensorType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.names[0]
    }
}

/// A model graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Graph {
    pub name: String,
    /// The comment lines at the top of the model text (without `# `), kept by the
    /// printer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doc: Vec<String>,
    g: StableGraph<Node, Port>,
    inputs: Vec<NodeId>,
    outputs: Vec<Value>,
    /// Parameter values by name (loaded from safetensors, or set by a builder).
    #[serde(skip)]
    weights: BTreeMap<String, Arc<Tensor>>,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), doc: vec![], g: StableGraph::new(), inputs: vec![], outputs: vec![], weights: BTreeMap::new() }
    }

    fn push(&mut self, node: Node) -> NodeId {
        NodeId(self.g.add_node(node))
    }

    /// Adds a graph input.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> Value {
        let id = self.push(Node { op: Op::Input, names: vec![name.into()], types: vec![ty], span: None });
        self.inputs.push(id);
        Value { node: id, output: 0 }
    }

    /// Adds a parameter (its value is a weight of the same name).
    pub fn add_param(&mut self, name: impl Into<String>, ty: TensorType) -> Value {
        let id = self.push(Node { op: Op::Param, names: vec![name.into()], types: vec![ty], span: None });
        Value { node: id, output: 0 }
    }

    /// Adds an inline constant; its type is the tensor's.
    pub fn add_const(&mut self, name: impl Into<String>, t: Tensor) -> Value {
        let ty = t.tensor_type();
        let id = self.push(Node { op: Op::Const(Arc::new(t)), names: vec![name.into()], types: vec![ty], span: None });
        Value { node: id, output: 0 }
    }

    /// Adds an op node reading `inputs`. Types are filled in by [`Graph::infer`]
    /// (or by [`Graph::infer_node`]). `names` must have one name per output.
    pub fn add_node(&mut self, op: Op, inputs: &[Value], names: Vec<String>) -> NodeId {
        assert_eq!(names.len(), op.num_outputs(), "{} has {} outputs", op.name(), op.num_outputs());
        let id = self.push(Node { op, names, types: vec![], span: None });
        for (j, v) in inputs.iter().enumerate() {
            self.g.add_edge(v.node.0, id.0, Port { output: v.output, input: j });
        }
        id
    }

    pub fn set_outputs(&mut self, outputs: Vec<Value>) {
        self.outputs = outputs;
    }

    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[Value] {
        &self.outputs
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id.0]
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id.0)
    }

    /// Number of nodes (sources included).
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// All node ids in index order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.g.node_indices().map(NodeId)
    }

    /// The petgraph graph, for algorithms.
    pub fn petgraph(&self) -> &StableGraph<Node, Port> {
        &self.g
    }

    /// The values feeding `id`, in input order.
    pub fn node_inputs(&self, id: NodeId) -> Vec<Value> {
        let mut e: Vec<(usize, Value)> = self
            .g
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| (e.weight().input, Value { node: NodeId(e.source()), output: e.weight().output }))
            .collect();
        e.sort_by_key(|(j, _)| *j);
        e.into_iter().map(|(_, v)| v).collect()
    }

    /// The (node, input index) pairs that read `v`, sorted.
    pub fn users(&self, v: Value) -> Vec<(NodeId, usize)> {
        let mut u: Vec<(NodeId, usize)> = self
            .g
            .edges_directed(v.node.0, Direction::Outgoing)
            .filter(|e| e.weight().output == v.output)
            .map(|e| (NodeId(e.target()), e.weight().input))
            .collect();
        u.sort();
        u
    }

    /// Redirects every use of `old` (edges and graph outputs) to `new`.
    pub fn replace_uses(&mut self, old: Value, new: Value) {
        let edges: Vec<_> = self
            .g
            .edges_directed(old.node.0, Direction::Outgoing)
            .filter(|e| e.weight().output == old.output)
            .map(|e| (e.id(), e.target(), e.weight().input))
            .collect();
        for (eid, target, input) in edges {
            self.g.remove_edge(eid);
            self.g.add_edge(new.node.0, target, Port { output: new.output, input });
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes a node and its edges. Inputs are removed from the signature.
    pub fn remove_node(&mut self, id: NodeId) -> Option<Node> {
        self.inputs.retain(|&i| i != id);
        self.g.remove_node(id.0)
    }

    /// The type of a value, once known.
    pub fn value_type(&self, v: Value) -> Option<&TensorType> {
        self.g.node_weight(v.node.0).and_then(|n| n.types.get(v.output))
    }

    /// The name of a value.
    pub fn value_name(&self, v: Value) -> &str {
        &self.g[v.node.0].names[v.output]
    }

    /// Finds a value by name.
    pub fn find(&self, name: &str) -> Option<Value> {
        self.g.node_indices().find_map(|i| {
            self.g[i].names.iter().position(|n| n == name).map(|o| Value { node: NodeId(i), output: o })
        })
    }

    /// Nodes in a deterministic topological order: among ready nodes the lowest index
    /// goes first, so a parsed graph comes back in its written order. `None` on a
    /// cycle.
    pub fn topo_order(&self) -> Option<Vec<NodeId>> {
        let mut indeg: HashMap<NodeIndex, usize> = HashMap::new();
        for i in self.g.node_indices() {
            indeg.insert(i, self.g.edges_directed(i, Direction::Incoming).count());
        }
        let mut ready: BinaryHeap<Reverse<NodeIndex>> =
            indeg.iter().filter(|(_, d)| **d == 0).map(|(i, _)| Reverse(*i)).collect();
        let mut out = Vec::with_capacity(self.g.node_count());
        while let Some(Reverse(i)) = ready.pop() {
            out.push(NodeId(i));
            for e in self.g.edges_directed(i, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("node present");
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        (out.len() == self.g.node_count()).then_some(out)
    }

    /// A diagnostic about a node, with its name, op and span.
    pub fn diag(&self, id: NodeId, msg: impl Into<String>) -> Diagnostic {
        let n = self.node(id);
        Diagnostic::new(msg).node(n.name()).op(n.op.name()).at(n.span)
    }

    /// Infers the type of one node from its inputs' types.
    pub fn infer_node(&mut self, id: NodeId) -> Result<(), Diagnostic> {
        if self.node(id).op.is_source() {
            return Ok(());
        }
        let ins = self.node_inputs(id);
        let mut tys = Vec::with_capacity(ins.len());
        for v in &ins {
            match self.value_type(*v) {
                Some(t) => tys.push(t.clone()),
                None => return Err(self.diag(id, format!("input `{}` has no type", self.value_name(*v)))),
            }
        }
        let refs: Vec<&TensorType> = tys.iter().collect();
        match self.node(id).op.infer(&refs) {
            Ok(out) => {
                self.node_mut(id).types = out;
                Ok(())
            }
            Err(msg) => {
                self.node_mut(id).types.clear();
                Err(self.diag(id, msg))
            }
        }
    }

    /// Infers every node's type, in topological order. Reports every node whose
    /// inputs were well typed but which failed itself (failures do not cascade).
    pub fn infer(&mut self) -> Result<(), Diagnostics> {
        let Some(order) = self.topo_order() else {
            return Err(Diagnostics(vec![Diagnostic::new(format!("graph {} has a cycle", self.name))]));
        };
        let mut errs = Vec::new();
        let mut failed: HashSet<NodeId> = HashSet::new();
        for id in order {
            if self.node(id).op.is_source() {
                if let Op::Const(t) = &self.node(id).op
                    && let Err(m) = crate::ops::source::check_const(t, &self.node(id).types[0])
                {
                    errs.push(self.diag(id, m));
                    failed.insert(id);
                }
                continue;
            }
            if self.node_inputs(id).iter().any(|v| failed.contains(&v.node)) {
                self.node_mut(id).types.clear();
                failed.insert(id);
                continue;
            }
            if let Err(d) = self.infer_node(id) {
                errs.push(d);
                failed.insert(id);
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(Diagnostics(errs)) }
    }

    /// A copy with symbols in the input types replaced by `b`, re-inferred.
    pub fn bind(&self, b: &Bindings) -> Result<Graph, Diagnostics> {
        let mut g = self.clone();
        for id in g.inputs.clone() {
            let t = &mut g.node_mut(id).types[0];
            t.shape = t.shape.bind(b);
        }
        // Reshape and expand targets and nonzero counts may name symbols: they
        // become sizes too.
        let ids: Vec<NodeId> = g.node_ids().collect();
        for id in ids {
            if let Some(s) = g.node_mut(id).op.count_mut()
                && let DimSpec::Sym(name) = s
                && let Some(&v) = b.get(name.as_str())
                && let Ok(v) = i64::try_from(v)
            {
                *s = DimSpec::Int(v);
            }
            if let Op::Reshape { shape } | Op::Expand { shape } = &mut g.node_mut(id).op {
                for s in shape.iter_mut() {
                    if let DimSpec::Sym(name) = s
                        && let Some(&v) = b.get(name.as_str())
                        && let Ok(v) = i64::try_from(v)
                    {
                        *s = DimSpec::Int(v);
                    }
                }
            }
        }
        g.infer()?;
        Ok(g)
    }

    // ---- weights ----

    /// Parameter nodes in index order.
    pub fn params(&self) -> Vec<NodeId> {
        self.node_ids().filter(|&i| matches!(self.node(i).op, Op::Param)).collect()
    }

    pub fn weight(&self, name: &str) -> Option<&Arc<Tensor>> {
        self.weights.get(name)
    }

    pub fn weights(&self) -> &BTreeMap<String, Arc<Tensor>> {
        &self.weights
    }

    /// Sets a parameter's value without checks; [`crate::verify`] checks it.
    pub fn set_weight(&mut self, name: impl Into<String>, t: impl Into<Arc<Tensor>>) {
        self.weights.insert(name.into(), t.into());
    }

    pub fn clear_weights(&mut self) {
        self.weights.clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::shape::{Bindings, Dim};

    #[test]
    fn bind_substitutes_symbols_in_reshape_and_expand_targets() {
        let src = "graph g(x: f32[N, 6]) -> (y, z) {\n  y = reshape(x) {shape = [N, 2, 3]}\n  z = expand(x) {shape = [2, N, 6]}\n}\n";
        let g = crate::text::parse(src).expect("parses");
        let b: Bindings = [("N".to_string(), 5)].into();
        let bound = g.bind(&b).expect("binds");
        let dims = |name: &str| {
            let v = bound.outputs().iter().copied().find(|&v| bound.value_name(v) == name).expect("output");
            bound.value_type(v).expect("typed").shape.0.clone()
        };
        assert_eq!(dims("y"), vec![Dim::Fixed(5), Dim::Fixed(2), Dim::Fixed(3)]);
        assert_eq!(dims("z"), vec![Dim::Fixed(2), Dim::Fixed(5), Dim::Fixed(6)]);
        // The text shows the substituted sizes.
        let text = crate::text::print(&bound);
        assert!(text.contains("shape = [5, 2, 3]") && text.contains("shape = [2, 5, 6]"), "{text}");
    }
}
