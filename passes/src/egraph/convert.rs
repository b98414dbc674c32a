//! Conversion between graphs and e-graphs.
//!
//! Graph → e-graph adds the nodes in topological order; each value's e-class
//! remembers the value's name, and each e-class counts the value's uses. E-graph →
//! graph emits the chosen e-node of every e-class reachable from the outputs, once
//! (so shared values stay shared), in depth-first order from the outputs. Names are
//! kept: inputs, params and outputs keep theirs, and an e-class that held an
//! original value is named after it (the first in topological order), so a fused
//! node takes the name of the value it computes. Other e-classes get fresh names
//! from their op (`fused_matmul_0`).

use super::analysis::{EG, SmeltAnalysis};
use super::extract::Choice;
use super::lang::{ENode, Head};
use egg::Id;
use smelt_ir::{Graph, NodeId, Op, Value};
use std::collections::{HashMap, HashSet};

/// A graph in an e-graph, with what is needed to convert it back.
#[derive(Debug)]
pub struct Converted {
    pub eg: EG,
    /// The graph outputs: name and e-class.
    pub outputs: Vec<(String, Id)>,
    /// Every original value's e-class and name, in topological order.
    pub names: Vec<(Id, String)>,
}

/// Builds the e-graph of `g` (which must be typed).
pub fn to_egraph(g: &Graph) -> Result<Converted, String> {
    let order = g.topo_order().ok_or_else(|| format!("graph {} has a cycle", g.name))?;
    let mut an = SmeltAnalysis::default();
    for id in g.node_ids() {
        let n = g.node(id);
        if matches!(n.op, Op::Input | Op::Param) {
            let t = n.types.first().ok_or_else(|| format!("`{}` has no type", n.name()))?;
            an.leaf_types.insert(n.name().into(), t.clone());
        }
    }
    for (k, v) in g.weights() {
        an.weights.insert(k.as_str().into(), v.clone());
    }
    let mut eg = EG::new(an);
    let mut val: HashMap<Value, Id> = HashMap::new();
    let mut names = Vec::new();
    for id in order {
        let n = g.node(id);
        let node = match &n.op {
            Op::Input => ENode::input(n.name()),
            Op::Param => ENode::param(n.name()),
            op => {
                let ins = g.node_inputs(id);
                let kids: Vec<Id> = ins.iter().map(|v| val[v]).collect();
                for &k in &kids {
                    eg[k].data.uses += 1;
                }
                ENode::op(op.clone(), kids)
            }
        };
        let c = eg.add(node);
        if n.names.len() == 1 {
            val.insert(Value { node: id, output: 0 }, c);
            names.push((c, n.names[0].clone()));
        } else {
            for (k, name) in n.names.iter().enumerate() {
                let o = eg.add(ENode::get(k, c));
                val.insert(Value { node: id, output: k }, o);
                names.push((o, name.clone()));
            }
        }
    }
    let mut outputs = Vec::new();
    for &o in g.outputs() {
        let c = *val.get(&o).ok_or_else(|| format!("graph output {o} is not computed"))?;
        eg[c].data.uses += 1;
        outputs.push((g.value_name(o).to_string(), c));
    }
    eg.rebuild();
    Ok(Converted { eg, outputs, names })
}

/// Rebuilds a graph from the choice, keeping `orig`'s signature, names and weights.
pub fn to_graph(c: &Converted, choice: &Choice, orig: &Graph) -> Result<Graph, String> {
    let eg = &c.eg;
    let mut g = Graph::new(orig.name.clone());
    g.doc = orig.doc.clone();
    let mut reserved: HashSet<String> = HashSet::new();
    let mut leaf: HashMap<String, Value> = HashMap::new();
    for &i in orig.inputs() {
        let n = orig.node(i);
        let v = g.add_input(n.name(), n.types[0].clone());
        leaf.insert(n.name().to_string(), v);
        reserved.insert(n.name().to_string());
    }
    for p in orig.params() {
        reserved.insert(orig.node(p).name().to_string());
    }
    let mut want: HashMap<Id, String> = HashMap::new();
    for (cid, name) in &c.names {
        want.entry(eg.find(*cid)).or_insert_with(|| name.clone());
    }
    for (name, cid) in &c.outputs {
        want.insert(eg.find(*cid), name.clone());
    }
    let wanted: HashSet<String> = want.values().cloned().collect();
    let mut em = Emitter {
        eg,
        choice,
        g: &mut g,
        orig,
        leaf,
        want,
        leaves: reserved,
        wanted,
        used: HashSet::new(),
        memo: HashMap::new(),
        counter: HashMap::new(),
    };
    let mut outs = Vec::new();
    for (name, cid) in &c.outputs {
        let mut v = em.emit(eg.find(*cid))?;
        if em.g.value_name(v) != name {
            // A leaf or a value already named: give the output its own node.
            let id = em.g.add_node(Op::Unary(smelt_ir::UnaryOp::Identity), &[v], vec![name.clone()]);
            v = Value { node: id, output: 0 };
        }
        outs.push(v);
    }
    g.set_outputs(outs);
    g.infer().map_err(|d| format!("the extracted graph does not type-check: {d}"))?;
    Ok(g)
}

