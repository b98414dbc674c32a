//! ONNX-ML TreeEnsembleRegressor and TreeEnsembleClassifier (what scikit-learn's
//! forests and boosted trees export to), as matrix products — the GEMM
//! formulation of tree inference — so every backend runs them.
//!
//! Every tree is padded to the largest tree's internal nodes (`I`) and leaves
//! (`L`). The input's features at all internal nodes are gathered at once and
//! compared with the thresholds (each node's rule; a NaN feature takes the
//! branch `nodes_missing_value_tracks_true` says): a 0/1 matrix `C`
//! `[T, N, I]`. A constant `[T, I, L]` matrix holds +1 where a leaf lies under
//! a node's true branch and −1 under its false one, so `C·A` plus the number of
//! false-branch ancestors counts, per leaf, the ancestors whose test goes its
//! way: the leaf reached is the one whose count equals its depth (exact in
//! f32). That one-hot `[T, N, L]` times the leaves' weights `[T, L, K]`,
//! summed over the trees (or averaged), plus `base_values`, is the output;
//! the classifier then applies its post transform and picks the labels as
//! ONNX's reference does (two classes given by one weight column included).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{ArgKind, ReduceKind};
use smelt_ir::{BinaryOp, DType, Dim, Op, Tensor, UnaryOp, Value};
use std::collections::HashMap;

type Out = Result<Vec<Value>>;

/// One tree: its internal nodes (positions in the node attributes) and, for
/// each leaf, its position and its path (internal-node slot, true branch?).
struct Tree {
    internal: Vec<usize>,
    leaves: Vec<(usize, Vec<(usize, bool)>)>,
}

/// A node's position in the attributes, by (tree id, node id).
type NodeIndex = HashMap<(i64, i64), usize>;

fn ints(n: &NodeRef, name: &str) -> Result<Vec<i64>> {
    n.ints(name)?.ok_or_else(|| n.err(format!("{name} is missing")))
}

/// The trees of the node attributes, in order of tree id.
fn trees(n: &NodeRef) -> Result<(Vec<Tree>, NodeIndex)> {
    if n.has_attr("nodes_values_as_tensor") || n.has_attr("base_values_as_tensor") {
        return Err(n.unsupported("double thresholds or base values (`*_as_tensor`)"));
    }
    let (tids, nids) = (ints(n, "nodes_treeids")?, ints(n, "nodes_nodeids")?);
    let (feats, trues, falses) = (ints(n, "nodes_featureids")?, ints(n, "nodes_truenodeids")?, ints(n, "nodes_falsenodeids")?);
    let modes = n.strings("nodes_modes")?.ok_or_else(|| n.err("nodes_modes is missing"))?;
    let m = tids.len();
    if [nids.len(), feats.len(), trues.len(), falses.len(), modes.len()].iter().any(|&l| l != m) {
        return Err(n.err("the nodes_* attributes differ in length"));
    }
    super::indexing::count(n, &[m])?;
    let at: NodeIndex = (0..m).map(|i| ((tids[i], nids[i]), i)).collect();
    let mut ids: Vec<i64> = tids.clone();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::with_capacity(ids.len());
    for &t in &ids {
        // The root: the tree's node no other node points to.
        let children: std::collections::HashSet<i64> =
            (0..m).filter(|&i| tids[i] == t && modes[i] != "LEAF").flat_map(|i| [trues[i], falses[i]]).collect();
        let root = (0..m).find(|&i| tids[i] == t && !children.contains(&nids[i])).ok_or_else(|| n.err(format!("tree {t} has no root")))?;
        let mut tree = Tree { internal: vec![], leaves: vec![] };
        let mut stack = vec![(root, Vec::<(usize, bool)>::new())];
        let mut steps = 0usize;
        while let Some((i, path)) = stack.pop() {
            steps += 1;
            if steps > m {
                return Err(n.err(format!("tree {t} is not a tree (a node is reached twice)")));
            }
            if modes[i] == "LEAF" {
                tree.leaves.push((i, path));
                continue;
            }
            let slot = tree.internal.len();
            tree.internal.push(i);
            for (child, dir) in [(trues[i], true), (falses[i], false)] {
                let c = *at.get(&(t, child)).ok_or_else(|| n.err(format!("tree {t}: node {child} does not exist")))?;
                let mut p = path.clone();
                p.push((slot, dir));
                stack.push((c, p));
            }
        }
        out.push(tree);
    }
    Ok((out, at))
}

