//! Interpreter: the shape op family (reshape, transpose, concat, split, slice,
//! gather, pad, expand). Every op works on any dtype: it computes, for each output
//! element, the flat position it copies from, then takes those positions with [`Data::take`].

use super::Arg;
use super::util::{broadcast_map, dims, strides, unravel};
use smelt_ir::ops::PadMode;
use smelt_ir::shape::normalize_axis;
use smelt_ir::{Data, Op, Tensor, TensorType};

/// The elements of every part, one after the other; the parts must share a dtype.
pub(super) fn concat_data(parts: &[&Data]) -> Result<Data, String> {
    let first = parts.first().ok_or("nothing to concatenate")?;
    let mut out = Data::zeros(first.dtype(), 0);
    for p in parts {
        match (&mut out, p) {
            (Data::F32(o), Data::F32(v)) => o.extend_from_slice(v),
            (Data::F16(o), Data::F16(v)) => o.extend_from_slice(v),
            (Data::BF16(o), Data::BF16(v)) => o.extend_from_slice(v),
            (Data::I8(o), Data::I8(v)) => o.extend_from_slice(v),
            (Data::U8(o), Data::U8(v)) => o.extend_from_slice(v),
            (Data::I32(o), Data::I32(v)) => o.extend_from_slice(v),
            (Data::I64(o), Data::I64(v)) => o.extend_from_slice(v),
            (Data::Bool(o), Data::Bool(v)) => o.extend_from_slice(v),
            (o, v) => return Err(format!("cannot join {} and {} values", o.dtype(), v.dtype())),
        }
    }
    Ok(out)
}

/// A tensor of type `ty` holding `data`.
fn build(ty: &TensorType, data: Data) -> Result<Tensor, String> {
    Tensor::new(dims(ty), data).map_err(|e| e.to_string())
}

/// The flat position of multi-index `idx` in a tensor of strides `st`.
fn flat(idx: &[usize], st: &[usize]) -> usize {
    idx.iter().zip(st).map(|(i, s)| i * s).sum()
}

/// The indices of `x`'s nonzero elements (NaN counts), row-major order:
/// `i64[rank, count]` (ONNX NonZero, NumPy's `nonzero`).
pub fn nonzero(x: &Tensor) -> Tensor {
    let v = x.to_f32();
    let xs = x.shape();
    let hits: Vec<usize> = (0..v.len()).filter(|&i| v[i] != 0.0).collect();
    let (r, k) = (xs.len(), hits.len());
    let mut out = vec![0i64; r * k];
    for (j, &flat) in hits.iter().enumerate() {
        let mut rest = flat;
        for d in (0..r).rev() {
            out[d * k + j] = (rest % xs[d]) as i64;
            rest /= xs[d];
        }
    }
    Tensor::i64(vec![r, k], out).expect("sizes agree")
}

