//! Common subexpression elimination: two nodes with the same op key (name,
//! attributes, and for constants the values) reading the same values compute the
//! same thing; the later one is replaced by the earlier. Graph outputs keep their
//! names: a duplicate that is a graph output is left alone.

use super::is_output;
use crate::error::Result;
use crate::manager::{Pass, PassReport};
use crate::opkey::op_key;
use smelt_ir::{Graph, NodeId, Op, Value};
use std::collections::HashMap;

#[derive(Debug, Default, Clone, Copy)]
pub struct Cse;

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let Some(order) = g.topo_order() else { return Ok(PassReport::default()) };
        let mut seen: HashMap<(String, Vec<Value>), NodeId> = HashMap::new();
        let mut merged = 0;
        for id in order {
            let n = g.node(id);
            if matches!(n.op, Op::Input | Op::Param) {
                continue;
            }
            let key = (op_key(&n.op), g.node_inputs(id));
            match seen.get(&key) {
                Some(&first) if !is_output(g, id) => {
                    for i in 0..g.node(id).names.len() {
                        g.replace_uses(Value { node: id, output: i }, Value { node: first, output: i });
                    }
                    g.remove_node(id);
                    merged += 1;
                }
                Some(_) => {}
                None => {
                    seen.insert(key, id);
                }
            }
        }
        Ok(if merged == 0 { PassReport::default() } else { PassReport::note(format!("merged {merged} nodes")) })
    }
}