/// The ensemble's summed (or averaged) leaf weights per output `[N, k]`, for
/// weights given as (tree id, node id, output, weight).
fn ensemble(cx: &mut Ctx, n: &NodeRef, x: Value, k: usize, weights: &[(i64, i64, usize, f32)], average: bool) -> Result<Value> {
    let (trees, at) = trees(n)?;
    let t = trees.len().max(1);
    let imax = trees.iter().map(|tr| tr.internal.len()).max().unwrap_or(0).max(1);
    let lmax = trees.iter().map(|tr| tr.leaves.len()).max().unwrap_or(0).max(1);
    super::indexing::count(n, &[t, imax, lmax])?;
    super::indexing::count(n, &[t, lmax, k])?;
    let feats = ints(n, "nodes_featureids")?;
    let modes = n.strings("nodes_modes")?.unwrap_or_default();
    let values = n.floats("nodes_values")?.ok_or_else(|| n.err("nodes_values is missing"))?;
    let missing = n.ints("nodes_missing_value_tracks_true")?.unwrap_or_default();
    let xd = cx.dims(x);
    let (rows, c) = match &xd[..] {
        [r, Dim::Fixed(c)] => (r.clone(), *c as usize),
        _ => return Err(n.err(format!("the input must be [N, C] with C fixed, found {}", cx.ty(x)))),
    };
    // Per padded internal slot: feature, threshold, rule, missing-goes-true.
    let (mut f, mut th, mut rule, mut miss) = (vec![0i64; t * imax], vec![0f32; t * imax], vec!["BRANCH_LEQ"; t * imax], vec![false; t * imax]);
    for (ti, tr) in trees.iter().enumerate() {
        for (s, &i) in tr.internal.iter().enumerate() {
            let fi = feats[i];
            if fi < 0 || fi as usize >= c {
                return Err(n.err(format!("node {i} tests feature {fi} of {c}")));
            }
            f[ti * imax + s] = fi;
            th[ti * imax + s] = *values.get(i).ok_or_else(|| n.err("nodes_values is too short"))?;
            rule[ti * imax + s] = modes[i].as_str();
            miss[ti * imax + s] = missing.get(i).is_some_and(|&v| v != 0);
        }
    }
    let x = cx.cast(x, DType::F32)?;
    let fk = cx.konst(Tensor::i64(vec![t * imax], f).map_err(|e| n.err(e.to_string()))?);
    let g = cx.op(Op::Gather { axis: 1 }, &[x, fk])?;
    let g = cx.reshape(g, &[rows, Dim::Fixed(t as u64), Dim::Fixed(imax as u64)])?;
    let g = cx.op(Op::Transpose { perm: Some(vec![1, 0, 2]) }, &[g])?;
    let thk = cx.konst(Tensor::f32(vec![t, 1, imax], th).map_err(|e| n.err(e.to_string()))?);
    // Each rule present, selected where its nodes are.
    let mut cond: Option<Value> = None;
    let mut kinds: Vec<&str> = rule.clone();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let b = match kind {
            "BRANCH_LEQ" => BinaryOp::LessEqual,
            "BRANCH_LT" => BinaryOp::Less,
            "BRANCH_GTE" => BinaryOp::GreaterEqual,
            "BRANCH_GT" => BinaryOp::Greater,
            "BRANCH_EQ" => BinaryOp::Equal,
            "BRANCH_NEQ" => BinaryOp::Equal,
            r => return Err(n.err(format!("unknown node mode `{r}`"))),
        };
        let mut r = cx.binary(b, g, thk)?;
        if kind == "BRANCH_NEQ" {
            r = cx.unary(UnaryOp::Not, r)?;
        }
        cond = Some(match cond {
            None => r,
            Some(prev) => {
                let mask: Vec<bool> = rule.iter().map(|&m| m == kind).collect();
                let mask = cx.konst(Tensor::new(vec![t, 1, imax], smelt_ir::Data::Bool(mask)).map_err(|e| n.err(e.to_string()))?);
                cx.op(Op::Where, &[mask, r, prev])?
            }
        });
    }
    let mut cond = cond.expect("at least one rule");
    // A NaN feature takes the branch its node says.
    let nan = cx.binary(BinaryOp::Equal, g, g)?;
    let nan = cx.unary(UnaryOp::Not, nan)?;
    let mk = cx.konst(Tensor::new(vec![t, 1, imax], smelt_ir::Data::Bool(miss)).map_err(|e| n.err(e.to_string()))?);
    cond = cx.op(Op::Where, &[nan, mk, cond])?;
    let cf = cx.cast(cond, DType::F32)?;
    // Paths: ±1 per (node, leaf), the false-branch ancestors and depth per leaf.
    let mut a = vec![0f32; t * imax * lmax];
    let (mut falses, mut depth) = (vec![0f32; t * lmax], vec![-1f32; t * lmax]);
    let mut vals = vec![0f32; t * lmax * k];
    let mut leaf_slot: HashMap<usize, (usize, usize)> = HashMap::new();
    for (ti, tr) in trees.iter().enumerate() {
        for (l, (i, path)) in tr.leaves.iter().enumerate() {
            leaf_slot.insert(*i, (ti, l));
            depth[ti * lmax + l] = path.len() as f32;
            for &(s, dir) in path {
                a[(ti * imax + s) * lmax + l] = if dir { 1.0 } else { -1.0 };
                if !dir {
                    falses[ti * lmax + l] += 1.0;
                }
            }
        }
    }
    for &(tid, nid, out, w) in weights {
        let i = at.get(&(tid, nid)).ok_or_else(|| n.err(format!("a weight names node {nid} of tree {tid}, which does not exist")))?;
        let &(ti, l) = leaf_slot.get(i).ok_or_else(|| n.err(format!("a weight names node {nid} of tree {tid}, which is not a leaf")))?;
        if out >= k {
            return Err(n.err(format!("a weight names output {out} of {k}")));
        }
        vals[(ti * lmax + l) * k + out] += w;
    }
    let konst = |cx: &mut Ctx, shape: Vec<usize>, v: Vec<f32>| -> Result<Value> { Ok(cx.konst(Tensor::f32(shape, v).map_err(|e| n.err(e.to_string()))?)) };
    let a = konst(cx, vec![t, imax, lmax], a)?;
    let falses = konst(cx, vec![t, 1, lmax], falses)?;
    let depth = konst(cx, vec![t, 1, lmax], depth)?;
    let vals = konst(cx, vec![t, lmax, k], vals)?;
    let s = cx.op(Op::MatMul, &[cf, a])?;
    let s = cx.binary(BinaryOp::Add, s, falses)?;
    let hit = cx.binary(BinaryOp::Equal, s, depth)?;
    let hit = cx.cast(hit, DType::F32)?;
    let y = cx.op(Op::MatMul, &[hit, vals])?;
    let kind = if average { ReduceKind::Mean } else { ReduceKind::Sum };
    let y = cx.op(Op::Reduce { kind, axes: vec![0], keepdims: false }, &[y])?;
    match n.floats("base_values")? {
        Some(b) if b.len() == k => {
            let b = konst(cx, vec![k], b)?;
            cx.binary(BinaryOp::Add, y, b)
        }
        Some(b) if b.is_empty() => Ok(y),
        Some(b) => Err(n.err(format!("{} base values for {k} outputs", b.len()))),
        None => Ok(y),
    }
}

