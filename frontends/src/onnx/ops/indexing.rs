//! ONNX ops that address elements by computed positions, imported as `gather`
//! over flattened tensors (the shapes must be fixed): GatherElements (indices
//! constant or computed at run time: the flat positions are then built with
//! integer ops), ScatterND and ScatterElements with constant indices (a gather
//! over `data` and `updates` concatenated, through a constant position table;
//! with a reduction, one gather and combine per update landing on an element),
//! Trilu (a `where` over a constant triangular mask) and OneHot (indices compared
//! with a constant range).

use super::super::ctx::{Ctx, Known};
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::shape::normalize_axis;
use smelt_ir::{BinaryOp, DType, Data, Dim, Op, Tensor, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("GatherElements", gather_elements),
    ("GatherND", gather_nd),
    ("ScatterElements", scatter_elements),
    ("Scatter", scatter_elements),
    ("ScatterND", scatter_nd),
    ("Trilu", trilu),
    ("OneHot", one_hot),
];

/// OneHot: `values[1]` where the index (negative ones counted from `depth`)
/// equals the position along the new `axis`, `values[0]` elsewhere; `depth` and
/// `values` must be constants. The indices are compared as i64 (floats cast).
fn one_hot(cx: &mut Ctx, n: &NodeRef) -> Out {
    let ind = cx.input(n, 0)?;
    let depth = *cx.need_floats(n, 1, "depth")?.first().ok_or_else(|| n.err("empty depth"))?;
    if !(depth >= 1.0 && depth.fract() == 0.0) {
        return Err(n.err(format!("depth = {depth}: OneHot needs a positive whole depth")));
    }
    let depth = depth as i64;
    let values = cx.need_tensor(n, 2, "values")?;
    let (vd, vals) = (values.dtype(), values.to_f32());
    if vals.len() != 2 {
        return Err(n.err(format!("values must hold 2 elements (off, on), found {}", vals.len())));
    }
    let dims = cx.dims(ind);
    let r = dims.len() + 1;
    let axis = n.int("axis", -1)?;
    let a = normalize_axis(axis, r).ok_or_else(|| n.err(format!("axis {axis} is out of range for rank {r}")))?;
    let i = if cx.ty(ind).dtype == DType::I64 { ind } else { cx.cast(ind, DType::I64)? };
    let (zero, dk) = (cx.scalar(0.0, DType::I64), cx.scalar(depth as f64, DType::I64));
    let neg = cx.binary(BinaryOp::Less, i, zero)?;
    let wrapped = cx.binary(BinaryOp::Add, i, dk)?;
    let i = cx.op(Op::Where, &[neg, wrapped, i])?;
    let mut id = dims.clone();
    id.insert(a, Dim::Fixed(1));
    let i = cx.reshape(i, &id)?;
    let mut shape = vec![1usize; r];
    shape[a] = depth as usize;
    let iota = Tensor::new(shape, Data::from_i64(DType::I64, &(0..depth).collect::<Vec<_>>())).map_err(|e| n.err(format!("{e:?}")))?;
    let iota = cx.konst(iota);
    let hit = cx.binary(BinaryOp::Equal, i, iota)?;
    let (off, on) = (cx.scalar(vals[0] as f64, vd), cx.scalar(vals[1] as f64, vd));
    Ok(vec![cx.op(Op::Where, &[hit, on, off])?])
}

/// The most elements a constant position table may have.
const MAX_TABLE: usize = 1 << 26;

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The elements of a constant table of `shape`, or an error above 2^26 (an
/// import never allocates more for one table).
pub(crate) fn count(n: &NodeRef, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&k| k <= MAX_TABLE)
        .ok_or_else(|| n.unsupported(format!("a position table for {shape:?} (more than 2^26 elements)")))
}

/// The constant value of input `i`, if the importer knows it.
fn known(cx: &Ctx, n: &NodeRef, i: usize) -> Option<Tensor> {
    n.input_name(i).and_then(|name| cx.known(name)).and_then(Known::tensor)
}

fn i64s(shape: Vec<usize>, v: Vec<i64>) -> Tensor {
    Tensor::i64(shape, v).expect("sized")
}

