//! Magnitude pruning of the linear layers' weights (`smelt prune`): the
//! smallest weights — or blocks of weights, or all but N of every M — become
//! exact zeros, per layer or with one threshold over every layer (`global`).
//! The graph's ops do not change: the zeros are what the sparsity rules
//! (`rules::sparsity`) find, so a pruned model and an imported one that already
//! holds zeros go the same way, and the cost model decides per layer whether
//! the compressed form pays.
//!
//! Patterns are named on the weight as PyTorch holds a linear layer's,
//! `[out, in]` (a matmul's `W[K, N]` is `[in, out]`): `block:RxC` is R output
//! features × C inputs (TVM's `bsr_dense` blocks; `16x1` is 16 outputs at one
//! input), `nm:N:M` keeps the N largest of every M consecutive inputs of each
//! output (2:4 as NVIDIA's sparse tensor cores). Blocks are scored by their
//! mean magnitude. A layer's achieved sparsity counts every zero, the ones it
//! had before included.

use smelt_ir::{DType, Graph, NodeId, Op, Tensor};
use std::sync::Arc;

/// Which weights go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Unstructured,
    /// `out` output features × `inp` inputs.
    Block { out: usize, inp: usize },
    /// Keep `n` of every `m` consecutive inputs.
    NofM { n: usize, m: usize },
}

impl std::str::FromStr for Pattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Pattern, String> {
        let bad = || format!("pattern `{s}`: expected unstructured, block:RxC (e.g. block:16x1) or nm:N:M (e.g. nm:2:4)");
        if s == "unstructured" {
            return Ok(Pattern::Unstructured);
        }
        if let Some(b) = s.strip_prefix("block:") {
            let (r, c) = b.split_once(['x', '×']).ok_or_else(bad)?;
            let (out, inp): (usize, usize) = (r.trim().parse().map_err(|_| bad())?, c.trim().parse().map_err(|_| bad())?);
            if out == 0 || inp == 0 {
                return Err(format!("pattern `{s}`: a block needs positive sides"));
            }
            return Ok(Pattern::Block { out, inp });
        }
        if let Some(b) = s.strip_prefix("nm:") {
            let (n, m) = b.split_once(':').ok_or_else(bad)?;
            let (n, m): (usize, usize) = (n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?);
            if m == 0 || n >= m {
                return Err(format!("pattern `{s}`: N:M needs 0 ≤ N < M (N = M would prune nothing)"));
            }
            return Ok(Pattern::NofM { n, m });
        }
        Err(bad())
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Unstructured => f.write_str("unstructured"),
            Pattern::Block { out, inp } => write!(f, "block:{out}x{inp}"),
            Pattern::NofM { n, m } => write!(f, "nm:{n}:{m}"),
        }
    }
}

/// A prunable layer: a matmul, gemm or fused matmul whose second operand is a
/// 2-d f32 param with a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub node: NodeId,
    /// The node's name.
    pub name: String,
    pub op: &'static str,
    /// The weight param's name.
    pub weight: String,
    /// `[out, in]`.
    pub out_in: [usize; 2],
    /// Whether the stored weight is `[out, in]` (a gemm with `trans_b`), else `[in, out]`.
    pub out_major: bool,
}

/// The prunable layers of `g`, in topological order.
pub fn layers(g: &Graph) -> Vec<Layer> {
    let Some(order) = g.topo_order() else { return vec![] };
    let mut out = vec![];
    for id in order {
        let n = g.node(id);
        let out_major = match &n.op {
            Op::MatMul | Op::FusedMatMul { .. } => false,
            Op::Gemm(gm) if !gm.trans_a => gm.trans_b,
            _ => continue,
        };
        let Some(&w) = g.node_inputs(id).get(1) else { continue };
        let wn = g.node(w.node);
        if !matches!(wn.op, Op::Param) {
            continue;
        }
        let Some(t) = g.weight(wn.name()) else { continue };
        if t.dtype() != DType::F32 || t.rank() != 2 {
            continue;
        }
        let (a, b) = (t.shape()[0], t.shape()[1]);
        out.push(Layer { node: id, name: n.name().to_string(), op: n.op.name(), weight: wn.name().to_string(), out_in: if out_major { [a, b] } else { [b, a] }, out_major });
    }
    out
}

