//! Interpreter: routing and mixture of experts — `topk`, `moe_dispatch`,
//! `moe_combine` and the whole-layer `moe`, with the token-order slot rule of
//! `docs/ops.md` (tokens past an expert's capacity are dropped).

use super::{Arg, util};
use smelt_ir::ops::{Moe, TopK};
use smelt_ir::{Op, Tensor, TensorType};
use std::cmp::Ordering;

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    match op {
        Op::TopK(t) => topk(t, ins, out),
        Op::MoeDispatch { experts, capacity } => dispatch(*experts, *capacity, ins, out),
        Op::MoeCombine { capacity } => combine(*capacity, ins, out),
        Op::Moe(m) => moe(m, ins, out),
        _ => Err(format!("routing::eval does not run {}", op.name())),
    }
}

/// Orders two values, NaN (a value unordered with itself) above everything, so
/// `largest` picks NaN first.
fn cmp_nan_high<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    match (a.partial_cmp(a).is_none(), b.partial_cmp(b).is_none()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// Positions of the `k` largest (or smallest) of `v`, best first; ties keep the
/// lower position first.
fn top_positions<T: PartialOrd>(v: &[T], k: usize, largest: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    // A stable sort keeps equal values in position order.
    order.sort_by(|&a, &b| {
        let c = cmp_nan_high(&v[a], &v[b]);
        if largest { c.reverse() } else { c }
    });
    order.truncate(k);
    order
}

fn topk(t: &TopK, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let x = ins.first().ok_or("topk expects an input")?;
    let shape = x.value.shape();
    let axis = smelt_ir::shape::normalize_axis(t.axis, shape.len())
        .ok_or_else(|| format!("topk axis {} is out of range for {shape:?}", t.axis))?;
    let n = shape[axis];
    if t.k > n {
        return Err(format!("topk k = {} exceeds the axis size {n}", t.k));
    }
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let float = x.value.dtype().is_float();
    let (fv, iv) = if float { (x.value.to_f32(), vec![]) } else { (vec![], x.value.to_i64()) };
    let mut idx_out = vec![0i64; outer * t.k * inner];
    for o in 0..outer {
        for i in 0..inner {
            let at = |p: usize| (o * n + p) * inner + i;
            let pos = if float {
                top_positions(&(0..n).map(|p| fv[at(p)]).collect::<Vec<_>>(), t.k, t.largest)
            } else {
                top_positions(&(0..n).map(|p| iv[at(p)]).collect::<Vec<_>>(), t.k, t.largest)
            };
            for (j, p) in pos.into_iter().enumerate() {
                idx_out[(o * t.k + j) * inner + i] = p as i64;
            }
        }
    }
    // Gather the values at the chosen positions.
    let src = |f: usize| {
        let (o, rest) = (f / (t.k * inner), f % (t.k * inner));
        let i = rest % inner;
        (o * n + idx_out[f] as usize) * inner + i
    };
    let [tv, ti] = out else { return Err(format!("topk has 2 outputs, found {} types", out.len())) };
    let values = if float {
        util::from_f32(tv, (0..idx_out.len()).map(|f| fv[src(f)]).collect())
    } else {
        util::from_i64(tv, (0..idx_out.len()).map(|f| iv[src(f)]).collect())
    };
    Ok(vec![values, util::from_i64(ti, idx_out)])
}

/// Slot of each (t, j) in its expert in token order; `None` where dropped (past
/// `capacity`; `None` capacity means unlimited). Experts out of range are errors.
fn slots(
    idx: &[i64],
    k: usize,
    experts: usize,
    capacity: Option<usize>,
) -> Result<Vec<Option<(usize, usize)>>, String> {
    let mut count = vec![0usize; experts];
    let mut out = Vec::with_capacity(idx.len());
    for (p, &e) in idx.iter().enumerate() {
        if e < 0 || e as u64 >= experts as u64 {
            let (t, j) = (p / k.max(1), p % k.max(1));
            return Err(format!("expert index {e} at [{t}, {j}] is outside 0..{experts}"));
        }
        let e = e as usize;
        if capacity.is_none_or(|c| count[e] < c) {
            out.push(Some((e, count[e])));
            count[e] += 1;
        } else {
            out.push(None);
        }
    }
    Ok(out)
}

/// The [T, k] index input, checked against `t` tokens.
fn indices(a: &Arg, t: usize) -> Result<(Vec<i64>, usize), String> {
    match a.value.shape()[..] {
        [ti, k] if ti == t => Ok((a.value.to_i64(), k)),
        _ => Err(format!("expected indices [{t}, k], found {:?}", a.value.shape())),
    }
}

fn dispatch(experts: usize, capacity: usize, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let [x, idx] = ins else { return Err("moe_dispatch expects x and indices".into()) };
    let [t, d] = x.value.shape()[..] else {
        return Err(format!("moe_dispatch expects x [T, D], found {:?}", x.value.shape()));
    };
    let (iv, k) = indices(idx, t)?;
    let xv = x.value.to_f32();
    let mut y = vec![0.0f32; experts * capacity * d];
    for (p, s) in slots(&iv, k, experts, Some(capacity))?.into_iter().enumerate() {
        if let Some((e, slot)) = s {
            let tok = p / k;
            y[(e * capacity + slot) * d..][..d].copy_from_slice(&xv[tok * d..][..d]);
        }
    }
    let ty = out.first().ok_or("moe_dispatch has one output")?;
    Ok(vec![util::from_f32(ty, y)])
}

fn combine(capacity: usize, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let [y, idx, w] = ins else { return Err("moe_combine expects y, indices and weights".into()) };
    let [e, c, d] = y.value.shape()[..] else {
        return Err(format!("moe_combine expects y [E, C, D], found {:?}", y.value.shape()));
    };
    if c != capacity {
        return Err(format!("moe_combine expects y [E, {capacity}, D], found {:?}", y.value.shape()));
    }
    let t = idx.value.shape().first().copied().unwrap_or(0);
    let (iv, k) = indices(idx, t)?;
    if w.value.shape() != [t, k] {
        return Err(format!("moe_combine expects weights [{t}, {k}], found {:?}", w.value.shape()));
    }
    let (yv, wv) = (y.value.to_f32(), w.value.to_f32());
    let mut acc = vec![0.0f64; t * d];
    for (p, s) in slots(&iv, k, e, Some(capacity))?.into_iter().enumerate() {
        if let Some((ex, slot)) = s {
            let tok = p / k;
            for j in 0..d {
                acc[tok * d + j] += wv[p] as f64 * yv[(ex * c + slot) * d + j] as f64;
            }
        }
    }
    let ty = out.first().ok_or("moe_combine has one output")?;
    Ok(vec![util::from_f32(ty, acc.into_iter().map(|v| v as f32).collect())])
}

fn moe(m: &Moe, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let (x, logits, w1, w2, w3) = match ins {
        [x, l, w1, w2] => (x, l, w1, w2, None),
        [x, l, w1, w2, w3] => (x, l, w1, w2, Some(w3)),
        _ => return Err("moe expects x, logits, w1, w2 and an optional w3".into()),
    };
    let [t, d] = x.value.shape()[..] else { return Err(format!("moe expects x [T, D], found {:?}", x.value.shape())) };
    let [lt, e] = logits.value.shape()[..] else {
        return Err(format!("moe expects logits [T, E], found {:?}", logits.value.shape()));
    };
    let [e1, d1, h] = w1.value.shape()[..] else {
        return Err(format!("moe expects w1 [E, D, H], found {:?}", w1.value.shape()));
    };
    if lt != t
        || e1 != e
        || d1 != d
        || w2.value.shape() != [e, h, d]
        || w3.is_some_and(|w3| w3.value.shape() != [e, d, h])
        || m.k == 0
        || m.k > e
    {
        return Err(format!(
            "moe shapes do not agree: x {:?}, logits {:?}, w1 {:?}, w2 {:?}, k {}",
            x.value.shape(),
            logits.value.shape(),
            w1.value.shape(),
            w2.value.shape(),
            m.k
        ));
    }
    let f = |a: &Arg| -> Vec<f64> { a.value.to_f32().into_iter().map(f64::from).collect() };
    let (xv, lv, w1v, w2v) = (f(x), f(logits), f(w1), f(w2));
    let w3v = w3.map(f);
    let (idx, wts) = route(&lv, t, e, m.k, m.normalize);
    let mut y = vec![0.0f64; t * d];
    for (p, s) in slots(&idx, m.k, e, m.capacity(t, e))?.into_iter().enumerate() {
        let Some((ex, _)) = s else { continue };
        let tok = p / m.k;
        let dot = |w: &[f64], j: usize| -> f64 { (0..d).map(|i| xv[tok * d + i] * w[(ex * d + i) * h + j]).sum() };
        let hidden: Vec<f64> = (0..h)
            .map(|j| {
                let a = m.activation.eval(dot(&w1v, j) as f32) as f64;
                match &w3v {
                    Some(w3v) => a * dot(w3v, j),
                    None => a,
                }
            })
            .collect();
        for o in 0..d {
            let v: f64 = (0..h).map(|j| hidden[j] * w2v[(ex * h + j) * d + o]).sum();
            y[tok * d + o] += wts[p] * v;
        }
    }
    let ty = out.first().ok_or("moe has one output")?;
    Ok(vec![util::from_f32(ty, y.into_iter().map(|v| v as f32).collect())])
}

/// Each token's top `k` experts by logit (larger first, ties to the lower
/// expert, NaN above everything) and their weights: the softmax over all `e`
/// logits at the chosen ones, renormalized over them when `normalize` (then it
/// is the softmax over the chosen logits alone).
fn route(logits: &[f64], t: usize, e: usize, k: usize, normalize: bool) -> (Vec<i64>, Vec<f64>) {
    let mut idx = Vec::with_capacity(t * k);
    let mut wts = Vec::with_capacity(t * k);
    for tok in 0..t {
        let row = &logits[tok * e..(tok + 1) * e];
        let chosen = top_positions(row, k, true);
        let over: Vec<f64> = if normalize { chosen.iter().map(|&c| row[c]).collect() } else { row.to_vec() };
        let mx = over.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = over.iter().map(|v| (v - mx).exp()).sum();
        wts.extend(chosen.iter().map(|&c| (row[c] - mx).exp() / sum));
        idx.extend(chosen.into_iter().map(|c| c as i64));
    }
    (idx, wts)
}

/// Non-maximum suppression, as ONNX's reference computes it (f32 arithmetic):
/// `i64[count, 3]` rows (batch, class, box) in batch, class, selection order.
pub(crate) fn nms(n: &smelt_ir::ops::Nms, boxes: &Tensor, scores: &Tensor) -> Tensor {
    let (b, m) = (boxes.shape()[0], boxes.shape()[1]);
    let c = scores.shape()[1];
    let bx = boxes.to_f32();
    let sc = scores.to_f32();
    // (x_min, x_max, y_min, y_max) of a box.
    let extent = |bi: usize, i: usize| -> [f32; 4] {
        let v = &bx[(bi * m + i) * 4..(bi * m + i) * 4 + 4];
        if n.center_point_box {
            let (hw, hh) = (v[2] / 2.0, v[3] / 2.0);
            [v[0] - hw, v[0] + hw, v[1] - hh, v[1] + hh]
        } else {
            [v[1].min(v[3]), v[1].max(v[3]), v[0].min(v[2]), v[0].max(v[2])]
        }
    };
    let suppresses = |bi: usize, i: usize, j: usize| -> bool {
        let (p, q) = (extent(bi, i), extent(bi, j));
        let (ix0, ix1) = (p[0].max(q[0]), p[1].min(q[1]));
        if ix1 <= ix0 {
            return false;
        }
        let (iy0, iy1) = (p[2].max(q[2]), p[3].min(q[3]));
        if iy1 <= iy0 {
            return false;
        }
        let inter = (ix1 - ix0) * (iy1 - iy0);
        let a1 = (p[1] - p[0]) * (p[3] - p[2]);
        let a2 = (q[1] - q[0]) * (q[3] - q[2]);
        let union = a1 + a2 - inter;
        if inter <= 0.0 || a1 <= 0.0 || a2 <= 0.0 || union <= 0.0 {
            return false;
        }
        inter / union > n.iou_threshold
    };
    let mut out: Vec<i64> = Vec::new();
    for bi in 0..b {
        for ci in 0..c {
            let s = &sc[(bi * c + ci) * m..(bi * c + ci + 1) * m];
            let mut cand: Vec<usize> = (0..m).filter(|&i| n.score_threshold.is_none_or(|t| s[i] > t)).collect();
            // Best first; equal scores by index (a stable sort of the indices).
            cand.sort_by(|&i, &j| s[j].partial_cmp(&s[i]).unwrap_or(Ordering::Equal));
            let mut kept: Vec<usize> = Vec::new();
            for i in cand {
                if kept.len() >= n.max_per_class {
                    break;
                }
                if kept.iter().all(|&j| !suppresses(bi, i, j)) {
                    kept.push(i);
                    out.extend([bi as i64, ci as i64, i as i64]);
                }
            }
        }
    }
    let k = out.len() / 3;
    Tensor::i64(vec![k, 3], out).expect("sizes agree")
}

/// ONNX Unique (numpy's `unique` with `return_index`, `return_inverse`,
/// `return_counts`): the distinct elements, or slices along the axis, sorted
/// (NaN last, NaNs equal, −0 = 0) or in order of first appearance.
pub(crate) fn unique(u: &smelt_ir::ops::Unique, x: &Tensor) -> Result<Vec<Tensor>, String> {
    let dims = x.shape().to_vec();
    let (shape, ax) = match u.axis {
        Some(a) => {
            let ax = smelt_ir::shape::normalize_axis(a, dims.len()).ok_or_else(|| format!("unique axis {a} is out of range for rank {}", dims.len()))?;
            (dims.clone(), ax)
        }
        None => (vec![x.numel()], 0),
    };
    let (outer, len) = (shape[..ax].iter().product::<usize>(), shape[ax]);
    let inner: usize = shape[ax + 1..].iter().product();
    let float = x.dtype().is_float();
    let (fv, iv) = if float { (x.to_f32(), vec![]) } else { (vec![], x.to_i64()) };
    let elem = |p: usize, q: usize| -> Ordering {
        if float {
            let (a, b) = (fv[p], fv[q]);
            match (a.is_nan(), b.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            }
        } else {
            iv[p].cmp(&iv[q])
        }
    };
    // Slice j: elements (o, j, i), compared in that order.
    let slice_cmp = |j: usize, k: usize| -> Ordering {
        for o in 0..outer {
            for i in 0..inner {
                let c = elem((o * len + j) * inner + i, (o * len + k) * inner + i);
                if c != Ordering::Equal {
                    return c;
                }
            }
        }
        Ordering::Equal
    };
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| slice_cmp(a, b));
    // Runs of equal slices: each run's first (lowest) index and members.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &j in &order {
        match groups.last_mut() {
            Some(g) if slice_cmp(g[0], j) == Ordering::Equal => g.push(j),
            _ => groups.push(vec![j]),
        }
    }
    if !u.sorted {
        groups.sort_by_key(|g| g[0]);
    }
    let k = groups.len();
    let mut inverse = vec![0i64; len];
    for (gi, g) in groups.iter().enumerate() {
        for &j in g {
            inverse[j] = gi as i64;
        }
    }
    let firsts: Vec<usize> = groups.iter().map(|g| g[0]).collect();
    let mut pos = Vec::with_capacity(outer * k * inner);
    for o in 0..outer {
        for &f in &firsts {
            pos.extend((0..inner).map(|i| (o * len + f) * inner + i));
        }
    }
    let mut ydims = shape.clone();
    ydims[ax] = k;
    let i64s = |v: Vec<i64>| Tensor::i64(vec![v.len()], v).map_err(|e| e.to_string());
    Ok(vec![
        Tensor::new(ydims, x.data().take(&pos)).map_err(|e| e.to_string())?,
        i64s(firsts.iter().map(|&f| f as i64).collect())?,
        i64s(inverse)?,
        i64s(groups.iter().map(|g| g.len() as i64).collect())?,
    ])
}

