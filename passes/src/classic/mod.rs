//! The classic passes, one file each, and the graph-editing helpers they share.
//!
//! | pass | what it does |
//! |---|---|
//! | `infer-types` | infers every value's type |
//! | `simplify-shapes` | cancels and merges reshapes and transposes, drops identities |
//! | `fold-batch-norm` | folds inference batch norm into the preceding conv / matmul / gemm |
//! | `split-conv` | a conv used only by a split of its output channels → one conv per chunk |
//! | `fold-constants` | evaluates nodes whose inputs are all known constants |
//! | `cse` | merges nodes that compute the same op on the same inputs |
//! | `dce` | removes nodes that no output depends on |

mod batchnorm;
mod cse;
mod dce;
pub mod eval;
mod fold;
mod shapes;
mod split_conv;
pub use shapes::{perm_of, spec_of};

pub use batchnorm::FoldBatchNorm;
pub use cse::Cse;
pub use dce::Dce;
pub use fold::FoldConstants;
pub use shapes::SimplifyShapes;
pub use split_conv::SplitConv;

use crate::error::Result;
use crate::manager::{Pass, PassReport};
use smelt_ir::{Graph, NodeId, Op, Tensor, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// Infers every node's output types from its inputs.
#[derive(Debug, Default, Clone, Copy)]
pub struct InferTypes;

impl Pass for InferTypes {
    fn name(&self) -> &'static str {
        "infer-types"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        g.infer()?;
        Ok(PassReport::default())
    }
}

/// The value of `v` when it is known now: an inline constant or a param with a weight.
/// A weight that does not fit its param's type (a graph built without checks) is
/// not known.
pub fn known_value(g: &Graph, v: Value) -> Option<Arc<Tensor>> {
    let t = match &g.node(v.node).op {
        Op::Const(t) => t.clone(),
        Op::Param => g.weight(g.node(v.node).name()).cloned()?,
        _ => return None,
    };
    let ty = g.value_type(v)?;
    (t.fits(ty) && ty.shape.is_fixed() && ty.quant.is_none()).then_some(t)
}

/// Is any output of `id` a graph output?
pub fn is_output(g: &Graph, id: NodeId) -> bool {
    g.outputs().iter().any(|o| o.node == id)
}

/// A name not used by any value of `g`, built from `base`.
pub fn fresh_name(g: &Graph, base: &str) -> String {
    let taken: HashSet<&str> = g.node_ids().flat_map(|i| g.node(i).names.iter().map(String::as_str)).collect();
    if !taken.contains(base) {
        return base.to_string();
    }
    (1..).map(|k| format!("{base}_{k}")).find(|n| !taken.contains(n.as_str())).expect("some name is free")
}

/// Replaces node `old` by a new node computing `op` on `inputs`, which takes over
/// the old node's names and users (graph outputs included). Types are inferred.
pub fn replace_node(g: &mut Graph, old: NodeId, op: Op, inputs: &[Value]) -> NodeId {
    let names = g.node(old).names.clone();
    let tmp: Vec<String> = (0..names.len()).map(|i| fresh_name(g, &format!("{}__new{i}", names[0]))).collect();
    let new = g.add_node(op, inputs, tmp);
    for i in 0..names.len() {
        g.replace_uses(Value { node: old, output: i }, Value { node: new, output: i });
    }
    g.remove_node(old);
    g.node_mut(new).names = names;
    // Inputs were typed; a failure here is caught by the verifier after the pass.
    let _ = g.infer_node(new);
    new
}

/// Replaces node `old` by a new source (a param with a weight, or an inline const
/// for small values) holding `value`, under the old node's name.
pub fn replace_with_value(g: &mut Graph, old: NodeId, value: Tensor) -> NodeId {
    let name = g.node(old).name().to_string();
    let tmp = fresh_name(g, &format!("{name}__folded"));
    let v = if value.numel() <= 1 {
        g.add_const(tmp, value)
    } else {
        let ty = value.tensor_type();
        let v = g.add_param(tmp.clone(), ty);
        g.set_weight(name.clone(), value);
        v
    };
    g.replace_uses(Value { node: old, output: 0 }, v);
    g.remove_node(old);
    g.node_mut(v.node).names = vec![name];
    v.node
}

/// A new param named after `base` (made unique) holding `t`.
pub fn add_weight(g: &mut Graph, base: &str, t: Tensor) -> Value {
    let name = fresh_name(g, base);
    let v = g.add_param(name.clone(), t.tensor_type());
    g.set_weight(name, t);
    v
}

/// Drops the weights that name no param of the graph.
pub fn prune_weights(g: &mut Graph) {
    let params: HashSet<String> = g.params().iter().map(|&p| g.node(p).name().to_string()).collect();
    if g.weights().keys().all(|k| params.contains(k)) {
        return;
    }
    let keep: Vec<(String, Arc<Tensor>)> =
        g.weights().iter().filter(|(k, _)| params.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    g.clear_weights();
    for (k, v) in keep {
        g.set_weight(k, v);
    }
}
