//! Extraction: choosing one e-node per e-class by the cost model.
//!
//! - [`greedy`]: bottom-up to a fixpoint, each e-class taking the e-node whose own
//!   time plus its children's best times is least (ties go to the first e-node in
//!   the class's sorted order, so the choice is deterministic).
//! - [`exact`]: for small e-graphs, a branch-and-bound search over the choices of
//!   the e-classes reachable from the roots, minimizing the time of the DAG (each
//!   chosen e-node counted once, shared values not double-counted). It falls back
//!   to the greedy choice when the search exceeds its budget.

use super::analysis::EG;
use super::cost::{CostModel, FOLDED};
use super::lang::{ENode, Head};
use egg::Id;
use smelt_ir::TensorType;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The chosen e-node of every e-class reachable from the roots.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub nodes: HashMap<Id, ENode>,
}

/// The own time of an e-node (its children's times excluded); `None` when the
/// node is ill-typed.
pub fn own_time(eg: &EG, model: &CostModel, n: &ENode) -> Option<f64> {
    let op = match &n.head {
        Head::Input(_) | Head::Param(_) | Head::Get(_) => return Some(0.0),
        Head::Op(op) => op,
    };
    if op.is_source() {
        return Some(0.0);
    }
    let kids: Vec<&TensorType> = n.children.iter().map(|&c| eg[c].data.ty()).collect::<Option<_>>()?;
    let outs = op.infer(&kids).ok()?;
    if n.children.iter().all(|&c| eg[c].data.is_const) {
        return Some(FOLDED);
    }
    Some(model.op_time(op, &kids, &outs))
}

/// Greedy bottom-up extraction (tree costs).
pub fn greedy(eg: &EG, model: &CostModel) -> Choice {
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    let own: HashMap<Id, Vec<Option<f64>>> =
        ids.iter().map(|&id| (id, eg[id].nodes.iter().map(|n| own_time(eg, model, n)).collect())).collect();
    let mut best: HashMap<Id, (f64, usize)> = HashMap::new();
    for _ in 0..1000 {
        let mut changed = false;
        for &id in &ids {
            let mut cand: Option<(f64, usize)> = None;
            for (i, n) in eg[id].nodes.iter().enumerate() {
                let Some(o) = own[&id][i] else { continue };
                let kids: Option<f64> = n.children.iter().map(|c| best.get(&eg.find(*c)).map(|b| b.0)).sum();
                let Some(k) = kids else { continue };
                let c = o + k;
                if cand.is_none_or(|(bc, _)| c < bc) {
                    cand = Some((c, i));
                }
            }
            if let Some(c) = cand
                && best.get(&id).is_none_or(|b| c.0 < b.0 || (c.0 == b.0 && c.1 != b.1 && c.1 < b.1))
            {
                best.insert(id, c);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Choice { nodes: best.into_iter().map(|(id, (_, i))| (id, eg[id].nodes[i].clone())).collect() }
}

/// The DAG time of a choice from `roots`: every reachable chosen node once.
pub fn dag_time(eg: &EG, model: &CostModel, choice: &Choice, roots: &[Id]) -> f64 {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    let mut total = 0.0;
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(n) = choice.nodes.get(&id) else { return f64::INFINITY };
        total += own_time(eg, model, n).unwrap_or(f64::INFINITY);
        stack.extend(n.children.iter().map(|&c| eg.find(c)));
    }
    total
}

/// Exact DAG extraction by branch and bound over the classes reachable from the
/// roots, starting from the greedy choice. `budget` bounds the nodes visited.
pub fn exact(eg: &EG, model: &CostModel, roots: &[Id], budget: usize) -> Choice {
    let start = greedy(eg, model);
    let mut best_time = dag_time(eg, model, &start, roots);
    let mut best = start.clone();
    // Classes reachable through any node; each with its candidates.
    let mut reach = BTreeSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    while let Some(id) = stack.pop() {
        if reach.insert(id) {
            for n in &eg[id].nodes {
                stack.extend(n.children.iter().map(|&c| eg.find(c)));
            }
        }
    }
    if reach.len() > 64 {
        return best;
    }
    let cands: BTreeMap<Id, Vec<(ENode, f64)>> = reach
        .iter()
        .map(|&id| (id, eg[id].nodes.iter().filter_map(|n| own_time(eg, model, n).map(|t| (n.clone(), t))).collect()))
        .collect();
    let mut visits = 0usize;
    let mut cur = Choice::default();
    let roots_c: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    let mut todo = roots_c.clone();
    search(eg, &cands, &roots_c, &mut cur, &mut todo, 0.0, &mut best_time, &mut best, &mut visits, budget);
    best
}

/// Does the choice reach each class from the roots without a cycle?
fn acyclic(eg: &EG, choice: &Choice, roots: &[Id]) -> bool {
    // 0: unseen, 1: on the path, 2: done.
    let mut state: HashMap<Id, u8> = HashMap::new();
    let mut stack: Vec<(Id, bool)> = roots.iter().map(|&r| (eg.find(r), false)).collect();
    while let Some((id, done)) = stack.pop() {
        if done {
            state.insert(id, 2);
            continue;
        }
        match state.get(&id) {
            Some(2) => continue,
            Some(1) => return false,
            _ => {}
        }
        let Some(n) = choice.nodes.get(&id) else { return false };
        state.insert(id, 1);
        stack.push((id, true));
        for &c in &n.children {
            let c = eg.find(c);
            if state.get(&c) == Some(&1) {
                return false;
            }
            stack.push((c, false));
        }
    }
    true
}

#[allow(clippy::too_many_arguments)]
fn search(
    eg: &EG,
    cands: &BTreeMap<Id, Vec<(ENode, f64)>>,
    roots: &[Id],
    cur: &mut Choice,
    todo: &mut Vec<Id>,
    time: f64,
    best_time: &mut f64,
    best: &mut Choice,
    visits: &mut usize,
    budget: usize,
) {
    *visits += 1;
    if *visits > budget || time >= *best_time {
        return;
    }
    // The next class that still needs a choice.
    let Some(next) = todo.iter().rev().find(|id| !cur.nodes.contains_key(id)).copied() else {
        if acyclic(eg, cur, roots) {
            *best_time = time;
            *best = cur.clone();
        }
        return;
    };
    for (n, t) in cands.get(&next).map(|v| v.as_slice()).unwrap_or(&[]) {
        let kids: Vec<Id> = n.children.iter().map(|&c| eg.find(c)).collect();
        if kids.contains(&next) {
            continue;
        }
        cur.nodes.insert(next, n.clone());
        let saved = todo.len();
        todo.extend(kids.iter().filter(|k| !cur.nodes.contains_key(k)));
        search(eg, cands, roots, cur, todo, time + t, best_time, best, visits, budget);
        todo.truncate(saved);
        cur.nodes.remove(&next);
    }
}
