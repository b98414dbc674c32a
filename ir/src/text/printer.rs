//! The canonical printer: one deterministic text per graph.

use crate::attr::AttrValue;
use crate::graph::Graph;
use crate::ops::Op;
use crate::tensor::Data;
use super::quote;
use std::fmt::Write;

/// Prints a graph in the text format. Nodes come in [`Graph::topo_order`]; each op
/// statement ends with a comment giving its inferred types.
pub fn print(g: &Graph) -> String {
    let mut s = String::new();
    for line in &g.doc {
        if line.is_empty() {
            s.push_str("#\n");
        } else {
            let _ = writeln!(s, "# {line}");
        }
    }
    let inputs: Vec<String> = g
        .inputs()
        .iter()
        .map(|&i| {
            let n = g.node(i);
            format!("{}: {}", quote(n.name()), n.types.first().map(|t| t.to_string()).unwrap_or_else(|| "?".into()))
        })
        .collect();
    let outputs: Vec<String> = g.outputs().iter().map(|&v| quote(g.value_name(v)).into_owned()).collect();
    let _ = writeln!(s, "graph {}({}) -> ({}) {{", g.name, inputs.join(", "), outputs.join(", "));
    let order = g.topo_order().unwrap_or_else(|| g.node_ids().collect());
    for id in order {
        let n = g.node(id);
        let ty = |i: usize| n.types.get(i).map(|t| t.to_string()).unwrap_or_else(|| "?".into());
        match &n.op {
            Op::Input => {}
            Op::Param => {
                let _ = writeln!(s, "  {} = param {}", quote(n.name()), ty(0));
            }
            Op::Const(t) => {
                let _ = writeln!(s, "  {} = const {} [{}]", quote(n.name()), ty(0), const_values(t.data()));
            }
            op => {
                let args: Vec<String> = g.node_inputs(id).iter().map(|&v| quote(g.value_name(v)).into_owned()).collect();
                let names: Vec<String> = n.names.iter().map(|x| quote(x).into_owned()).collect();
                let _ = write!(s, "  {} = {}({})", names.join(", "), op.name(), args.join(", "));
                let attrs = op.attrs();
                if !attrs.is_empty() {
                    let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    let _ = write!(s, " {{{}}}", a.join(", "));
                }
                if !n.types.is_empty() {
                    let t: Vec<String> = (0..n.types.len()).map(ty).collect();
                    let _ = write!(s, "  # {}", t.join(", "));
                }
                s.push('\n');
            }
        }
    }
    s.push_str("}\n");
    s
}

fn const_values(d: &Data) -> String {
    match d {
        Data::Bool(v) => v.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", "),
        Data::I8(_) | Data::U8(_) | Data::I32(_) | Data::I64(_) => {
            d.to_i64().iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        }
        _ => d.to_f32().iter().map(|&f| AttrValue::Float(f).to_string()).collect::<Vec<_>>().join(", "),
    }
}
