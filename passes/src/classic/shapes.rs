//! Reshape and transpose simplification: `transpose(transpose(x))` becomes one
//! transpose (or `x` when the perms cancel), `reshape(reshape(x))` one reshape, and
//! reshapes, transposes, expands and `identity` that change nothing are removed.
//! A node that is a graph output is rewritten in place, never removed, so outputs
//! keep their names.

use super::{is_output, replace_node};
use crate::error::Result;
use crate::manager::{Pass, PassReport};
use smelt_ir::attr::DimSpec;
use smelt_ir::ops::UnaryOp;
use smelt_ir::ops::shape::reshape_dims;
use smelt_ir::{Dim, Graph, NodeId, Op, Value};

#[derive(Debug, Default, Clone, Copy)]
pub struct SimplifyShapes;

/// The perm of a transpose of rank `r`.
pub fn perm_of(perm: &Option<Vec<usize>>, r: usize) -> Vec<usize> {
    perm.clone().unwrap_or_else(|| (0..r).rev().collect())
}

/// The reshape spec that turns `input` dims into `out` dims and stays right when
/// the symbols are bound later: a symbolic dim in its input position is `0`, one
/// other symbolic dim is `-1`, further ones name their symbol.
pub fn spec_of(input: &[Dim], out: &[Dim]) -> Vec<DimSpec> {
    let mut inferred = false;
    out.iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Fixed(n) => DimSpec::Int(*n as i64),
            Dim::Sym(_) if input.get(i) == Some(d) => DimSpec::Int(0),
            Dim::Sym(s) => {
                let rest_fixed = out.iter().enumerate().all(|(j, e)| j == i || e.fixed().is_some() || input.get(j) == Some(e));
                if !inferred && rest_fixed {
                    inferred = true;
                    DimSpec::Int(-1)
                } else {
                    DimSpec::Sym(s.to_string())
                }
            }
        })
        .collect()
}

impl Pass for SimplifyShapes {
    fn name(&self) -> &'static str {
        "simplify-shapes"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let Some(order) = g.topo_order() else { return Ok(PassReport::default()) };
        let mut changed = 0;
        for id in order {
            if g.contains(id) && simplify(g, id) {
                changed += 1;
            }
        }
        Ok(if changed == 0 { PassReport::default() } else { PassReport::note(format!("simplified {changed} nodes")) })
    }
}

fn simplify(g: &mut Graph, id: NodeId) -> bool {
    let n = g.node(id);
    let (Some(out), false) = (n.types.first().cloned(), n.op.is_source()) else { return false };
    let ins = g.node_inputs(id);
    let Some(x) = ins.first().copied() else { return false };
    let Some(xt) = g.value_type(x).cloned() else { return false };
    let op = n.op.clone();
    // A no-op: forward the input (unless this node names a graph output).
    let noop = match &op {
        Op::Unary(UnaryOp::Identity) => true,
        Op::Reshape { .. } | Op::Expand { .. } => xt == out,
        Op::Transpose { perm } => perm_of(perm, xt.rank()).iter().enumerate().all(|(i, &p)| i == p),
        _ => false,
    };
    if noop && !is_output(g, id) {
        g.replace_uses(Value { node: id, output: 0 }, x);
        g.remove_node(id);
        return true;
    }
    let inner = g.node(x.node).op.clone();
    let Some(&y) = g.node_inputs(x.node).first() else { return false };
    match (&op, &inner) {
        (Op::Transpose { perm: p2 }, Op::Transpose { perm: p1 }) => {
            let r = xt.rank();
            let (p1, p2) = (perm_of(p1, r), perm_of(p2, r));
            let p: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
            if p.iter().enumerate().all(|(i, &v)| i == v) && !is_output(g, id) {
                g.replace_uses(Value { node: id, output: 0 }, y);
                g.remove_node(id);
            } else {
                replace_node(g, id, Op::Transpose { perm: Some(p) }, &[y]);
            }
            true
        }
        (Op::Reshape { .. }, Op::Reshape { .. }) => {
            let Some(yt) = g.value_type(y) else { return false };
            if *yt == out && !is_output(g, id) {
                g.replace_uses(Value { node: id, output: 0 }, y);
                g.remove_node(id);
                return true;
            }
            let spec = spec_of(yt.dims(), out.dims());
            if reshape_dims(yt.dims(), &spec).is_err() {
                return false;
            }
            replace_node(g, id, Op::Reshape { shape: spec }, &[y]);
            true
        }
        _ => false,
    }
}