#[cfg(test)]
mod tests {
    use smelt_ir::{Data, Tensor};
    use std::collections::BTreeMap;

    fn run(src: &str, inputs: &[(&str, Tensor)]) -> Result<BTreeMap<String, Tensor>, String> {
        let g = smelt_ir::text::parse(src).expect("parses");
        let m = inputs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        crate::run(&g, &m).map_err(|e| e.to_string())
    }

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).expect("sized")
    }

    /// x = [3, 1, 3, 2, 3]: largest k = 2 picks the 3s at 0 and 2 (ties → lower index);
    /// smallest k = 3 gives 1 (@1), 2 (@3), 3 (@0).
    #[test]
    fn topk_ties() {
        let x = t(&[5], &[3.0, 1.0, 3.0, 2.0, 3.0]);
        let o = run("graph g(x: f32[5]) -> (v, i) { v, i = topk(x) {k = 2} }", &[("x", x.clone())]).expect("runs");
        assert_eq!(o["v"].to_f32(), vec![3.0, 3.0]);
        assert_eq!(o["i"].data(), &Data::I64(vec![0, 2]));
        let o =
            run("graph g(x: f32[5]) -> (v, i) { v, i = topk(x) {k = 3, largest = false} }", &[("x", x)]).expect("runs");
        assert_eq!(o["v"].to_f32(), vec![1.0, 2.0, 3.0]);
        assert_eq!(o["i"].data(), &Data::I64(vec![1, 3, 0]));
    }

    /// Integers compare exactly (i64 values past 2^24 stay distinct): x = [2^40 + 1, 2^40, 7]
    /// → largest 2 = indices [0, 1]. NaN counts as the largest float: [1, NaN, 2] → [1, 2].
    #[test]
    fn topk_ints_and_nan() {
        let big = 1i64 << 40;
        let x = Tensor::i64(vec![3], vec![big + 1, big, 7]).expect("sized");
        let o = run("graph g(x: i64[3]) -> (v, i) { v, i = topk(x) {k = 2} }", &[("x", x)]).expect("runs");
        assert_eq!(o["v"].data(), &Data::I64(vec![big + 1, big]));
        assert_eq!(o["i"].data(), &Data::I64(vec![0, 1]));
        let x = t(&[3], &[1.0, f32::NAN, 2.0]);
        let o = run("graph g(x: f32[3]) -> (v, i) { v, i = topk(x) {k = 2} }", &[("x", x)]).expect("runs");
        assert_eq!(o["i"].data(), &Data::I64(vec![1, 2]));
    }

    /// Two tokens both routed to expert 0 with capacity 1: token 0 takes slot 0, token 1
    /// is dropped; expert 1 gets nothing. Out [2, 1, 2] = [[x0], [0, 0]].
    /// Combining with weight 0.5 each: token 0 gets 0.5·x0, the dropped token 1 gets 0.
    #[test]
    fn dispatch_and_combine_drop() {
        let x = t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let idx = Tensor::i64(vec![2, 1], vec![0, 0]).expect("sized");
        let o = run(
            "graph g(x: f32[2, 2], idx: i64[2, 1]) -> (y) { y = moe_dispatch(x, idx) {experts = 2, capacity = 1} }",
            &[("x", x), ("idx", idx.clone())],
        )
        .expect("runs");
        assert_eq!(o["y"].to_f32(), vec![1.0, 2.0, 0.0, 0.0]);
        let y = t(&[2, 1, 2], &[1.0, 2.0, 9.0, 9.0]);
        let w = t(&[2, 1], &[0.5, 0.5]);
        let o = run(
            "graph g(y: f32[2, 1, 2], idx: i64[2, 1], w: f32[2, 1]) -> (z) { z = moe_combine(y, idx, w) {capacity = 1} }",
            &[("y", y), ("idx", idx), ("w", w)],
        )
        .expect("runs");
        assert_eq!(o["z"].to_f32(), vec![0.5, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn dispatch_bad_index_is_error() {
        let x = t(&[1, 1], &[1.0]);
        let idx = Tensor::i64(vec![1, 1], vec![5]).expect("sized");
        let e = run(
            "graph g(x: f32[1, 1], idx: i64[1, 1]) -> (y) { y = moe_dispatch(x, idx) {experts = 2, capacity = 1} }",
            &[("x", x), ("idx", idx)],
        )
        .expect_err("out of range");
        assert!(e.contains("expert index 5"), "{e}");
    }

    /// moe with D = 1, E = 2, H = 1, k = 1, identity activation, logits = x·[1, −1], so a
    /// positive x routes to expert 0 and a negative one to expert 1, with weight 1
    /// (softmax of one logit). w1 = [[[2]], [[3]]], w2 = [[[1]], [[10]]]:
    /// x = 1 → 1·2·1 = 2; x = −1 → −1·3·10 = −30. With relu the second is 0.
    /// capacity_factor = 0.5: capacity ⌈2·1·0.5/2⌉ = 1, and with x = [1, 2] both go to
    /// expert 0, so token 1 is dropped: [2, 0].
    #[test]
    fn moe_layer() {
        let ins = |x: &[f32]| {
            vec![
                ("x", t(&[2, 1], x)),
                ("logits", t(&[2, 2], &[x[0], -x[0], x[1], -x[1]])),
                ("w1", t(&[2, 1, 1], &[2.0, 3.0])),
                ("w2", t(&[2, 1, 1], &[1.0, 10.0])),
            ]
        };
        let src = |attrs: &str| {
            format!(
                "graph g(x: f32[2, 1], logits: f32[2, 2], w1: f32[2, 1, 1], w2: f32[2, 1, 1]) -> (y) {{
                    y = moe(x, logits, w1, w2) {{{attrs}}}
                }}"
            )
        };
        let o = run(&src("k = 1, activation = identity"), &ins(&[1.0, -1.0])).expect("runs");
        assert_eq!(o["y"].to_f32(), vec![2.0, -30.0]);
        let o = run(&src("k = 1"), &ins(&[1.0, -1.0])).expect("runs");
        assert_eq!(o["y"].to_f32(), vec![2.0, 0.0]);
        let o = run(&src("k = 1, capacity_factor = 0.5"), &ins(&[1.0, 2.0])).expect("runs");
        assert_eq!(o["y"].to_f32(), vec![2.0, 0.0]);
    }
}