/// `data` flattened, gathered at `positions` (flat, i64), reshaped to `dims`.
pub(crate) fn gather_flat(cx: &mut Ctx, data: Value, positions: Value, dims: &[usize]) -> Result<Value> {
    let numel = cx.ty(data).shape.numel().unwrap_or(0);
    let flat = cx.reshape(data, &[Dim::Fixed(numel)])?;
    let p = cx.reshape(positions, &[Dim::Fixed(dims.iter().product::<usize>() as u64)])?;
    let g = cx.op(Op::Gather { axis: 0 }, &[flat, p])?;
    cx.reshape_fixed(g, dims)
}

/// A run-time i64 index `k` into a dim of `len`: wrapped when negative, and
/// whether it is out of range (then the caller poisons its position).
fn wrap_index(cx: &mut Ctx, k: Value, len: i64) -> Result<(Value, Value)> {
    let zero = cx.scalar(0.0, DType::I64);
    let lenv = cx.scalar(len as f64, DType::I64);
    let neg = cx.binary(BinaryOp::Less, k, zero)?;
    let wrapped = cx.binary(BinaryOp::Add, k, lenv)?;
    let k = cx.op(Op::Where, &[neg, wrapped, k])?;
    let low = cx.binary(BinaryOp::Less, k, zero)?;
    let high = cx.binary(BinaryOp::GreaterEqual, k, lenv)?;
    Ok((k, cx.binary(BinaryOp::Or, low, high)?))
}

fn axis_of(n: &NodeRef, rank: usize) -> Result<usize> {
    let a = n.int("axis", 0)?;
    normalize_axis(a, rank).ok_or_else(|| n.err(format!("axis {a} is out of range for rank {rank}")))
}

pub fn gather_elements(cx: &mut Ctx, n: &NodeRef) -> Out {
    let data = cx.input(n, 0)?;
    let idx = cx.input(n, 1)?;
    let ds = cx.fixed_dims(n, data, "GatherElements data")?;
    let is = cx.fixed_dims(n, idx, "GatherElements indices")?;
    if ds.len() != is.len() || ds.is_empty() {
        return Err(n.err(format!("indices {} must have the rank of data {}", cx.ty(idx), cx.ty(data))));
    }
    let axis = axis_of(n, ds.len())?;
    if let Some((d, (a, b))) = ds.iter().zip(&is).enumerate().find(|(d, (a, b))| *d != axis && b > a) {
        return Err(n.err(format!("indices dim {d} is {b}, past data's {a}")));
    }
    let total = count(n, &is)?;
    let (dst, ist) = (strides(&ds), strides(&is));
    let len = ds[axis] as i64;
    // Each output element's flat position in data, but for its coordinate on `axis`.
    let base: Vec<i64> = (0..total)
        .map(|f| (0..is.len()).filter(|&d| d != axis).map(|d| (f / ist[d] % is[d] * dst[d]) as i64).sum())
        .collect();
    let positions = match known(cx, n, 1) {
        Some(t) => {
            let mut p = Vec::with_capacity(total);
            for (b, k) in base.iter().zip(t.to_i64()) {
                if k < -len || k >= len {
                    return Err(n.err(format!("index {k} is out of range for axis {axis} of size {len}")));
                }
                p.push(b + (if k < 0 { k + len } else { k }) * dst[axis] as i64);
            }
            cx.konst(i64s(is.clone(), p))
        }
        None => {
            // base + (k < 0 ? k + len : k)·stride, in i64; an index out of its
            // axis's range becomes a position below the data (the gather fails),
            // even where base + k·stride would land inside it.
            let k = cx.cast(idx, DType::I64)?;
            let (k, bad) = wrap_index(cx, k, len)?;
            let stride = cx.scalar(dst[axis] as f64, DType::I64);
            let off = cx.binary(BinaryOp::Mul, k, stride)?;
            let b = cx.konst(i64s(is.clone(), base));
            let pos = cx.binary(BinaryOp::Add, b, off)?;
            let numel = ds.iter().product::<usize>() as f64;
            let invalid = cx.scalar(-numel - 1.0, DType::I64);
            cx.op(Op::Where, &[bad, invalid, pos])?
        }
    };
    Ok(vec![gather_flat(cx, data, positions, &is)?])
}

