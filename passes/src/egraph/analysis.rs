//! The e-class analysis: every e-class knows its output types (dtype and shape, by
//! the ops' own inference), whether its value depends only on constants and params
//! (so constant folding will compute it before run time), the value of every
//! element when they are all one number (`uniform`: `0`, `1`, `0.5`, `√2`…), and how
//! many uses the value had in the original graph (fusion absorbs only values used
//! once, so that nothing is computed twice).
//!
//! Merging two e-classes checks that their types agree: a disagreement means a rule
//! equated values of different types, and is recorded as a conflict that fails the
//! pass (rules guard against it, see `rules::union_checked`).

use super::lang::{ENode, Head};
use egg::{Analysis, DidMerge, Id};
use smelt_ir::{Op, Tensor, TensorType};
use std::collections::HashMap;
use std::sync::Arc;

/// The e-graph of smelt.
pub type EG = egg::EGraph<ENode, SmeltAnalysis>;

/// The analysis, holding what leaves need: the types of inputs and params and the
/// values of params.
#[derive(Debug, Default)]
pub struct SmeltAnalysis {
    pub leaf_types: HashMap<Arc<str>, TensorType>,
    pub weights: HashMap<Arc<str>, Arc<Tensor>>,
    /// Merges of e-classes whose types disagreed (a bug in a rule).
    pub conflicts: Vec<String>,
    /// Every rule application that merged something (what
    /// `EqSatReport::extracted` looks for in the extracted graph).
    pub applications: Vec<Application>,
    /// The e-classes created so far, in order (each new e-node makes one):
    /// a rule application's products are those made while it ran.
    pub made: Vec<(Id, ENode)>,
    /// The compressed form of each constant weight the sparsity rules looked
    /// at (`None`: too few zeros), by the weight's address and transposition.
    pub sparse_forms: HashMap<(usize, bool), Option<Arc<SparseForm>>>,
}

/// A weight in `sparse_matmul` form: the op and its three params (name, value):
/// values, indices, offsets.
#[derive(Debug, Clone)]
pub struct SparseForm {
    pub op: smelt_ir::ops::SparseMatMul,
    pub params: [(String, Arc<Tensor>); 3],
}

/// One rule application: the class it merged into, the e-nodes it created
/// (each in its own new class; none when its right side already existed or is
/// a variable) and the left side's e-node it matched (children canonical then).
#[derive(Debug, Clone)]
pub struct Application {
    pub rule: String,
    pub class: Id,
    pub products: Vec<(Id, ENode)>,
    pub lhs: Option<ENode>,
}

/// What is known of an e-class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassData {
    /// One type per output; `None` when inference failed.
    pub types: Option<Vec<TensorType>>,
    /// The value depends only on params and constants.
    pub is_const: bool,
    /// Every element is this number.
    pub uniform: Option<f32>,
    /// Uses of the value in the original graph (consumer inputs and graph outputs).
    pub uses: usize,
}

impl ClassData {
    /// The type of a one-output class.
    pub fn ty(&self) -> Option<&TensorType> {
        match &self.types {
            Some(v) if v.len() == 1 => Some(&v[0]),
            _ => None,
        }
    }
}

/// The one number all elements of `t` equal, if so (floats only).
pub fn uniform_of(t: &Tensor) -> Option<f32> {
    if !t.dtype().is_float() || t.numel() == 0 || t.numel() > 1 << 20 {
        return None;
    }
    let v = t.to_f32();
    let first = v[0];
    v.iter().all(|x| x.to_bits() == first.to_bits()).then_some(first)
}

fn data_of(eg: &EG, id: Id) -> &ClassData {
    &eg[id].data
}

impl Analysis<ENode> for SmeltAnalysis {
    type Data = ClassData;

    fn make(eg: &mut EG, enode: &ENode, id: Id) -> ClassData {
        eg.analysis.made.push((id, enode.clone()));
        let mut d = ClassData { types: None, is_const: false, uniform: None, uses: 0 };
        match &enode.head {
            Head::Input(n) => d.types = eg.analysis.leaf_types.get(n).map(|t| vec![t.clone()]),
            Head::Param(n) => {
                d.types = eg.analysis.leaf_types.get(n).map(|t| vec![t.clone()]);
                d.is_const = true;
                d.uniform = eg.analysis.weights.get(n).and_then(|t| uniform_of(t));
            }
            Head::Get(k) => {
                let c = data_of(eg, enode.children[0]);
                d.types = c.types.as_ref().and_then(|v| v.get(*k)).map(|t| vec![t.clone()]);
                d.is_const = c.is_const;
            }
            Head::Op(op) => {
                if let Op::Const(t) = &**op {
                    d.types = Some(vec![t.tensor_type()]);
                    d.is_const = true;
                    d.uniform = uniform_of(t);
                    return d;
                }
                let kids: Vec<&ClassData> = enode.children.iter().map(|&c| data_of(eg, c)).collect();
                let tys: Option<Vec<&TensorType>> = kids.iter().map(|k| k.ty()).collect();
                d.types = tys.and_then(|t| op.infer(&t).ok());
                d.is_const = kids.iter().all(|k| k.is_const);
                let float = d.types.as_ref().is_some_and(|t| t.len() == 1 && t[0].dtype.is_float());
                if float {
                    d.uniform = match (&**op, kids.as_slice()) {
                        (Op::Unary(u), [a]) => a.uniform.map(|x| u.eval(x)),
                        (Op::Binary(b), [a, c]) if !b.is_comparison() && !b.is_logical() => {
                            a.uniform.zip(c.uniform).map(|(x, y)| b.eval(x, y))
                        }
                        (Op::Cast { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::Expand { .. }, [a]) => a.uniform,
                        _ => None,
                    };
                }
            }
        }
        d
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let mut changed_a = false;
        let mut changed_b = false;
        match (&a.types, &b.types) {
            (None, Some(_)) => {
                a.types = b.types.clone();
                changed_a = true;
            }
            (Some(_), None) => changed_b = true,
            (Some(x), Some(y)) if x != y => {
                let show = |v: &[TensorType]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
                self.conflicts.push(format!("merged e-classes of types ({}) and ({})", show(x), show(y)));
            }
            _ => {}
        }
        if b.is_const && !a.is_const {
            a.is_const = true;
            changed_a = true;
        } else if a.is_const && !b.is_const {
            changed_b = true;
        }
        match (a.uniform, b.uniform) {
            (None, Some(u)) => {
                a.uniform = Some(u);
                changed_a = true;
            }
            (Some(_), None) => changed_b = true,
            _ => {}
        }
        a.uses += b.uses;
        DidMerge(changed_a, changed_b)
    }
}
