//! Extraction: choosing one e-node per e-class by the cost model.
//!
//! - [`greedy`]: bottom-up, each e-class taking the e-node whose own time plus
//!   its children's best times is least, settled cheapest first so that the
//!   choice is acyclic (ties go to the first e-node in the class's sorted order,
//!   so the choice is deterministic).
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

/// Greedy bottom-up extraction (tree costs), in Knuth's generalization of
/// Dijkstra's algorithm: an e-class is settled, cheapest first, by an e-node all
/// of whose children are settled already, so the choice is acyclic by
/// construction — a fixpoint over the classes could close a cycle through
/// e-nodes of zero time (a tuple's `get`, a folded constant) on a tie. Ties go to
/// the lower e-class, then to the first e-node in the class's sorted order, so
/// the choice is deterministic.
pub fn greedy(eg: &EG, model: &CostModel) -> Choice {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    /// A heap entry: (time, class, node index), least first.
    #[derive(PartialEq)]
    struct Entry(f64, Id, usize);
    impl Eq for Entry {}
    impl PartialOrd for Entry {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Entry {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0.total_cmp(&o.0).then(self.1.cmp(&o.1)).then(self.2.cmp(&o.2))
        }
    }
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    // Each e-node's own time, its distinct child classes, and how many of them
    // are not settled yet; each class's parents as (class, node index).
    let mut own: HashMap<(Id, usize), f64> = HashMap::new();
    let mut pending: HashMap<(Id, usize), usize> = HashMap::new();
    let mut parents: HashMap<Id, Vec<(Id, usize)>> = HashMap::new();
    let mut heap = BinaryHeap::new();
    for &id in &ids {
        for (i, n) in eg[id].nodes.iter().enumerate() {
            let Some(o) = own_time(eg, model, n) else { continue };
            let kids: BTreeSet<Id> = n.children.iter().map(|&c| eg.find(c)).collect();
            own.insert((id, i), o);
            pending.insert((id, i), kids.len());
            if kids.is_empty() {
                heap.push(Reverse(Entry(o, id, i)));
            }
            for k in kids {
                parents.entry(k).or_default().push((id, i));
            }
        }
    }
    let mut best: HashMap<Id, (f64, usize)> = HashMap::new();
    while let Some(Reverse(Entry(t, id, i))) = heap.pop() {
        if best.contains_key(&id) {
            continue;
        }
        best.insert(id, (t, i));
        for &(p, j) in parents.get(&id).map(Vec::as_slice).unwrap_or_default() {
            let left = pending.get_mut(&(p, j)).expect("a typed parent");
            *left -= 1;
            if *left == 0 && !best.contains_key(&p) {
                let kids: f64 = eg[p].nodes[j].children.iter().map(|&c| best[&eg.find(c)].0).sum();
                heap.push(Reverse(Entry(own[&(p, j)] + kids, p, j)));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::ops::{Op, UnaryOp};

    /// An e-graph whose classes, in id order, run against the data: class `i`
    /// (`exp` or the cheaper `relu` of class `i - 1`) has a larger id than class
    /// `i + 1`. A fixpoint sweeping the classes in id order settles one class
    /// per sweep; the 1,000-sweep fixpoint this extractor replaced left the top
    /// of such a chain without a choice.
    #[test]
    fn deep_chains_against_id_order_are_extracted_whole() {
        const N: usize = 1500;
        let mut eg = EG::default();
        eg.analysis.leaf_types.insert("x".into(), TensorType::f32([4]));
        let x = eg.add(ENode::input("x"));
        let mut chain = vec![x];
        for i in 1..=N {
            let prev = chain[i - 1];
            chain.push(eg.add(ENode::op(Op::Unary(UnaryOp::Exp), vec![prev])));
        }
        for i in (1..=N).rev() {
            let alt = eg.add(ENode::op(Op::Unary(UnaryOp::Relu), vec![chain[i - 1]]));
            // Unused parents make `alt`'s class the larger, so its (descending)
            // id becomes the merged class's.
            for u in [UnaryOp::Neg, UnaryOp::Tanh, UnaryOp::Sigmoid] {
                eg.add(ENode::op(Op::Unary(u), vec![alt]));
            }
            eg.union(chain[i], alt);
        }
        eg.rebuild();
        let top = eg.find(chain[N]);
        let model = CostModel::default();
        assert!(eg.find(chain[1]) > top, "the chain's ids should run against it for this test to mean anything");
        let choice = greedy(&eg, &model);
        assert!(acyclic(&eg, &choice, &[top]));
        // Every class of the chain is there, and took `relu`.
        let mut id = top;
        for _ in 0..N {
            let n = &choice.nodes[&id];
            assert!(matches!(&n.head, Head::Op(op) if matches!(**op, Op::Unary(UnaryOp::Relu))), "{n:?}");
            id = eg.find(n.children[0]);
        }
        assert_eq!(id, eg.find(x));
        let relu = own_time(&eg, &model, &ENode::op(Op::Unary(UnaryOp::Relu), vec![x])).expect("typed");
        let t = dag_time(&eg, &model, &choice, &[top]);
        assert!((t - N as f64 * relu).abs() <= 1e-9 * t, "{t} vs {}", N as f64 * relu);
    }
}