/// The share of zeros in a tensor.
pub fn sparsity(t: &Tensor) -> f64 {
    let v = t.to_f32();
    if v.is_empty() {
        return 0.0;
    }
    v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64
}

/// Checks that `pattern` fits the layer's weight.
pub fn check(l: &Layer, pattern: Pattern) -> Result<(), String> {
    let [o, i] = l.out_in;
    match pattern {
        Pattern::Block { out, inp } if !o.is_multiple_of(out) || !i.is_multiple_of(inp) => Err(format!(
            "block {out}x{inp} does not divide the weight `{}` of node `{}` ({o} outputs × {i} inputs)",
            l.weight, l.name
        )),
        Pattern::NofM { m, .. } if !i.is_multiple_of(m) => {
            Err(format!("N:M groups of {m} do not divide the {i} inputs of node `{}` (weight `{}`)", l.name, l.weight))
        }
        _ => Ok(()),
    }
}

/// One group of weights that is kept or zeroed together: its score and the
/// flat positions in the stored tensor.
struct Groups {
    scores: Vec<f32>,
    members: Vec<Vec<usize>>,
}

fn groups(l: &Layer, t: &Tensor, pattern: Pattern) -> Groups {
    let v = t.to_f32();
    let [o, i] = l.out_in;
    // Flat index of weight (out r, in c) in the stored layout.
    let at = |r: usize, c: usize| if l.out_major { r * i + c } else { c * o + r };
    let (bo, bi) = match pattern {
        Pattern::Unstructured | Pattern::NofM { .. } => (1, 1),
        Pattern::Block { out, inp } => (out, inp),
    };
    let mut g = Groups { scores: vec![], members: vec![] };
    for r0 in (0..o).step_by(bo) {
        for c0 in (0..i).step_by(bi) {
            let m: Vec<usize> = (r0..r0 + bo).flat_map(|r| (c0..c0 + bi).map(move |c| (r, c))).map(|(r, c)| at(r, c)).collect();
            let s = m.iter().map(|&p| v[p].abs()).sum::<f32>() / m.len() as f32;
            g.scores.push(s);
            g.members.push(m);
        }
    }
    g
}

/// Zeroes the `count` lowest-scoring groups (ties by position).
fn zero_lowest(v: &mut [f32], g: &Groups, count: usize) {
    let mut order: Vec<usize> = (0..g.scores.len()).collect();
    order.sort_by(|&a, &b| g.scores[a].total_cmp(&g.scores[b]).then(a.cmp(&b)));
    for &gi in order.iter().take(count) {
        for &p in &g.members[gi] {
            v[p] = 0.0;
        }
    }
}

/// The pruned weight of one layer at `target` sparsity (per layer).
pub fn prune_layer(l: &Layer, t: &Tensor, pattern: Pattern, target: f64) -> Result<Tensor, String> {
    check(l, pattern)?;
    let mut v = t.to_f32();
    match pattern {
        Pattern::NofM { n, m } => {
            let [o, i] = l.out_in;
            for r in 0..o {
                for c0 in (0..i).step_by(m) {
                    let mut idx: Vec<usize> = (c0..c0 + m).map(|c| if l.out_major { r * i + c } else { c * o + r }).collect();
                    idx.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()).then(a.cmp(&b)));
                    for &p in &idx[n..] {
                        v[p] = 0.0;
                    }
                }
            }
        }
        _ => {
            let g = groups(l, t, pattern);
            zero_lowest(&mut v, &g, (target * g.scores.len() as f64).floor() as usize);
        }
    }
    Tensor::new(t.shape().to_vec(), smelt_ir::Data::F32(v)).map_err(|e| e.to_string())
}