/// GatherND: each index tuple (the last dim of `indices`, `m` long) picks a slice
/// `data[b…, k0, …, k(m-1), :…]` after `batch_dims` leading dims shared with
/// `indices`. Imported as a gather over flat `data` at positions
/// `base(batch) + Σ k_j·stride_j + s` for each element `s` of the slice: a
/// constant when the indices are known, else computed at run time — also for
/// index tuples of symbolic dims (with `batch_dims = 0`; e.g. `nonzero`'s
/// indices, as PyTorch exports boolean-mask indexing).
pub fn gather_nd(cx: &mut Ctx, n: &NodeRef) -> Out {
    let data = cx.input(n, 0)?;
    let idx = cx.input(n, 1)?;
    let ds = cx.fixed_dims(n, data, "GatherND data")?;
    let id = cx.dims(idx);
    let b = usize::try_from(n.int("batch_dims", 0)?).map_err(|_| n.err("batch_dims must not be negative"))?;
    let (r, q) = (ds.len(), id.len());
    let m = match id.last() {
        None => return Err(n.err("indices must have rank 1 or more")),
        Some(d) => d.fixed().ok_or_else(|| n.unsupported(format!("GatherND indices {} of symbolic depth", cx.ty(idx))))? as usize,
    };
    let batch_fits = id[..b.min(q)].iter().zip(&ds).all(|(d, &s)| d.fixed() == Some(s as u64));
    if q <= b || r <= b || b + m > r || !batch_fits {
        return Err(n.err(format!("indices {} do not fit data {} with batch_dims {b}", cx.ty(idx), cx.ty(data))));
    }
    let tuples: Vec<Dim> = id[..q - 1].to_vec();
    let slice = &ds[b + m..];
    let seg: usize = slice.iter().product();
    let dst = strides(&ds);
    let numel = ds.iter().product::<usize>();
    let flat = cx.reshape(data, &[Dim::Fixed(numel as u64)])?;
    let fixed: Option<Vec<usize>> = tuples.iter().map(|d| d.fixed().map(|v| v as usize)).collect();
    // Each tuple's offset from its batch dims (the leading `b` of `tuples`;
    // none with symbolic tuple dims, which only `batch_dims = 0` takes).
    let base: Option<Vec<i64>> = match &fixed {
        Some(t) => {
            let (ntup, tst) = (count(n, t)?, strides(t));
            Some((0..ntup).map(|p| (0..b).map(|d| (p / tst[d] % t[d] * dst[d]) as i64).sum()).collect())
        }
        None if b == 0 => None,
        None => return Err(n.unsupported(format!("batch_dims with indices {} of symbolic dims", cx.ty(idx)))),
    };
    if let (Some(t), Some(base), Some(k)) = (&fixed, &base, known(cx, n, 1)) {
        let out: Vec<usize> = t.iter().chain(slice).copied().collect();
        let k = k.to_i64();
        let mut pos = Vec::with_capacity(count(n, &out)?);
        for (p, &bp) in base.iter().enumerate() {
            let mut off = bp;
            for j in 0..m {
                let (v, len) = (k[p * m + j], ds[b + j] as i64);
                if v < -len || v >= len {
                    return Err(n.err(format!("index {v} is out of range for dim {} of size {len}", b + j)));
                }
                off += (if v < 0 { v + len } else { v }) * dst[b + j] as i64;
            }
            pos.extend((0..seg as i64).map(|s| off + s));
        }
        let positions = cx.konst(i64s(out, pos));
        return Ok(vec![cx.op(Op::Gather { axis: 0 }, &[flat, positions])?]);
    }
    // At run time, per coordinate: wrap a negative index, add its stride's
    // share, and poison the tuple's position (past the data: the gather fails)
    // when it is out of range.
    let k = cx.cast(idx, DType::I64)?;
    let mut off = match (&fixed, base) {
        (Some(t), Some(base)) => cx.konst(i64s(t.clone(), base)),
        _ => cx.scalar(0.0, DType::I64),
    };
    // Below −numel even after the slice's offsets are added.
    let invalid = cx.scalar(-((numel + seg) as f64) - 1.0, DType::I64);
    let mut bad = None;
    for j in 0..m {
        let at = cx.konst(i64s(vec![], vec![j as i64]));
        let kj = cx.op(Op::Gather { axis: -1 }, &[k, at])?;
        let (kj, out_j) = wrap_index(cx, kj, ds[b + j] as i64)?;
        bad = Some(match bad {
            None => out_j,
            Some(prev) => cx.binary(BinaryOp::Or, prev, out_j)?,
        });
        let stride = cx.scalar(dst[b + j] as f64, DType::I64);
        let share = cx.binary(BinaryOp::Mul, kj, stride)?;
        off = cx.binary(BinaryOp::Add, off, share)?;
    }
    if let Some(bad) = bad {
        off = cx.op(Op::Where, &[bad, invalid, off])?;
    }
    let wide: Vec<Dim> = tuples.iter().cloned().chain(slice.iter().map(|_| Dim::Fixed(1))).collect();
    let off = cx.reshape(off, &wide)?;
    let iota = cx.konst(i64s(slice.to_vec(), (0..seg as i64).collect()));
    let positions = cx.binary(BinaryOp::Add, off, iota)?;
    Ok(vec![cx.op(Op::Gather { axis: 0 }, &[flat, positions])?])
}

