//! The rewrite rules, one file per family (policy in `README.md`):
//! [`algebra`] (identities, constant canonicalization and broadcasting,
//! transpose/reshape cancellation and sinking, matmul reassociation), [`fusion`]
//! (conv + bias + activation + residual, matmul + epilogue, elementwise regions) and
//! [`patterns`] (layer norm, attention and GELU recognized from their
//! decompositions) and [`sparsity`] (constant weights with many zeros in
//! compressed form).
//!
//! Rules come in three shapes, all guarded the same way — a rewrite is merged into
//! the matched e-class only when the new e-node's type equals the class's type
//! ([`union_checked`]), so no rule can equate values of different shapes:
//! - [`rw`] / [`rw_if`]: pattern to pattern, optionally with a condition;
//! - [`rw_fn`]: a pattern whose right side is built in Rust (attributes, fresh
//!   constants, checks on e-classes);
//! - [`rw_op`]: every e-node of one op name whatever its attributes, rewritten in
//!   Rust.

pub mod algebra;
pub mod fusion;
pub mod patterns;
pub mod sparsity;

use crate::egraph::analysis::{EG, SmeltAnalysis};
use crate::egraph::lang::ENode;
use egg::{Applier, ENodeOrVar, Id, Language, Pattern, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use smelt_ir::{DType, Data, Op, Tensor, TensorType};
use std::sync::Arc;

/// A rule of smelt's e-graph.
pub type Rw = Rewrite<ENode, SmeltAnalysis>;

/// A rule family (one file each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Algebra,
    Fusion,
    Patterns,
    Sparsity,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Algebra, Family::Fusion, Family::Patterns, Family::Sparsity];

    pub fn name(self) -> &'static str {
        match self {
            Family::Algebra => "algebra",
            Family::Fusion => "fusion",
            Family::Patterns => "patterns",
            Family::Sparsity => "sparsity",
        }
    }

    pub fn rules(self) -> Vec<Rw> {
        match self {
            Family::Algebra => algebra::rules(),
            Family::Fusion => fusion::rules(),
            Family::Patterns => patterns::rules(),
            Family::Sparsity => sparsity::rules(),
        }
    }
}

/// The rules of the given families, in a fixed order.
pub fn rules(families: &[Family]) -> Vec<Rw> {
    families.iter().flat_map(|f| f.rules()).collect()
}

/// The name of every rule of every family.
pub fn rule_names() -> Vec<String> {
    rules(&Family::ALL).iter().map(|r| r.name.to_string()).collect()
}

// ---- reading e-classes ----

/// A pattern variable.
pub fn var(s: &str) -> Var {
    s.parse().expect("a pattern variable starts with `?`")
}

/// The type of a one-output e-class.
pub fn ty(eg: &EG, id: Id) -> Option<TensorType> {
    eg[id].data.ty().cloned()
}

/// The number every element of the class equals, if known.
pub fn uniform(eg: &EG, id: Id) -> Option<f32> {
    eg[id].data.uniform
}

/// A one-element constant's value (shape `[]`, `[1]`, `[1, 1]`…).
pub fn scalar(eg: &EG, id: Id) -> Option<f32> {
    let t = ty(eg, id)?;
    (t.shape.numel() == Some(1) && eg[id].data.is_const).then_some(())?;
    uniform(eg, id)
}

pub fn is_const(eg: &EG, id: Id) -> bool {
    eg[id].data.is_const
}

/// Uses of the class's value in the original graph (0 for a value new to the
/// e-graph, which only rules use).
pub fn uses(eg: &EG, id: Id) -> usize {
    eg[id].data.uses
}