fn axis_of(op: &str, axis: i64, rank: usize) -> Result<usize, String> {
    normalize_axis(axis, rank).ok_or_else(|| format!("{op} axis {axis} is out of range for rank {rank}"))
}

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let x = ins.first().ok_or_else(|| format!("{} needs an input", op.name()))?.value;
    if let Op::NonZero { .. } = op {
        return Ok(vec![nonzero(x)]);
    }
    let o = out.first().ok_or_else(|| format!("{} needs an output type", op.name()))?;
    let od = dims(o);
    let n: usize = od.iter().product();
    let xs = x.shape();
    let xst = strides(xs);
    let one = |pos: Vec<usize>| build(o, x.data().take(&pos)).map(|t| vec![t]);
    match op {
        Op::Reshape { .. } => {
            if x.numel() != n {
                return Err(format!("reshape of {xs:?} into {od:?} changes the element count"));
            }
            build(o, x.data().clone()).map(|t| vec![t])
        }
        Op::Transpose { perm } => {
            let r = xs.len();
            let p = perm.clone().unwrap_or_else(|| (0..r).rev().collect());
            if p.len() != r || p.iter().any(|&i| i >= r) || od.len() != r {
                return Err(format!("transpose perm {p:?} does not fit {xs:?}"));
            }
            // out[i0, i1, …] = x[j] with j[p[k]] = i[k].
            let pos = (0..n)
                .map(|f| {
                    let oi = unravel(f, &od);
                    p.iter().zip(&oi).map(|(&pk, &ik)| ik * xst[pk]).sum()
                })
                .collect();
            one(pos)
        }
        Op::Concat { axis } => {
            let a = axis_of("concat", *axis, xs.len())?;
            let parts: Vec<&Data> = ins.iter().map(|i| i.value.data()).collect();
            let all = concat_data(&parts)?;
            // For each input: its first position in `all`, its extent along the axis, its strides.
            let mut base = 0;
            let mut table = Vec::new();
            for i in ins {
                if i.value.rank() != xs.len() {
                    return Err(format!("concat inputs of ranks {} and {}", xs.len(), i.value.rank()));
                }
                table.push((base, i.value.shape()[a], strides(i.value.shape())));
                base += i.value.numel();
            }
            let mut pos = Vec::with_capacity(n);
            for f in 0..n {
                let mut oi = unravel(f, &od);
                let mut k = oi[a];
                let mut found = None;
                for (b, len, st) in &table {
                    if k < *len {
                        oi[a] = k;
                        found = Some(b + flat(&oi, st));
                        break;
                    }
                    k -= len;
                }
                pos.push(found.ok_or("concat output is longer than its inputs")?);
            }
            build(o, all.take(&pos)).map(|t| vec![t])
        }
        Op::Split { axis, sizes } => {
            let a = axis_of("split", *axis, xs.len())?;
            if sizes.len() != out.len() || sizes.iter().sum::<usize>() != xs[a] {
                return Err(format!("split sizes {sizes:?} do not cover axis {a} of {xs:?}"));
            }
            let mut res = Vec::new();
            let mut start = 0;
            for (ty, &size) in out.iter().zip(sizes) {
                let d = dims(ty);
                let m: usize = d.iter().product();
                let pos: Vec<usize> = (0..m)
                    .map(|f| {
                        let mut oi = unravel(f, &d);
                        oi[a] += start;
                        flat(&oi, &xst)
                    })
                    .collect();
                res.push(build(ty, x.data().take(&pos))?);
                start += size;
            }
            Ok(res)
        }
        Op::Slice(s) => {
            let d64: Vec<u64> = xs.iter().map(|&d| d as u64).collect();
            let r = s.resolve(&d64).map_err(|e| format!("slice: {e}"))?;
            if od.len() != xs.len() {
                return Err(format!("slice output {od:?} does not match input {xs:?}"));
            }
            // Per axis: (start, step); unsliced axes start at 0 with step 1.
            let mut walk: Vec<(i64, i64)> = vec![(0, 1); xs.len()];
            for (ax, start, step, count) in r {
                if count as usize != od[ax] {
                    return Err(format!("slice gives {count} elements on axis {ax}, the type says {}", od[ax]));
                }
                walk[ax] = (start, step);
            }
            let mut pos = Vec::with_capacity(n);
            for f in 0..n {
                let oi = unravel(f, &od);
                let mut p = 0usize;
                for (k, (&i, &(st, sp))) in oi.iter().zip(&walk).enumerate() {
                    let j = st + sp * i as i64;
                    if j < 0 || j as usize >= xs[k] {
                        return Err(format!("slice reads index {j} of axis {k} of size {}", xs[k]));
                    }
                    p += j as usize * xst[k];
                }
                pos.push(p);
            }
            one(pos)
        }
        Op::Gather { axis } => {
            let idx = ins.get(1).ok_or("gather needs indices")?.value;
            if !matches!(idx.dtype(), smelt_ir::DType::I32 | smelt_ir::DType::I64) {
                return Err(format!("gather indices must be i32 or i64, found {}", idx.dtype()));
            }
            let a = axis_of("gather", *axis, xs.len())?;
            let len = xs[a];
            let mut ks = Vec::with_capacity(idx.numel());
            for k in idx.to_i64() {
                let j = if k < 0 { k + len as i64 } else { k };
                if j < 0 || j >= len as i64 {
                    return Err(format!("gather index {k} is out of range for axis {a} of size {len} (shape {xs:?})"));
                }
                ks.push(j as usize);
            }
            let ir = idx.rank();
            let ist = strides(idx.shape());
            if od.len() != xs.len() + ir - 1 {
                return Err(format!("gather output {od:?} does not fit data {xs:?} and indices {:?}", idx.shape()));
            }
            let pos = (0..n)
                .map(|f| {
                    let oi = unravel(f, &od);
                    let k = ks[flat(&oi[a..a + ir], &ist)];
                    let mut xi: Vec<usize> = oi[..a].to_vec();
                    xi.push(k);
                    xi.extend_from_slice(&oi[a + ir..]);
                    flat(&xi, &xst)
                })
                .collect();
            one(pos)
        }
        Op::Pad { pads, mode, value } => {
            let r = xs.len();
            if pads.len() != 2 * r || od.len() != r {
                return Err(format!("pad expects {} pads for {xs:?}, found {pads:?}", 2 * r));
            }
            // The constant is appended after the input's elements, at position `fill`.
            let fill = x.numel();
            let src = concat_data(&[x.data(), &Data::from_f32(x.dtype(), &[*value])])?;
            let mut pos = Vec::with_capacity(n);
            for f in 0..n {
                let oi = unravel(f, &od);
                let mut p = Some(0usize);
                for k in 0..r {
                    let len = xs[k] as i64;
                    let j = pad_index(oi[k] as i64 - pads[k] as i64, len, *mode)
                        .ok_or_else(|| format!("{} pad of an axis of size {len}", mode.name()))?;
                    p = match (p, j) {
                        (Some(p), Some(j)) => Some(p + j * xst[k]),
                        _ => None,
                    };
                }
                pos.push(p.unwrap_or(fill));
            }
            build(o, src.take(&pos)).map(|t| vec![t])
        }
        Op::Expand { .. } => {
            if od.len() < xs.len() || xs.iter().zip(&od[od.len() - xs.len()..]).any(|(&a, &b)| a != 1 && a != b) {
                return Err(format!("expand cannot broadcast {xs:?} to {od:?}"));
            }
            one(broadcast_map(&od, xs))
        }
        _ => Err(format!("{} is not a shape op", op.name())),
    }
}