struct Emitter<'a> {
    eg: &'a EG,
    choice: &'a Choice,
    g: &'a mut Graph,
    orig: &'a Graph,
    leaf: HashMap<String, Value>,
    want: HashMap<Id, String>,
    /// Input and param names.
    leaves: HashSet<String>,
    /// Every name some class wants.
    wanted: HashSet<String>,
    /// Names given to op nodes so far.
    used: HashSet<String>,
    /// Emitted classes: the node (for multi-output ops) and the value.
    memo: HashMap<Id, Value>,
    counter: HashMap<&'static str, usize>,
}

impl Emitter<'_> {
    /// The name for class `id`'s node: the name of the original value it holds when
    /// that is free, else a fresh one built from `base`.
    fn name_for(&mut self, id: Id, base: &'static str) -> String {
        if let Some(w) = self.want.get(&id)
            && !self.used.contains(w)
            && !self.leaves.contains(w)
        {
            let w = w.clone();
            self.used.insert(w.clone());
            return w;
        }
        loop {
            let k = self.counter.entry(base).or_insert(0);
            let n = format!("{base}_{k}");
            *k += 1;
            if !self.used.contains(&n) && !self.leaves.contains(&n) && !self.wanted.contains(&n) && self.orig.find(&n).is_none() {
                self.used.insert(n.clone());
                return n;
            }
        }
    }

    /// Emits class `root` and everything it needs, iteratively (post-order).
    fn emit(&mut self, root: Id) -> Result<Value, String> {
        let mut stack: Vec<(Id, bool)> = vec![(root, false)];
        let mut on_path: HashSet<Id> = HashSet::new();
        while let Some((id, ready)) = stack.pop() {
            if self.memo.contains_key(&id) {
                continue;
            }
            let node = self.choice.nodes.get(&id).ok_or_else(|| format!("no choice for e-class {id}"))?;
            let kids: Vec<Id> = node.children.iter().map(|&k| self.eg.find(k)).collect();
            if !ready {
                if !on_path.insert(id) {
                    return Err(format!("the extracted graph has a cycle through e-class {id}"));
                }
                stack.push((id, true));
                for &k in kids.iter().rev() {
                    if !self.memo.contains_key(&k) {
                        if on_path.contains(&k) {
                            return Err(format!("the extracted graph has a cycle through e-class {k}"));
                        }
                        stack.push((k, false));
                    }
                }
                continue;
            }
            on_path.remove(&id);
            let v = self.build(id, node, &kids)?;
            self.memo.insert(id, v);
        }
        Ok(self.memo[&root])
    }

    fn build(&mut self, id: Id, node: &ENode, kids: &[Id]) -> Result<Value, String> {
        let ins: Vec<Value> = kids.iter().map(|k| self.memo[k]).collect();
        Ok(match &node.head {
            Head::Input(n) => *self.leaf.get(&**n).ok_or_else(|| format!("unknown input `{n}`"))?,
            Head::Param(n) => {
                if let Some(v) = self.g.find(n) {
                    return Ok(v);
                }
                // A param of the original graph, or one a rule made (the
                // sparsity rules' compressed weights), whose type and value the
                // analysis holds.
                let (ty, w) = match self.orig.find(n) {
                    Some(p) => (self.orig.node(p.node).types[0].clone(), self.orig.weight(n).cloned()),
                    None => {
                        let an = &self.eg.analysis;
                        let ty = an.leaf_types.get(n).ok_or_else(|| format!("unknown param `{n}`"))?.clone();
                        (ty, an.weights.get(n).cloned())
                    }
                };
                let v = self.g.add_param(&**n, ty);
                if let Some(w) = w {
                    self.g.set_weight(n.to_string(), w);
                }
                v
            }
            Head::Get(k) => Value { node: ins[0].node, output: *k },
            Head::Op(op) => {
                if let Op::Const(t) = &**op {
                    let name = self.name_for(id, "c");
                    return Ok(self.g.add_const(name, (**t).clone()));
                }
                let names: Vec<String> = if op.num_outputs() == 1 {
                    vec![self.name_for(id, op.name())]
                } else {
                    (0..op.num_outputs())
                        .map(|k| {
                            let gid = self.eg.lookup(ENode::get(k, id)).map(|g| self.eg.find(g)).unwrap_or(id);
                            self.name_for(gid, op.name())
                        })
                        .collect()
                };
                let nid: NodeId = self.g.add_node((**op).clone(), &ins, names);
                Value { node: nid, output: 0 }
            }
        })
    }
}