/// Scatter through constant tables: `hits[f]` lists the updates (flat, in
/// order) that land on output element `f`. Without a reduction the last one
/// wins: one gather over `data` and `updates` concatenated. With `add`, `mul`,
/// `max` or `min`, `data` is combined with one gather of `updates` (padded with
/// the reduction's identity) per update that lands on one element.
fn scatter_table(cx: &mut Ctx, n: &NodeRef, data: Value, updates: Value, hits: Vec<Vec<usize>>, ds: &[usize]) -> Out {
    let dims: Vec<Dim> = ds.iter().map(|&k| Dim::Fixed(k as u64)).collect();
    let nd = hits.len();
    let nu = cx.ty(updates).shape.numel().unwrap_or(0) as usize;
    let dt = cx.ty(data).dtype;
    let u = cx.reshape(updates, &[Dim::Fixed(nu as u64)])?;
    let reduction = n.string("reduction")?.unwrap_or_else(|| "none".into());
    if reduction == "none" {
        let table: Vec<i64> = hits.iter().enumerate().map(|(f, h)| h.last().map_or(f, |&u| nd + u) as i64).collect();
        let d = cx.reshape(data, &[Dim::Fixed(nd as u64)])?;
        let both = cx.op(Op::Concat { axis: 0 }, &[d, u])?;
        let t = cx.konst(i64s(vec![nd], table));
        let g = cx.op(Op::Gather { axis: 0 }, &[both, t])?;
        return Ok(vec![cx.reshape(g, &dims)?]);
    }
    let (op, identity) = match (reduction.as_str(), dt.is_float()) {
        ("add", _) => (BinaryOp::Add, 0.0),
        ("mul", _) => (BinaryOp::Mul, 1.0),
        ("max", true) => (BinaryOp::Max, f64::NEG_INFINITY),
        ("min", true) => (BinaryOp::Min, f64::INFINITY),
        ("max", false) => (BinaryOp::Max, i64::MIN as f64),
        ("min", false) => (BinaryOp::Min, i64::MAX as f64),
        (r, _) => return Err(n.err(format!("reduction `{r}` is not one of none, add, mul, max, min"))),
    };
    let depth = hits.iter().map(Vec::len).max().unwrap_or(0);
    if depth > 64 {
        return Err(n.unsupported(format!("{depth} updates landing on one element (at most 64)")));
    }
    let pad = if dt.is_float() {
        cx.scalar(identity, dt)
    } else {
        // The dtype's own extreme for max/min (saturated by the constant's dtype).
        let (lo, hi) = match dt {
            DType::I8 => (i8::MIN as i64, i8::MAX as i64),
            DType::U8 => (0, u8::MAX as i64),
            DType::I32 => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        };
        let v = match op {
            BinaryOp::Max => lo,
            BinaryOp::Min => hi,
            _ => identity as i64,
        };
        cx.konst(Tensor::new(vec![], Data::from_i64(dt, &[v])).expect("scalar"))
    };
    let pad = cx.reshape(pad, &[Dim::Fixed(1)])?;
    let padded = cx.op(Op::Concat { axis: 0 }, &[u, pad])?;
    let mut out = data;
    for j in 0..depth {
        let table: Vec<i64> = hits.iter().map(|h| h.get(j).map_or(nu, |&u| u) as i64).collect();
        let t = cx.konst(i64s(vec![nd], table));
        let g = cx.op(Op::Gather { axis: 0 }, &[padded, t])?;
        let g = cx.reshape(g, &dims)?;
        out = cx.binary(op, out, g)?;
    }
    if depth == 0 {
        out = cx.copy(out)?;
    }
    Ok(vec![out])
}