/// Where padded position `j` of an axis of size `len` reads from: `Some(Some(i))`
/// an input index, `Some(None)` the constant; `None` when the mode cannot pad this
/// axis (an empty axis).
fn pad_index(j: i64, len: i64, mode: PadMode) -> Option<Option<usize>> {
    if (0..len).contains(&j) {
        return Some(Some(j as usize));
    }
    match mode {
        PadMode::Constant => Some(None),
        _ if len == 0 => None,
        PadMode::Edge => Some(Some(j.clamp(0, len - 1) as usize)),
        PadMode::Reflect => {
            if len == 1 {
                return Some(Some(0));
            }
            // Reflect about the edges (the edge itself is not repeated); the period is 2(len-1).
            let period = 2 * (len - 1);
            let m = j.rem_euclid(period);
            Some(Some(if m < len { m } else { period - m } as usize))
        }
        PadMode::Wrap => Some(Some(j.rem_euclid(len) as usize)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(src: &str, inputs: Vec<(&str, Tensor)>) -> Result<BTreeMap<String, Tensor>, String> {
        let g = smelt_ir::text::parse(src).map_err(|e| format!("{e:?}"))?;
        let ins = inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        crate::run(&g, &ins).map_err(|e| e.to_string())
    }

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn reflect_pad_by_two() {
        // [1,2,3] reflected by 2 each side: 3 2 | 1 2 3 | 2 1.
        let o = run("graph g(x: f32[3]) -> (y) { y = pad(x) {pads = [2, 2], mode = reflect} }", vec![("x", f(&[3], &[1., 2., 3.]))]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![3., 2., 1., 2., 3., 2., 1.]);
    }

    #[test]
    fn wrap_pad_past_the_length() {
        // [1,2,3] wrapped by 4 before and 2 after: 3 1 2 3 | 1 2 3 | 1 2.
        let o = run("graph g(x: f32[3]) -> (y) { y = pad(x) {pads = [4, 2], mode = wrap} }", vec![("x", f(&[3], &[1., 2., 3.]))]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![3., 1., 2., 3., 1., 2., 3., 1., 2.]);
    }

    #[test]
    fn edge_and_constant_pad_2d() {
        // [[1,2],[3,4]] padded one row on top (edge) and one column on the right:
        // edge → [[1,2,2],[1,2,2],[3,4,4]]; constant 9 → [[9,9,9],[1,2,9],[3,4,9]].
        let x = f(&[2, 2], &[1., 2., 3., 4.]);
        let o = run("graph g(x: f32[2, 2]) -> (y) { y = pad(x) {pads = [1, 0, 0, 1], mode = edge} }", vec![("x", x.clone())]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![1., 2., 2., 1., 2., 2., 3., 4., 4.]);
        let o = run("graph g(x: f32[2, 2]) -> (y) { y = pad(x) {pads = [1, 0, 0, 1], value = 9} }", vec![("x", x)]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![9., 9., 9., 1., 2., 9., 3., 4., 9.]);
    }

    #[test]
    fn gather_negative_and_out_of_range() {
        // x = [[0,1],[2,3],[4,5]]; rows [-1, 0] = [[4,5],[0,1]].
        let x = Tensor::new(vec![3, 2], Data::I32(vec![0, 1, 2, 3, 4, 5])).unwrap();
        let src = "graph g(x: i32[3, 2], i: i64[2]) -> (y) { y = gather(x, i) }";
        let o = run(src, vec![("x", x.clone()), ("i", Tensor::i64(vec![2], vec![-1, 0]).unwrap())]).unwrap();
        assert_eq!(o["y"].data(), &Data::I32(vec![4, 5, 0, 1]));
        let e = run(src, vec![("x", x), ("i", Tensor::i64(vec![2], vec![3, 0]).unwrap())]).unwrap_err();
        assert!(e.contains("index 3 is out of range"), "{e}");
    }

    #[test]
    fn gather_axis1_bool() {
        // Columns [1, 1, 0] of [[t,f],[f,t]] = [[f,f,t],[t,t,f]].
        let x = Tensor::new(vec![2, 2], Data::Bool(vec![true, false, false, true])).unwrap();
        let i = Tensor::new(vec![3], Data::I32(vec![1, 1, 0])).unwrap();
        let o = run("graph g(x: bool[2, 2], i: i32[3]) -> (y) { y = gather(x, i) {axis = 1} }", vec![("x", x), ("i", i)]).unwrap();
        assert_eq!(o["y"].data(), &Data::Bool(vec![false, false, true, true, true, false]));
    }

    #[test]
    fn transpose_concat_split_slice_expand() {
        // [[1,2,3],[4,5,6]]ᵀ = [[1,4],[2,5],[3,6]].
        let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let o = run("graph g(x: f32[2, 3]) -> (y) { y = transpose(x) }", vec![("x", x.clone())]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![1., 4., 2., 5., 3., 6.]);
        // concat(x, x) on axis 1: rows [1,2,3,1,2,3] and [4,5,6,4,5,6].
        let o = run("graph g(x: f32[2, 3]) -> (y) { y = concat(x, x) {axis = -1} }", vec![("x", x.clone())]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![1., 2., 3., 1., 2., 3., 4., 5., 6., 4., 5., 6.]);
        // split columns [1, 2]: [[1],[4]] and [[2,3],[5,6]].
        let o = run("graph g(x: f32[2, 3]) -> (a, b) { a, b = split(x) {axis = 1, sizes = [1, 2]} }", vec![("x", x.clone())]).unwrap();
        assert_eq!((o["a"].to_f32(), o["b"].to_f32()), (vec![1., 4.], vec![2., 3., 5., 6.]));
        // columns from the last backwards with step -2: indices 2, 0 → [[3,1],[6,4]].
        let o = run("graph g(x: f32[2, 3]) -> (y) { y = slice(x) {starts = [-1], ends = [-10], axes = [1], steps = [-2]} }", vec![("x", x)]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![3., 1., 6., 4.]);
        // [1,2] expanded to [2,2] (rows repeat).
        let o = run("graph g(x: f32[2]) -> (y) { y = expand(x) {shape = [2, 2]} }", vec![("x", f(&[2], &[1., 2.]))]).unwrap();
        assert_eq!(o["y"].to_f32(), vec![1., 2., 1., 2.]);
    }

    #[test]
    fn reshape_keeps_order() {
        let x = Tensor::i64(vec![2, 3], (0..6).collect()).unwrap();
        let o = run("graph g(x: i64[2, 3]) -> (y) { y = reshape(x) {shape = [3, -1]} }", vec![("x", x)]).unwrap();
        assert_eq!(o["y"].shape(), &[3, 2]);
        assert_eq!(o["y"].to_i64(), (0..6).collect::<Vec<_>>());
    }
}
