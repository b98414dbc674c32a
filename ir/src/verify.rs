//! The verifier: structural checks and type agreement. Every pass leaves a graph
//! that it accepts; every error names the node, the op, what was expected and what
//! was found.

use crate::error::{Diagnostic, Diagnostics};
use crate::graph::{Graph, NodeId};
use crate::ops::Op;
use crate::types::TensorType;
use std::collections::HashMap;

/// What the verifier requires of parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// Every param must have a value of its declared type.
    Required,
    /// Values that are present must fit; missing ones are fine.
    IfPresent,
}

/// Checks the graph; returns every problem found.
pub fn verify(g: &Graph, weights: Weights) -> Result<(), Diagnostics> {
    let mut errs: Vec<Diagnostic> = Vec::new();
    let mut names: HashMap<&str, NodeId> = HashMap::new();
    for id in g.node_ids() {
        let n = g.node(id);
        if n.names.len() != n.op.num_outputs() {
            errs.push(g.diag(id, format!("{} has {} outputs but {} names", n.op.name(), n.op.num_outputs(), n.names.len())));
        }
        for name in &n.names {
            if let Some(prev) = names.insert(name, id)
                && prev != id
            {
                errs.push(g.diag(id, format!("value `{name}` is defined twice")));
            }
        }
        // Ports must be dense and outputs must exist.
        let ins = g.node_inputs(id);
        let ports: Vec<usize> = g
            .petgraph()
            .edges_directed(id.0, petgraph::Direction::Incoming)
            .map(|e| e.weight().input)
            .collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        if sorted != (0..ports.len()).collect::<Vec<_>>() {
            errs.push(g.diag(id, format!("input ports {sorted:?} are not 0..{}", ports.len())));
        }
        for v in &ins {
            if v.output >= g.node(v.node).op.num_outputs() {
                errs.push(g.diag(id, format!("reads output {} of `{}`, which has {}", v.output, g.node(v.node).name(), g.node(v.node).op.num_outputs())));
            }
        }
        match &n.op {
            Op::Input => {
                if !g.inputs().contains(&id) {
                    errs.push(g.diag(id, "an input node is not in the graph signature"));
                }
            }
            Op::Param => check_weight(g, id, weights, &mut errs),
            _ => {}
        }
        if n.op.is_source() {
            if n.types.len() != 1 {
                errs.push(g.diag(id, "a source needs exactly one declared type"));
            }
            if let (Op::Const(t), Some(ty)) = (&n.op, n.types.first())
                && let Err(m) = crate::ops::source::check_const(t, ty)
            {
                errs.push(g.diag(id, m));
            }
            continue;
        }
        // Re-infer and compare with the recorded types.
        let tys: Option<Vec<&TensorType>> = ins.iter().map(|v| g.value_type(*v)).collect();
        let Some(tys) = tys else {
            errs.push(g.diag(id, "an input has no type (run inference first)"));
            continue;
        };
        match n.op.infer(&tys) {
            Ok(out) => {
                if out != n.types {
                    let show = |v: &[TensorType]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
                    errs.push(g.diag(id, format!("recorded type ({}) differs from inferred ({})", show(&n.types), show(&out))));
                }
            }
            Err(m) => errs.push(g.diag(id, m)),
        }
    }
    for &i in g.inputs() {
        if !g.contains(i) || !matches!(g.node(i).op, Op::Input) {
            errs.push(Diagnostic::new(format!("graph input {i} is not an input node")));
        }
    }
    if g.outputs().is_empty() {
        errs.push(Diagnostic::new(format!("graph {} has no outputs", g.name)));
    }
    for o in g.outputs() {
        if !g.contains(o.node) || o.output >= g.node(o.node).op.num_outputs() {
            errs.push(Diagnostic::new(format!("graph output {o} does not exist")));
        }
    }
    if g.topo_order().is_none() {
        errs.push(Diagnostic::new(format!("graph {} has a cycle", g.name)));
    }
    if errs.is_empty() { Ok(()) } else { Err(Diagnostics(errs)) }
}

fn check_weight(g: &Graph, id: NodeId, mode: Weights, errs: &mut Vec<Diagnostic>) {
    let n = g.node(id);
    let Some(ty) = n.types.first() else { return };
    if !ty.shape.is_fixed() {
        errs.push(g.diag(id, format!("a param needs a fixed shape, found {ty}")));
    }
    match g.weight(n.name()) {
        Some(t) => {
            if !t.fits(ty) {
                errs.push(g.diag(id, format!("weight `{}` is {}{:?}, expected {ty}", n.name(), t.dtype(), t.shape())));
            }
        }
        None if mode == Weights::Required => errs.push(g.diag(id, format!("no weight named `{}` (expected {ty})", n.name()))),
        None => {}
    }
}
