//! Resolution of parsed statements into a [`Graph`]: names to values, attributes to
//! ops, literals to constants; then type inference. Every problem is collected.

use super::ast::{File, Lit, StmtKind};
use crate::attr::AttrReader;
use crate::dtype::DType;
use crate::error::{Diagnostic, Span};
use crate::graph::{Graph, Value};
use crate::ops::Op;
use crate::tensor::{Data, Tensor};
use crate::types::TensorType;
use std::collections::HashMap;

fn const_tensor(ty: &TensorType, lits: &[(Lit, Span)]) -> Result<Tensor, Diagnostic> {
    let shape = ty.shape.fixed().ok_or_else(|| Diagnostic::new(format!("a const needs a fixed shape, found {ty}")))?;
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(n) = n.filter(|&n| n == lits.len()) else {
        let n = n.map(|n| n.to_string()).unwrap_or_else(|| "too many".into());
        return Err(Diagnostic::new(format!("const of type {ty} needs {n} values, found {}", lits.len())));
    };
    let data = if ty.dtype.is_float() {
        let mut v = Vec::with_capacity(n);
        for (l, sp) in lits {
            v.push(match l {
                Lit::Int(i) => *i as f32,
                Lit::Float(f) => *f,
                Lit::Bool(_) => return Err(Diagnostic::new(format!("a {} const takes numbers, found a bool", ty.dtype)).at(Some(*sp))),
            });
        }
        Data::from_f32(ty.dtype, &v)
    } else if ty.dtype == DType::Bool {
        let mut v = Vec::with_capacity(n);
        for (l, sp) in lits {
            match l {
                Lit::Bool(b) => v.push(*b),
                _ => return Err(Diagnostic::new("a bool const takes `true` and `false`").at(Some(*sp))),
            }
        }
        Data::Bool(v)
    } else {
        let (lo, hi) = ty.dtype.int_range().expect("integer dtype");
        let mut v = Vec::with_capacity(n);
        for (l, sp) in lits {
            match l {
                Lit::Int(i) if *i >= lo && *i <= hi => v.push(*i),
                Lit::Int(i) => return Err(Diagnostic::new(format!("{i} does not fit {}", ty.dtype)).at(Some(*sp))),
                _ => return Err(Diagnostic::new(format!("a {} const takes integers", ty.dtype)).at(Some(*sp))),
            }
        }
        Data::from_i64(ty.dtype, &v)
    };
    Tensor::new(shape, data).map_err(|e| Diagnostic::new(e.to_string()))
}