/// Prunes `chosen` layers of `g` in place to `target` sparsity: each layer
/// alone, or (`global`) by one score threshold over all of them (N:M is
/// always per layer). Returns each chosen layer's weight sparsity after.
pub fn prune(g: &mut Graph, chosen: &[&Layer], pattern: Pattern, target: f64, global: bool) -> Result<Vec<f64>, String> {
    if !(0.0..1.0).contains(&target) {
        return Err(format!("sparsity must be in [0, 1), found {target}"));
    }
    for l in chosen {
        check(l, pattern)?;
    }
    let weights: Vec<Arc<Tensor>> =
        chosen.iter().map(|l| g.weight(&l.weight).cloned().ok_or_else(|| format!("the weight `{}` has no value", l.weight))).collect::<Result<_, _>>()?;
    let pruned: Vec<Tensor> = if global && !matches!(pattern, Pattern::NofM { .. }) {
        // One threshold: the groups of every layer ranked together, weighted by size.
        let gs: Vec<Groups> = chosen.iter().zip(&weights).map(|(l, t)| groups(l, t, pattern)).collect();
        let mut all: Vec<(f32, usize, usize)> = gs.iter().enumerate().flat_map(|(li, g)| g.scores.iter().enumerate().map(move |(gi, &s)| (s, li, gi))).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let total: usize = weights.iter().map(|t| t.shape().iter().product::<usize>()).sum();
        let want = (target * total as f64).floor() as usize;
        let mut vals: Vec<Vec<f32>> = weights.iter().map(|t| t.to_f32()).collect();
        let mut zeroed = 0usize;
        for (_, li, gi) in all {
            let m = &gs[li].members[gi];
            if zeroed + m.len() > want {
                break;
            }
            for &p in m {
                vals[li][p] = 0.0;
            }
            zeroed += m.len();
        }
        weights.iter().zip(vals).map(|(t, v)| Tensor::new(t.shape().to_vec(), smelt_ir::Data::F32(v)).map_err(|e| e.to_string())).collect::<Result<_, _>>()?
    } else {
        chosen.iter().zip(&weights).map(|(l, t)| prune_layer(l, t, pattern, target)).collect::<Result<_, _>>()?
    };
    let mut out = vec![];
    for (l, t) in chosen.iter().zip(pruned) {
        out.push(sparsity(&t));
        g.set_weight(l.weight.clone(), t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(out_in: [usize; 2], out_major: bool) -> Layer {
        let g = smelt_ir::text::parse("graph g(x: f32[1]) -> (x) {\n}\n").expect("a graph");
        let node = g.node_ids().next().expect("a node");
        Layer { node, name: "fc".into(), op: "matmul", weight: "w".into(), out_in, out_major }
    }

    #[test]
    fn patterns_parse_and_check() {
        assert_eq!("block:16x1".parse::<Pattern>(), Ok(Pattern::Block { out: 16, inp: 1 }));
        assert_eq!("nm:2:4".parse::<Pattern>(), Ok(Pattern::NofM { n: 2, m: 4 }));
        assert!("nm:4:4".parse::<Pattern>().is_err());
        assert!("block:0x4".parse::<Pattern>().is_err());
        assert!("blocks".parse::<Pattern>().is_err());
        let e = check(&layer([10, 8], false), Pattern::Block { out: 4, inp: 1 }).unwrap_err();
        assert!(e.contains("does not divide") && e.contains("`fc`"), "{e}");
    }

    #[test]
    fn blocks_follow_the_out_in_orientation() {
        // W [in 4, out 8] (a matmul's), 16x1 would not fit; 4x1 = 4 outputs at one input.
        let l = layer([8, 4], false);
        let t = Tensor::f32(vec![4, 8], (0..32).map(|i| 1.0 + i as f32).collect()).unwrap();
        let p = prune_layer(&l, &t, Pattern::Block { out: 4, inp: 1 }, 0.5).unwrap().to_f32();
        // Each block is 4 consecutive entries of one row of W[K, N].
        for row in p.chunks(8) {
            for blk in row.chunks(4) {
                assert!(blk.iter().all(|&x| x == 0.0) || blk.iter().all(|&x| x != 0.0), "{row:?}");
            }
        }
        assert_eq!(p.iter().filter(|&&x| x == 0.0).count(), 16);
        // The smallest magnitudes went: the first rows.
        assert!(p[..16].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn n_of_m_keeps_the_largest_of_each_group() {
        let l = layer([2, 4], true);
        let t = Tensor::f32(vec![2, 4], vec![0.1, -0.9, 0.5, 0.2, 3.0, 1.0, -2.0, 0.0]).unwrap();
        let p = prune_layer(&l, &t, Pattern::NofM { n: 2, m: 4 }, 0.0).unwrap().to_f32();
        assert_eq!(p, vec![0.0, -0.9, 0.5, 0.0, 3.0, 0.0, -2.0, 0.0]);
    }
}