pub fn scatter_elements(cx: &mut Ctx, n: &NodeRef) -> Out {
    let data = cx.input(n, 0)?;
    let updates = cx.input(n, 2)?;
    let ds = cx.fixed_dims(n, data, "ScatterElements data")?;
    let us = cx.fixed_dims(n, updates, "ScatterElements updates")?;
    let idx = cx.need_ints(n, 1, "indices")?;
    let is = known(cx, n, 1).map(|t| t.shape().to_vec()).unwrap_or_default();
    if is != us || ds.len() != us.len() || ds.is_empty() {
        return Err(n.err(format!("indices {is:?} and updates {us:?} must have one shape, of data's rank {}", ds.len())));
    }
    let axis = axis_of(n, ds.len())?;
    if let Some((d, (a, b))) = ds.iter().zip(&us).enumerate().find(|(d, (a, b))| *d != axis && b > a) {
        return Err(n.err(format!("updates dim {d} is {b}, past data's {a}")));
    }
    let nd = count(n, &ds)?;
    let nu = count(n, &us)?;
    let (dst, ust) = (strides(&ds), strides(&us));
    let len = ds[axis] as i64;
    let mut hits = vec![vec![]; nd];
    for (f, &k) in idx.iter().enumerate().take(nu) {
        if k < -len || k >= len {
            return Err(n.err(format!("index {k} is out of range for axis {axis} of size {len}")));
        }
        let k = if k < 0 { k + len } else { k } as usize;
        let at: usize = (0..us.len()).map(|d| if d == axis { k * dst[d] } else { f / ust[d] % us[d] * dst[d] }).sum();
        hits[at].push(f);
    }
    scatter_table(cx, n, data, updates, hits, &ds)
}

pub fn scatter_nd(cx: &mut Ctx, n: &NodeRef) -> Out {
    let data = cx.input(n, 0)?;
    let updates = cx.input(n, 2)?;
    let ds = cx.fixed_dims(n, data, "ScatterND data")?;
    let us = cx.fixed_dims(n, updates, "ScatterND updates")?;
    let idx = cx.need_ints(n, 1, "indices")?;
    let is = known(cx, n, 1).map(|t| t.shape().to_vec()).unwrap_or_default();
    let q = *is.last().ok_or_else(|| n.err("indices must have rank ≥ 1"))?;
    if q == 0 || q > ds.len() {
        return Err(n.err(format!("index tuples of length {q} for data of rank {}", ds.len())));
    }
    let want: Vec<usize> = is[..is.len() - 1].iter().chain(&ds[q..]).copied().collect();
    if us != want {
        return Err(n.err(format!("updates {us:?} must be {want:?} (indices {is:?}, data {ds:?})")));
    }
    let nd = count(n, &ds)?;
    count(n, &us)?;
    let dst = strides(&ds);
    let slice: usize = ds[q..].iter().product();
    let mut hits = vec![vec![]; nd];
    for (u, tuple) in idx.chunks(q).enumerate() {
        let mut at = 0usize;
        for (d, &k) in tuple.iter().enumerate() {
            let len = ds[d] as i64;
            if k < -len || k >= len {
                return Err(n.err(format!("index {k} is out of range for dim {d} of size {len}")));
            }
            at += (if k < 0 { k + len } else { k }) as usize * dst[d];
        }
        for e in 0..slice {
            hits[at + e].push(u * slice + e);
        }
    }
    scatter_table(cx, n, data, updates, hits, &ds)
}

pub fn trilu(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let xd = cx.dims(x);
    if xd.len() < 2 {
        return Err(n.err(format!("Trilu expects rank ≥ 2, found {}", cx.ty(x))));
    }
    let (Some(rows), Some(cols)) = (xd[xd.len() - 2].fixed(), xd[xd.len() - 1].fixed()) else {
        return Err(n.unsupported("symbolic last two dims (fix them when importing)"));
    };
    let k = if n.has_input(1) {
        *cx.need_ints(n, 1, "k")?.first().ok_or_else(|| n.err("k is empty"))?
    } else {
        0
    };
    let upper = n.int("upper", 1)? != 0;
    let (r, c) = (rows as usize, cols as usize);
    count(n, &[r, c])?;
    let mask: Vec<bool> = (0..r * c)
        .map(|f| {
            let d = (f % c) as i64 - (f / c) as i64;
            if upper { d >= k } else { d <= k }
        })
        .collect();
    let m = cx.konst(Tensor::new(vec![r, c], Data::Bool(mask)).expect("sized"));
    let zero = cx.scalar(0.0, cx.ty(x).dtype);
    Ok(vec![cx.op(Op::Where, &[m, x, zero])?])
}