/// Resolves names and builds the graph, then infers types. Every problem goes to
/// `errs`; values that failed are poisoned so their uses do not report again.
pub(super) fn build(f: File, errs: &mut Vec<Diagnostic>) -> Graph {
    let mut g = Graph::new(f.name);
    let mut env: HashMap<String, (Option<Value>, Span)> = HashMap::new();
    let define = |env: &mut HashMap<String, (Option<Value>, Span)>, errs: &mut Vec<Diagnostic>, name: &str, sp: Span, v: Option<Value>| {
        if let Some((_, prev)) = env.get(name) {
            errs.push(Diagnostic::new(format!("value `{name}` is already defined at {prev}")).node(name).at(Some(sp)));
            return false;
        }
        env.insert(name.to_string(), (v, sp));
        true
    };
    for (name, sp, ty) in f.inputs {
        let v = g.add_input(name.clone(), ty);
        g.node_mut(v.node).span = Some(sp);
        define(&mut env, errs, &name, sp, Some(v));
    }
    for s in f.stmts {
        let (first, sp) = s.names[0].clone();
        let node_err = |m: String| Diagnostic::new(m).node(first.clone()).at(Some(sp));
        let value: Option<Vec<Value>> = match s.kind {
            StmtKind::Broken => None,
            StmtKind::Param(ty) => {
                if s.names.len() != 1 {
                    errs.push(node_err("param binds one name".into()));
                    None
                } else {
                    let v = g.add_param(first.clone(), ty);
                    Some(vec![v])
                }
            }
            StmtKind::Const(ty, lits) => match const_tensor(&ty, &lits) {
                Ok(t) if s.names.len() == 1 => {
                    let v = g.add_const(first.clone(), t);
                    g.node_mut(v.node).types = vec![ty];
                    Some(vec![v])
                }
                Ok(_) => {
                    errs.push(node_err("const binds one name".into()));
                    None
                }
                Err(d) => {
                    errs.push(d.node(first.clone()).op("const").at(Some(sp)));
                    None
                }
            },
            StmtKind::Op { op, op_span, args, attrs } => {
                let mut reader = AttrReader::new(&op, &attrs);
                let parsed = Op::parse(&op, &mut reader);
                let attr_errs = reader.finish();
                let mut ok = true;
                let parsed = match parsed {
                    None => {
                        errs.push(
                            Diagnostic::new(format!("unknown op `{op}`{}", suggest(&op))).node(first.clone()).at(Some(op_span)),
                        );
                        None
                    }
                    Some(o) => {
                        for d in attr_errs {
                            errs.push(d.node(first.clone()).op(op.clone()).at(Some(op_span)));
                            ok = false;
                        }
                        Some(o)
                    }
                };
                let mut ins = Vec::new();
                for (a, asp) in &args {
                    match env.get(a) {
                        Some((Some(v), _)) => ins.push(*v),
                        Some((None, _)) => ok = false,
                        None => {
                            errs.push(Diagnostic::new(format!("unknown value `{a}`")).node(first.clone()).at(Some(*asp)));
                            ok = false;
                        }
                    }
                }
                match parsed {
                    Some(o) if o.num_outputs() != s.names.len() => {
                        errs.push(
                            Diagnostic::new(format!(
                                "{} produces {} output{}, but {} name{} bound",
                                o.name(),
                                o.num_outputs(),
                                if o.num_outputs() == 1 { "" } else { "s" },
                                s.names.len(),
                                if s.names.len() == 1 { " is" } else { "s are" }
                            ))
                            .node(first.clone())
                            .op(o.name())
                            .at(Some(sp)),
                        );
                        None
                    }
                    Some(o) if ok => {
                        let names = s.names.iter().map(|(n, _)| n.clone()).collect();
                        let id = g.add_node(o, &ins, names);
                        g.node_mut(id).span = Some(sp);
                        Some((0..s.names.len()).map(|i| Value { node: id, output: i }).collect())
                    }
                    _ => None,
                }
            }
        };
        if let Some(vs) = &value
            && let Some(id) = vs.first().map(|v| v.node)
            && g.node(id).span.is_none()
        {
            g.node_mut(id).span = Some(sp);
        }
        for (i, (n, nsp)) in s.names.iter().enumerate() {
            define(&mut env, errs, n, *nsp, value.as_ref().map(|v| v[i]));
        }
    }
    let mut outs = Vec::new();
    for (o, sp) in f.outputs {
        match env.get(&o) {
            Some((Some(v), _)) => outs.push(*v),
            Some((None, _)) => {}
            None => errs.push(Diagnostic::new(format!("output `{o}` names no value")).at(Some(sp))),
        }
    }
    if outs.is_empty() && errs.is_empty() {
        errs.push(Diagnostic::new(format!("graph `{}` has no outputs", g.name)));
    }
    g.set_outputs(outs);
    if let Err(ds) = g.infer() {
        errs.extend(ds.0);
    }
    g
}

/// " (did you mean `x`?)" for a near miss among the op names.
fn suggest(op: &str) -> String {
    let best = crate::ops::op_names()
        .into_iter()
        .map(|n| (edit_distance(op, n), n))
        .min()
        .filter(|(d, _)| *d <= 2);
    match best {
        Some((_, n)) => format!(" (did you mean `{n}`?)"),
        None => String::new(),
    }
}

/// Edit distance counting a swap of neighbours as one edit (Damerau), so that
/// `rleu` suggests `relu`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = (a[i - 1] != b[j - 1]) as usize;
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}