fn aggregate(n: &NodeRef) -> Result<bool> {
    match n.string("aggregate_function")?.as_deref().unwrap_or("SUM") {
        "SUM" => Ok(false),
        "AVERAGE" => Ok(true),
        a => Err(n.unsupported(format!("aggregate_function {a}"))),
    }
}

pub fn tree_ensemble_regressor(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    if n.string("post_transform")?.as_deref().unwrap_or("NONE") != "NONE" {
        return Err(n.unsupported("a post transform other than NONE"));
    }
    let k = n.int("n_targets", 1)?;
    if !(1..=1 << 16).contains(&k) {
        return Err(n.err(format!("n_targets {k} is out of range")));
    }
    let (tids, nids, ids) = (ints(n, "target_treeids")?, ints(n, "target_nodeids")?, ints(n, "target_ids")?);
    let w = n.floats("target_weights")?.ok_or_else(|| n.err("target_weights is missing"))?;
    if [nids.len(), ids.len(), w.len()].iter().any(|&l| l != tids.len()) || ids.iter().any(|&i| i < 0) {
        return Err(n.err("the target_* attributes differ in length, or name a negative target"));
    }
    let weights: Vec<_> = (0..tids.len()).map(|i| (tids[i], nids[i], ids[i] as usize, w[i])).collect();
    Ok(vec![ensemble(cx, n, x, k as usize, &weights, aggregate(n)?)?])
}