/// Is `a` within a relative 1e-5 of `b`?
pub fn near(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

/// The IR ops named `name` in class `id`, with their (canonical) children.
pub fn ops_in(eg: &EG, id: Id, name: &str) -> Vec<(Op, Vec<Id>)> {
    ops_where(eg, id, |op| op.name() == name)
}

/// The IR ops in class `id` that satisfy `pred`, with their (canonical) children;
/// e-nodes that read their own class (`x = reshape(x)` once a no-op reshape is
/// merged) are left out.
pub fn ops_where(eg: &EG, id: Id, pred: impl Fn(&Op) -> bool) -> Vec<(Op, Vec<Id>)> {
    let me = eg.find(id);
    eg[id]
        .nodes
        .iter()
        .filter_map(|n| {
            let op = n.ir().filter(|op| pred(op))?;
            let kids: Vec<Id> = n.children.iter().map(|&c| eg.find(c)).collect();
            (!kids.contains(&me)).then(|| (op.clone(), kids))
        })
        .collect()
}

// ---- building ----

/// Adds `op(kids)` when it type-checks.
pub fn add_op(eg: &mut EG, op: Op, kids: Vec<Id>) -> Option<Id> {
    let tys: Vec<TensorType> = kids.iter().map(|&k| ty(eg, k)).collect::<Option<_>>()?;
    let refs: Vec<&TensorType> = tys.iter().collect();
    op.infer(&refs).ok()?;
    Some(eg.add(ENode::op(op, kids)))
}

/// Adds an inline constant.
pub fn add_const(eg: &mut EG, t: Tensor) -> Id {
    eg.add(ENode::op(Op::Const(Arc::new(t)), vec![]))
}

/// Adds a scalar constant of `dtype` (shape `[]`).
pub fn add_scalar(eg: &mut EG, dtype: DType, v: f32) -> Id {
    let t = Tensor::new(vec![], Data::from_f32(dtype, &[v])).expect("one element for a scalar");
    add_const(eg, t)
}

/// Merges `new` into `root` when their types agree; returns whether it merged.
pub fn union_checked(eg: &mut EG, root: Id, new: Id) -> bool {
    let (a, b) = (&eg[root].data.types, &eg[new].data.types);
    if a.is_none() || a != b {
        return false;
    }
    eg.union(root, new)
}

// ---- rule shapes ----

type Cond = fn(&EG, &Subst) -> bool;
/// Builds a right side in Rust from the matched class and substitution.
pub type ApplyFn = fn(&mut EG, Id, &Subst) -> Option<Id>;
/// Rewrites one e-node (`op` on `kids`) of the matched class.
pub type OpFn = fn(&mut EG, Id, &Op, &[Id]) -> Option<Id>;

fn pattern(s: &str) -> Pattern<ENode> {
    s.parse().unwrap_or_else(|e| panic!("bad pattern `{s}`: {e:?}"))
}

/// Pattern to pattern.
pub fn rw(name: &str, lhs: &str, rhs: &str) -> Rw {
    Rewrite::new(name, pattern(lhs), Guarded { lhs: pattern(lhs), rhs: pattern(rhs), cond: None }).unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// Pattern to pattern, when `cond` holds.
pub fn rw_if(name: &str, lhs: &str, rhs: &str, cond: Cond) -> Rw {
    Rewrite::new(name, pattern(lhs), Guarded { lhs: pattern(lhs), rhs: pattern(rhs), cond: Some(cond) })
        .unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// A pattern whose right side `f` builds.
pub fn rw_fn(name: &str, lhs: &str, f: ApplyFn) -> Rw {
    Rewrite::new(name, pattern(lhs), FnApplier { lhs: pattern(lhs), f }).unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// Every e-node named `op` (any attributes); `f` builds the right side.
pub fn rw_op(name: &str, op: &'static str, f: OpFn) -> Rw {
    rw_ops(name, vec![op], f)
}

/// Every e-node named one of `ops` (any attributes); `f` builds the right side.
pub fn rw_ops(name: &str, ops: Vec<&'static str>, f: OpFn) -> Rw {
    Rewrite::new(name, OpSearcher { names: ops.clone() }, OpApplier { names: ops, f }).unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

#[derive(Debug)]
struct Guarded {
    lhs: Pattern<ENode>,
    rhs: Pattern<ENode>,
    cond: Option<Cond>,
}

/// The matched left side's root e-node: a node of `class` that the pattern
/// `ast` matches under `subst` (found by walking the classes, not the hashcons,
/// which is stale between rebuilds), with canonical children.
fn matched(eg: &EG, ast: &PatternAst<ENode>, subst: &Subst, class: Id) -> Option<ENode> {
    let nodes = ast.as_ref();
    // Whether pattern node `i` matches some e-node of class `c` (`Some(node)`).
    fn at(eg: &EG, nodes: &[ENodeOrVar<ENode>], subst: &Subst, i: usize, c: Id) -> Option<ENode> {
        let ENodeOrVar::ENode(p) = &nodes[i] else { return None };
        eg[c].nodes.iter().find_map(|n| {
            if !n.matches(p) {
                return None;
            }
            let ok = n.children.iter().zip(p.children()).all(|(&nc, &pc)| match &nodes[usize::from(pc)] {
                ENodeOrVar::Var(v) => eg.find(nc) == eg.find(subst[*v]),
                ENodeOrVar::ENode(_) => at(eg, nodes, subst, usize::from(pc), eg.find(nc)).is_some(),
            });
            ok.then(|| n.clone().map_children(|c| eg.find(c)))
        })
    }
    at(eg, nodes, subst, nodes.len().checked_sub(1)?, eg.find(class))
}

/// Notes a rule's application for `EqSatReport::extracted`: the class it
/// merged into, the e-nodes made since `mark` (its products) and the left
/// side's e-node it matched.
fn note(eg: &mut EG, rule: Symbol, class: Id, mark: usize, lhs: Option<ENode>) {
    let products = eg.analysis.made[mark..].to_vec();
    eg.analysis.applications.push(crate::egraph::analysis::Application { rule: rule.to_string(), class, products, lhs });
}

impl Applier<ENode, SmeltAnalysis> for Guarded {
    fn apply_one(&self, eg: &mut EG, eclass: Id, subst: &Subst, _: Option<&PatternAst<ENode>>, rule: Symbol) -> Vec<Id> {
        if self.cond.is_some_and(|c| !c(eg, subst)) {
            return vec![];
        }
        let lhs = matched(eg, &self.lhs.ast, subst, eclass);
        let mark = eg.analysis.made.len();
        let id = eg.add_instantiation(&self.rhs.ast, subst);
        if union_checked(eg, eclass, id) {
            note(eg, rule, eclass, mark, lhs);
            vec![eclass]
        } else {
            vec![]
        }
    }
    fn vars(&self) -> Vec<Var> {
        self.rhs.vars()
    }
}

struct FnApplier {
    lhs: Pattern<ENode>,
    f: ApplyFn,
}

impl Applier<ENode, SmeltAnalysis> for FnApplier {
    fn apply_one(&self, eg: &mut EG, eclass: Id, subst: &Subst, _: Option<&PatternAst<ENode>>, rule: Symbol) -> Vec<Id> {
        let lhs = matched(eg, &self.lhs.ast, subst, eclass);
        let mark = eg.analysis.made.len();
        let Some(new) = (self.f)(eg, eclass, subst) else { return vec![] };
        if union_checked(eg, eclass, new) {
            note(eg, rule, eclass, mark, lhs);
            vec![eclass]
        } else {
            vec![]
        }
    }
}

/// The variables an [`OpSearcher`] binds: `?c0`, `?c1`, … for the children.
const MAX_KIDS: usize = 8;

fn kid_var(i: usize) -> Var {
    var(&format!("?c{i}"))
}

/// Matches every e-node with one of the given op names, binding its children.
#[derive(Debug, Clone)]
struct OpSearcher {
    names: Vec<&'static str>,
}

impl Searcher<ENode, SmeltAnalysis> for OpSearcher {
    fn search_eclass_with_limit(&self, eg: &EG, eclass: Id, limit: usize) -> Option<SearchMatches<'_, ENode>> {
        let substs: Vec<Subst> = eg[eclass]
            .nodes
            .iter()
            .filter(|n| self.names.contains(&n.name()) && n.children.len() <= MAX_KIDS)
            .take(limit)
            .map(|n| {
                let mut s = Subst::with_capacity(n.children.len());
                for (i, &c) in n.children.iter().enumerate() {
                    s.insert(kid_var(i), c);
                }
                s
            })
            .collect();
        (!substs.is_empty()).then_some(SearchMatches { eclass, substs, ast: None })
    }

    fn search_with_limit(&self, eg: &EG, limit: usize) -> Vec<SearchMatches<'_, ENode>> {
        let mut out = vec![];
        let mut left = limit;
        let mut ids: Vec<Id> = self.names.iter().filter_map(|n| eg.classes_for_op(n)).flatten().collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            if left == 0 {
                break;
            }
            if let Some(m) = self.search_eclass_with_limit(eg, id, left) {
                left -= m.substs.len();
                out.push(m);
            }
        }
        out
    }

    fn vars(&self) -> Vec<Var> {
        (0..MAX_KIDS).map(kid_var).collect()
    }
}

struct OpApplier {
    names: Vec<&'static str>,
    f: OpFn,
}

impl Applier<ENode, SmeltAnalysis> for OpApplier {
    fn apply_one(&self, eg: &mut EG, eclass: Id, subst: &Subst, _: Option<&PatternAst<ENode>>, rule: Symbol) -> Vec<Id> {
        let kids: Vec<Id> = (0..MAX_KIDS).map_while(|i| subst.get(kid_var(i)).map(|&c| eg.find(c))).collect();
        let ops: Vec<Op> = eg[eclass]
            .nodes
            .iter()
            .filter(|n| {
                self.names.contains(&n.name()) && n.children.len() == kids.len() && n.children.iter().zip(&kids).all(|(a, b)| eg.find(*a) == *b)
            })
            .filter_map(|n| n.ir().cloned())
            .collect();
        let mut changed = vec![];
        for op in ops {
            let mark = eg.analysis.made.len();
            if let Some(new) = (self.f)(eg, eclass, &op, &kids)
                && union_checked(eg, eclass, new)
            {
                note(eg, rule, eclass, mark, Some(ENode::op(op, kids.clone())));
                changed.push(eclass);
            }
        }
        changed
    }
}
