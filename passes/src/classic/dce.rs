//! Dead code elimination: removes every node that no graph output depends on
//! (graph inputs stay, being the signature), and the weights of removed params.

use super::prune_weights;
use crate::error::Result;
use crate::manager::{Pass, PassReport};
use smelt_ir::{Graph, NodeId, Op};
use std::collections::HashSet;

#[derive(Debug, Default, Clone, Copy)]
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let mut live: HashSet<NodeId> = HashSet::new();
        let mut stack: Vec<NodeId> = g.outputs().iter().map(|o| o.node).collect();
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                stack.extend(g.node_inputs(n).iter().map(|v| v.node));
            }
        }
        let dead: Vec<NodeId> = g.node_ids().filter(|id| !live.contains(id) && !matches!(g.node(*id).op, Op::Input)).collect();
        for &id in &dead {
            g.remove_node(id);
        }
        prune_weights(g);
        Ok(if dead.is_empty() { PassReport::default() } else { PassReport::note(format!("removed {} nodes", dead.len())) })
    }
}
