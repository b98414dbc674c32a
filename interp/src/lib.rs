//! smelt-interp: the reference interpreter — the oracle every backend, pass and
//! rewrite is tested against — and seeded random weights and inputs ([`init`]).
//! It depends on `smelt-ir` alone, so the optimizer's and the frontends' tests use
//! it without building a code generator.
//!
//! The interpreter evaluates a graph node by node in topological order with naive,
//! obviously-correct code, one file per op family (mirroring `ir/src/ops/`). Floats
//! are computed in f32 (accumulations in f64 where that is the simpler
//! obviously-right choice) and stored in the node's dtype.

pub mod compare;
pub mod error;
pub mod init;
mod attention;
mod conv;
mod elementwise;
mod fused;
mod linalg;
mod norm;
mod pool;
mod quant;
mod recurrent;
mod reduce;
mod resize;
mod routing;
mod shape;
mod sparse;
pub mod util;

pub use crate::error::{Error, Result};

/// Named tensors: a graph's inputs or outputs.
pub type Tensors = BTreeMap<String, Tensor>;
use smelt_ir::ops::Family;
use smelt_ir::{Bindings, Dim, Graph, Op, Tensor, TensorType, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One input of a node: its value and its type (the type carries quantization
/// parameters).
#[derive(Debug, Clone, Copy)]
pub struct Arg<'a> {
    pub value: &'a Tensor,
    pub ty: &'a TensorType,
}

/// Evaluates one op on concrete inputs; `out` holds the node's output types (fixed
/// shapes). Errors are messages; the caller adds the node.
pub fn eval_op(op: &Op, ins: &[Arg], out: &[TensorType]) -> std::result::Result<Vec<Tensor>, String> {
    match op.family() {
        Family::Source => Err(format!("{} is a source, not evaluated", op.name())),
        Family::Elementwise => elementwise::eval(op, ins, out),
        Family::Linalg => linalg::eval(op, ins, out),
        Family::Conv => conv::eval(op, ins, out),
        Family::Pool => pool::eval(op, ins, out),
        Family::Norm => norm::eval(op, ins, out),
        Family::Reduce => reduce::eval(op, ins, out),
        Family::Shape => shape::eval(op, ins, out),
        Family::Resize => resize::eval(op, ins, out),
        Family::Recurrent => recurrent::eval(op, ins, out),
        Family::Attention => attention::eval(op, ins, out),
        Family::Quant => quant::eval(op, ins, out),
        Family::Sparse => sparse::eval(op, ins, out),
        Family::Routing => routing::eval(op, ins, out),
        Family::Fused => fused::eval(op, ins, out),
    }
}

/// Runs a data-dependent op ([`Op::is_data_dependent`]: `nonzero`, `nms`,
/// `unique`) on host tensors, as the interpreter does and the compiled backends
/// do between their stages. The outputs must fit `types` (the node's, as
/// bound): their symbolic dims — the counts — are recorded in `b`, and a fixed
/// dim the data contradicts is an error.
pub fn eval_host(op: &Op, ins: &[&Tensor], types: &[TensorType], b: &mut Bindings) -> std::result::Result<Vec<Tensor>, String> {
    let outs = match (op, ins) {
        (Op::NonZero { .. }, [x]) => vec![shape::nonzero(x)],
        (Op::Nms(n), [boxes, scores]) => vec![routing::nms(n, boxes, scores)],
        (Op::Unique(u), [x]) => routing::unique(u, x)?,
        _ => return Err(format!("{} is not run on the host with {} inputs", op.name(), ins.len())),
    };
    for (t, ty) in outs.iter().zip(types) {
        for (d, &size) in ty.dims().iter().zip(t.shape()) {
            match d {
                Dim::Sym(s) => {
                    b.insert(s.to_string(), size as u64);
                }
                Dim::Fixed(f) if *f as usize != size => {
                    return Err(format!("gave {:?} where the graph was bound for {ty}", t.shape()));
                }
                Dim::Fixed(_) => {}
            }
        }
    }
    Ok(outs)
}

/// Matches `inputs` to the graph's inputs by name and binds the symbolic dims.
/// Every mismatch is reported at once.
pub fn bind_inputs(g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<Bindings> {
    let mut problems = Vec::new();
    let mut b = Bindings::new();
    for &id in g.inputs() {
        let n = g.node(id);
        let ty = &n.types[0];
        let Some(t) = inputs.get(n.name()) else {
            problems.push(format!("missing input `{}` ({ty})", n.name()));
            continue;
        };
        if t.dtype() != ty.dtype || t.rank() != ty.rank() {
            problems.push(format!("input `{}` is {}{:?}, expected {ty}", n.name(), t.dtype(), t.shape()));
            continue;
        }
        for (d, &size) in ty.dims().iter().zip(t.shape()) {
            match d {
                Dim::Fixed(f) if *f as usize != size => {
                    problems.push(format!("input `{}` is {}{:?}, expected {ty}", n.name(), t.dtype(), t.shape()));
                    break;
                }
                Dim::Sym(s) => match b.get(&**s) {
                    Some(&prev) if prev as usize != size => {
                        problems.push(format!(
                            "input `{}` gives {s} = {size}, but an earlier input gave {s} = {prev}",
                            n.name()
                        ));
                        break;
                    }
                    _ => {
                        b.insert(s.to_string(), size as u64);
                    }
                },
                _ => {}
            }
        }
    }
    let known: Vec<&str> = g.inputs().iter().map(|&i| g.node(i).name()).collect();
    for name in inputs.keys() {
        if !known.contains(&name.as_str()) {
            problems.push(format!("`{name}` is not an input of graph {} (inputs: {})", g.name, known.join(", ")));
        }
    }
    if problems.is_empty() { Ok(b) } else { Err(Error::Inputs(problems.join("\n"))) }
}

/// Runs the graph on named inputs; returns the outputs by name.
pub fn run(g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>> {
    let source = g;
    let mut b = bind_inputs(g, inputs)?;
    let mut g = g.bind(&b).map_err(|d| Error::Ir(d.into()))?;
    let order = g.topo_order().ok_or_else(|| Error::Inputs(format!("graph {} has a cycle", g.name)))?;
    let mut env: HashMap<Value, Arc<Tensor>> = HashMap::new();
    for id in order {
        let n = g.node(id);
        let node_err = |message: String| Error::Node { node: n.name().to_string(), op: n.op.name().to_string(), message };
        if n.op.is_data_dependent() {
            // The data binds the count: the rest of the graph is re-bound with it.
            let ins: Vec<&Tensor> = g.node_inputs(id).iter().map(|v| &*env[v]).collect();
            let outs = eval_host(&n.op, &ins, &n.types, &mut b).map_err(node_err)?;
            for (i, t) in outs.into_iter().enumerate() {
                env.insert(Value { node: id, output: i }, Arc::new(t));
            }
            g = source.bind(&b).map_err(|d| Error::Ir(d.into()))?;
            continue;
        }
        let outs: Vec<Arc<Tensor>> = match &n.op {
            Op::Input => vec![Arc::new(inputs[n.name()].clone())],
            Op::Param => vec![g.weight(n.name()).cloned().ok_or_else(|| node_err(format!("no weight named `{}`", n.name())))?],
            Op::Const(t) => vec![t.clone()],
            op => {
                let vals: Vec<Value> = g.node_inputs(id);
                let tys: Vec<TensorType> = vals.iter().map(|v| g.value_type(*v).expect("inferred").clone()).collect();
                let args: Vec<Arg> = vals.iter().zip(&tys).map(|(v, ty)| Arg { value: &env[v], ty }).collect();
                let res = eval_op(op, &args, &n.types).map_err(node_err)?;
                if res.len() != n.types.len() {
                    return Err(node_err(format!("produced {} outputs, expected {}", res.len(), n.types.len())));
                }
                for (t, ty) in res.iter().zip(&n.types) {
                    if !t.fits(ty) {
                        return Err(node_err(format!(
                            "interpreter bug: produced {}{:?}, expected {ty}",
                            t.dtype(),
                            t.shape()
                        )));
                    }
                }
                res.into_iter().map(Arc::new).collect()
            }
        };
        for (i, t) in outs.into_iter().enumerate() {
            env.insert(Value { node: id, output: i }, t);
        }
    }
    Ok(g.outputs().iter().map(|v| (g.value_name(*v).to_string(), (*env[v]).clone())).collect())
}
