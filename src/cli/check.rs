//! `smelt check MODEL`: parse, load the weights, verify, and show every value's type.

use super::{load_model, weight_bytes};
use smelt::ir::{Graph, Op};
use std::fmt::Write;
use std::path::Path;

pub fn main(model: &Path) -> anyhow::Result<()> {
    let g = load_model(model)?;
    print!("{}", listing(&g));
    println!("ok: {} nodes, {} params ({} bytes)", g.len(), g.params().len(), weight_bytes(&g));
    Ok(())
}

/// One line per node in topological order: `name: type = op(inputs)`.
fn listing(g: &Graph) -> String {
    let mut s = String::new();
    for id in g.topo_order().expect("a verified graph has no cycle") {
        let n = g.node(id);
        let outs: Vec<String> = n.names.iter().zip(&n.types).map(|(name, ty)| format!("{name}: {ty}")).collect();
        let rhs = match &n.op {
            Op::Input | Op::Param | Op::Const(_) => n.op.name().to_string(),
            op => {
                let ins: Vec<&str> = g.node_inputs(id).iter().map(|&v| g.value_name(v)).collect();
                format!("{}({})", op.name(), ins.join(", "))
            }
        };
        let _ = writeln!(s, "{} = {rhs}", outs.join(", "));
    }
    s
}