pub fn tree_ensemble_classifier(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    if n.has_attr("classlabels_strings") {
        return Err(n.unsupported("string class labels (smelt has no string tensors)"));
    }
    let labels = n.ints("classlabels_int64s")?.ok_or_else(|| n.err("classlabels_int64s is missing"))?;
    let (tids, nids, ids) = (ints(n, "class_treeids")?, ints(n, "class_nodeids")?, ints(n, "class_ids")?);
    let w = n.floats("class_weights")?.ok_or_else(|| n.err("class_weights is missing"))?;
    if [nids.len(), ids.len(), w.len()].iter().any(|&l| l != tids.len()) || ids.iter().any(|&i| i < 0) {
        return Err(n.err("the class_* attributes differ in length, or name a negative class"));
    }
    let classes = labels.len().max(1);
    let weights: Vec<_> = (0..tids.len()).map(|i| (tids[i], nids[i], ids[i] as usize, w[i])).collect();
    let mut scores = ensemble(cx, n, x, classes, &weights, false)?;
    let transform = n.string("post_transform")?.unwrap_or_else(|| "NONE".into());
    // One weight column for two classes (the reference's `binary`): column 1 is
    // the score; column 0 its complement (1 − s) or, before a transform, −s.
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == 1 && classes == 2 {
        let one = cx.konst(Tensor::i64(vec![1], vec![distinct[0]]).expect("sized"));
        let s = cx.op(Op::Gather { axis: 1 }, &[scores, one])?;
        let other = if transform == "NONE" {
            let k1 = cx.scalar(1.0, DType::F32);
            cx.binary(BinaryOp::Sub, k1, s)?
        } else {
            cx.unary(UnaryOp::Neg, s)?
        };
        scores = cx.op(Op::Concat { axis: 1 }, &[other, s])?;
    }
    scores = match transform.as_str() {
        "NONE" => scores,
        "LOGISTIC" => cx.unary(UnaryOp::Sigmoid, scores)?,
        "SOFTMAX" => cx.op(Op::Softmax { axis: 1, log: false }, &[scores])?,
        t => return Err(n.unsupported(format!("post transform {t}"))),
    };
    let i = cx.op(Op::ArgReduce { kind: ArgKind::Max, axis: 1, keepdims: false }, &[scores])?;
    let table = cx.konst(Tensor::i64(vec![labels.len()], labels).map_err(|e| n.err(e.to_string()))?);
    let label = cx.op(Op::Gather { axis: 0 }, &[table, i])?;
    Ok(vec![label, scores])
}
