//! ONNX control flow at import time: an `If` whose condition the importer knows
//! (an initializer, or a value folded from constants and known shapes, as in
//! `if x.shape[0] == 1`) is replaced by the nodes of the branch it takes. An `If`
//! decided at run time, `Loop` and `Scan` are not supported yet: they are
//! reported as unsupported, with that reason.

use super::ctx::Ctx;
use super::error::Result;
use super::node::NodeRef;
use super::{import_node, tensor};

/// Imports `If` node `n` as its chosen branch: the branch's initializers and
/// nodes join the graph (they may read any value of the enclosing scopes), and
/// the If's outputs name the branch's outputs.
pub(super) fn import_if(cx: &mut Ctx, n: &NodeRef) -> Result<()> {
    let cond = n.input_name(0).ok_or_else(|| n.err("If has no condition"))?;
    let Some(t) = cx.known(cond).and_then(|k| k.tensor()) else {
        return Err(n.unsupported("an If whose condition is computed at run time (control flow is not supported yet)"));
    };
    if t.numel() != 1 {
        return Err(n.err(format!("the condition of If has {} elements; it must have one", t.numel())));
    }
    let take = t.to_f32()[0] != 0.0;
    let which = if take { "then_branch" } else { "else_branch" };
    let g = n
        .p
        .attribute
        .iter()
        .find(|a| a.name() == which)
        .and_then(|a| a.g.as_ref())
        .ok_or_else(|| n.err(format!("If has no {which} graph")))?;
    let outs: Vec<&String> = n.p.output.iter().collect();
    if g.output.len() != outs.len() {
        return Err(n.err(format!("the {which} has {} outputs; the If has {}", g.output.len(), outs.len())));
    }
    for init in &g.initializer {
        cx.add_initializer(init.name(), tensor::from_proto(init, None).map_err(|e| n.err(format!("{which}: {e}")))?);
    }
    for node in &g.node {
        let b = NodeRef::new(node);
        if let Some(bad) = (0..b.num_inputs()).filter_map(|i| b.input_name(i)).find(|i| !cx.is_defined(i)) {
            return Err(b.err(format!("input `{bad}` is not defined before the node (in the {which} of If `{}`)", n.name)));
        }
        cx.begin(&b);
        import_node(cx, &b)?;
    }
    cx.begin(n);
    for (bo, o) in g.output.iter().zip(outs) {
        if o.is_empty() {
            continue;
        }
        if let Some(k) = cx.known(bo.name()).cloned() {
            cx.set_known(o, k);
            continue;
        }
        let v = cx.value_of(bo.name())?;
        // A value computed in the branch takes the If's output name; one of the
        // enclosing scope (or a branch initializer) keeps its own.
        if g.node.iter().any(|nd| nd.output.iter().any(|x| x == bo.name())) {
            cx.rename(v, o);
        }
        cx.set_value(o, v);
    }
    Ok(())
}
