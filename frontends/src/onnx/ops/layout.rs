//! ONNX ops that move elements, written with smelt's shape ops at import:
//! DepthToSpace and SpaceToDepth (reshape, transpose, reshape), CenterCropPad
//! (crops and pads), ReverseSequence (a gather at positions computed at run time
//! from the sequence lengths), Col2Im (a gather of each output pixel's
//! contributions, summed), EyeLike (a constant), NonZero and Unique (smelt's
//! `nonzero` and `unique`, whose counts the data binds), Compress (a gather of constant positions when
//! the condition is known at import, else of `nonzero`'s) and TensorScatter (a gather from the cache and the update at positions computed
//! at run time from the write indices).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use super::super::tensor::dtype;
use super::tensor::pad_crop;
use smelt_ir::ops::{PadMode, ReduceKind};
use smelt_ir::{BinaryOp, DType, Data, Dim, Op, Tensor, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("DepthToSpace", depth_to_space),
    ("SpaceToDepth", depth_to_space),
    ("CenterCropPad", center_crop_pad),
    ("ReverseSequence", reverse_sequence),
    ("Col2Im", col2im),
    ("EyeLike", eye_like),
    ("Compress", compress),
    ("NonZero", nonzero),
    ("Unique", unique),
    ("TensorScatter", tensor_scatter),
];

/// DepthToSpace (modes DCR and CRD) and SpaceToDepth on `[N, C, H, W]`, as
/// ONNX defines them: a reshape to 6-d, a transpose, a reshape back to 4-d.
pub fn depth_to_space(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let dims = cx.dims(x);
    let b = n.int("blocksize", 0)?;
    if b < 1 {
        return Err(n.err(format!("blocksize must be at least 1, found {b}")));
    }
    let b = b as u64;
    let [batch, c, h, w] = &dims[..] else {
        return Err(n.err(format!("the input must be [N, C, H, W], found {}", cx.ty(x))));
    };
    let (Some(c), Some(h), Some(w)) = (c.fixed(), h.fixed(), w.fixed()) else {
        return Err(n.unsupported("symbolic channel or spatial dims"));
    };
    let nb = batch.clone();
    let f = Dim::Fixed;
    let (six, perm, out) = if n.op_type() == "SpaceToDepth" {
        if !h.is_multiple_of(b) || !w.is_multiple_of(b) {
            return Err(n.err(format!("the spatial dims {h}×{w} are not multiples of the blocksize {b}")));
        }
        (vec![nb.clone(), f(c), f(h / b), f(b), f(w / b), f(b)], vec![0, 3, 5, 1, 2, 4], vec![nb, f(c * b * b), f(h / b), f(w / b)])
    } else {
        if !c.is_multiple_of(b * b) {
            return Err(n.err(format!("the channels ({c}) are not a multiple of blocksize² ({})", b * b)));
        }
        let cb = c / (b * b);
        let out = vec![nb.clone(), f(cb), f(h * b), f(w * b)];
        match n.string("mode")?.as_deref().unwrap_or("DCR") {
            "DCR" => (vec![nb, f(b), f(b), f(cb), f(h), f(w)], vec![0, 3, 4, 1, 5, 2], out),
            "CRD" => (vec![nb, f(cb), f(b), f(b), f(h), f(w)], vec![0, 1, 4, 2, 5, 3], out),
            m => return Err(n.err(format!("unknown mode `{m}` (DCR or CRD)"))),
        }
    };
    let t = cx.reshape(x, &six)?;
    let t = cx.op(Op::Transpose { perm: Some(perm) }, &[t])?;
    Ok(vec![cx.reshape(t, &out)?])
}

/// CenterCropPad: each listed axis cropped (the window centred, the odd element
/// off the end) or zero-padded (the odd element at the end) to its new size.
pub fn center_crop_pad(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let shape = cx.need_ints(n, 1, "shape")?;
    let dims = cx.dims(x);
    let r = dims.len();
    let axes: Vec<i64> = n.ints("axes")?.unwrap_or_else(|| (0..r as i64).collect());
    if axes.len() != shape.len() {
        return Err(n.err(format!("{} sizes for {} axes", shape.len(), axes.len())));
    }
    let mut pads = vec![0i64; 2 * r];
    for (&a, &size) in axes.iter().zip(&shape) {
        let ax = smelt_ir::shape::normalize_axis(a, r).ok_or_else(|| n.err(format!("axis {a} is out of range for rank {r}")))?;
        let len = dims[ax].fixed().ok_or_else(|| n.unsupported("a crop or pad of a symbolic dim"))? as i64;
        if size < 0 {
            return Err(n.err(format!("negative size {size}")));
        }
        let diff = size - len;
        // Padding: diff/2 before, the rest after; cropping the same, negated.
        let (before, after) = if diff >= 0 { (diff / 2, diff - diff / 2) } else { (-(-diff / 2), -(-diff - -diff / 2)) };
        pads[ax] = before;
        pads[r + ax] = after;
    }
    Ok(vec![pad_crop(cx, x, &pads, PadMode::Constant, 0.0)?])
}

/// ReverseSequence: for each batch entry `b`, its first `sequence_lens[b]`
/// elements along the time axis reversed, the rest as they are. The positions
/// are computed at run time (i64): `t' = len − 1 − t` where `t < len`, and the
/// element at flat position `p` reads `p + (t' − t)·stride(time)`.
pub fn reverse_sequence(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let lens = cx.input(n, 1)?;
    let dims = cx.fixed_dims(n, x, "ReverseSequence")?;
    let r = dims.len();
    let (ba, ta) = (n.int("batch_axis", 1)?, n.int("time_axis", 0)?);
    if r < 2 || !matches!((ba, ta), (0, 1) | (1, 0)) {
        return Err(n.err(format!("batch_axis {ba} and time_axis {ta} must be 0 and 1 in some order, of a rank-{r} input")));
    }
    let (ba, ta) = (ba as usize, ta as usize);
    let lt = cx.ty(lens);
    if !matches!(lt.dtype, DType::I64 | DType::I32) || cx.dims(lens) != [Dim::Fixed(dims[ba] as u64)] {
        return Err(n.err(format!("sequence_lens must be int64[{}], found {lt}", dims[ba])));
    }
    let lens = cx.cast(lens, DType::I64)?;
    let total = super::indexing::count(n, &dims)?;
    let stride: usize = dims[ta + 1..].iter().product();
    let konst = |cx: &mut Ctx, shape: Vec<usize>, v: Vec<i64>| -> Result<Value> {
        Ok(cx.konst(Tensor::i64(shape, v).map_err(|e| n.err(e.to_string()))?))
    };
    // t along the time axis and the lengths along the batch axis, each
    // broadcast over the other.
    let mut tshape = vec![1; r];
    tshape[ta] = dims[ta];
    let t = konst(cx, tshape, (0..dims[ta] as i64).collect())?;
    let mut lshape = vec![1; r];
    lshape[ba] = dims[ba];
    let len = cx.reshape_fixed(lens, &lshape)?;
    let one = konst(cx, vec![], vec![1])?;
    let inside = cx.binary(BinaryOp::Less, t, len)?;
    let last = cx.binary(BinaryOp::Sub, len, one)?;
    let back = cx.binary(BinaryOp::Sub, last, t)?;
    let moved = cx.op(Op::Where, &[inside, back, t])?;
    let shift = cx.binary(BinaryOp::Sub, moved, t)?;
    let st = konst(cx, vec![], vec![stride as i64])?;
    let shift = cx.binary(BinaryOp::Mul, shift, st)?;
    let flat_pos = konst(cx, dims.clone(), (0..total as i64).collect())?;
    let pos = cx.binary(BinaryOp::Add, flat_pos, shift)?;
    Ok(vec![super::indexing::gather_flat(cx, x, pos, &dims)?])
}

/// Col2Im: the sum, at each image pixel, of the column entries that the
/// sliding blocks put there. Each pixel's contributions (at most one per
/// kernel offset) are listed at import, padded with a zero slot, gathered and
/// summed: `[N, C·K, L]` → `[N, C, K·L + 1]` → `[N, C, P, M]` → `[N, C, image…]`.
pub fn col2im(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let image: Vec<usize> = positive(n, cx.need_ints(n, 1, "image_shape")?, "image_shape")?;
    let block: Vec<usize> = positive(n, cx.need_ints(n, 2, "block_shape")?, "block_shape")?;
    let s = image.len();
    if block.len() != s || s == 0 {
        return Err(n.err(format!("image_shape {image:?} and block_shape {block:?} differ in rank")));
    }
    let attr = |name: &str, len: usize, default: usize| -> Result<Vec<usize>> {
        match n.ints(name)? {
            Some(v) if v.len() == len && v.iter().all(|&k| k >= 0) => Ok(v.iter().map(|&k| k as usize).collect()),
            Some(v) => Err(n.err(format!("{name} {v:?} must be {len} non-negative values"))),
            None => Ok(vec![default; len]),
        }
    };
    let (dil, pads, strides) = (attr("dilations", s, 1)?, attr("pads", 2 * s, 0)?, attr("strides", s, 1)?);
    if dil.contains(&0) || strides.contains(&0) {
        return Err(n.err("dilations and strides must be at least 1"));
    }
    // Blocks along each spatial dim.
    let mut grid = Vec::with_capacity(s);
    for d in 0..s {
        // In u128: the attributes are only checked non-negative.
        let span = dil[d] as u128 * (block[d] as u128 - 1) + 1;
        let room = image[d] as u128 + pads[d] as u128 + pads[s + d] as u128;
        if room < span {
            return Err(n.err(format!("a block of {span} does not fit dim {d} of the padded image ({room})")));
        }
        let g = (room - span) / strides[d] as u128 + 1;
        grid.push(usize::try_from(g).map_err(|_| n.err(format!("{g} blocks along dim {d}")))?);
    }
    let (k, l) = (super::indexing::count(n, &block)?, super::indexing::count(n, &grid)?);
    super::indexing::count(n, &[k, l])?;
    let xd = cx.dims(x);
    let (Some(ck), Some(xl)) = (xd.get(1).and_then(Dim::fixed), xd.get(2).and_then(Dim::fixed)) else {
        return Err(n.err(format!("the input must be [N, C·K, L] with fixed C·K and L, found {}", cx.ty(x))));
    };
    if xd.len() != 3 || !(ck as usize).is_multiple_of(k) || xl as usize != l {
        return Err(n.err(format!("the input {} does not hold blocks of {k} on a grid of {l}", cx.ty(x))));
    }
    let c = ck as usize / k;
    // Each pixel's contributions, as positions k·L + l in a channel's columns.
    let pixels = super::indexing::count(n, &image)?;
    let mut hits: Vec<Vec<i64>> = vec![vec![]; pixels];
    for ki in 0..k {
        for li in 0..l {
            let (mut kr, mut lr, mut p) = (ki, li, 0usize);
            let mut inside = true;
            for d in (0..s).rev() {
                let (kd, ld) = (kr % block[d], lr % grid[d]);
                kr /= block[d];
                lr /= grid[d];
                let pos = ld as i128 * strides[d] as i128 + kd as i128 * dil[d] as i128 - pads[d] as i128;
                if pos < 0 || pos >= image[d] as i128 {
                    inside = false;
                    continue;
                }
                let stride: usize = image[d + 1..].iter().product();
                p += pos as usize * stride;
            }
            if inside {
                hits[p].push((ki * l + li) as i64);
            }
        }
    }
    let m = hits.iter().map(Vec::len).max().unwrap_or(0).max(1);
    super::indexing::count(n, &[pixels, m])?;
    let zero_slot = (k * l) as i64;
    let table: Vec<i64> = hits.iter().flat_map(|h| (0..m).map(|j| h.get(j).copied().unwrap_or(zero_slot))).collect();
    let table = cx.konst(Tensor::i64(vec![pixels, m], table).map_err(|e| n.err(e.to_string()))?);
    let batch = xd[0].clone();
    let cols = cx.reshape(x, &[batch.clone(), Dim::Fixed(c as u64), Dim::Fixed((k * l) as u64)])?;
    let padded = cx.op(Op::Pad { pads: vec![0, 0, 0, 0, 0, 1], mode: PadMode::Constant, value: 0.0 }, &[cols])?;
    let g = cx.op(Op::Gather { axis: 2 }, &[padded, table])?;
    let sum = cx.op(Op::Reduce { kind: ReduceKind::Sum, axes: vec![3], keepdims: false }, &[g])?;
    let mut out = vec![batch, Dim::Fixed(c as u64)];
    out.extend(smelt_ir::Shape::from(&image[..]).0);
    Ok(vec![cx.reshape(sum, &out)?])
}

fn positive(n: &NodeRef, v: Vec<i64>, what: &str) -> Result<Vec<usize>> {
    if v.iter().any(|&k| k < 1) {
        return Err(n.err(format!("{what} {v:?} must be positive")));
    }
    Ok(v.into_iter().map(|k| k as usize).collect())
}

/// EyeLike: a constant of the input's (fixed, 2-d) shape, 1 on the `k`-th
/// diagonal and 0 elsewhere, in `dtype` (default the input's).
pub fn eye_like(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let dims = cx.fixed_dims(n, x, "EyeLike")?;
    let [rows, cols] = dims[..] else {
        return Err(n.err(format!("the input must be 2-d, found {}", cx.ty(x))));
    };
    let to = match n.int_opt("dtype")? {
        Some(code) => dtype(code as i32).map_err(|e| n.unsupported(e))?,
        None => cx.ty(x).dtype,
    };
    let k = n.int("k", 0)?;
    super::indexing::count(n, &[rows, cols])?;
    let v: Vec<i64> = (0..rows * cols).map(|i| i64::from((i % cols) as i64 - (i / cols) as i64 == k)).collect();
    let data = if to == DType::Bool { Data::Bool(v.iter().map(|&b| b == 1).collect()) } else { Data::from_i64(to, &v) };
    let t = Tensor::new(vec![rows, cols], data).map_err(|e| n.err(e.to_string()))?;
    Ok(vec![cx.konst(t)])
}

/// Compress: the slices along `axis` (of the flattened input without one)
/// whose condition entry is true; the condition may be shorter than the axis.
/// NonZero: smelt's `nonzero`, whose count is a symbol of its own
/// (`<node>_count`) bound by the data at run time.
pub fn nonzero(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    Ok(vec![nonzero_of(cx, n, x)?])
}

fn nonzero_of(cx: &mut Ctx, n: &NodeRef, x: Value) -> Result<Value> {
    let count = cx.count_symbol(n);
    cx.op(Op::NonZero { count }, &[x])
}

/// Unique: smelt's `unique` (its four outputs: values, first indices, inverse
/// indices, counts), whose count the data binds.
pub fn unique(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let count = cx.count_symbol(n);
    let sorted = n.int("sorted", 1)? != 0;
    let op = Op::Unique(smelt_ir::ops::Unique { axis: n.int_opt("axis")?, sorted, count });
    cx.op_multi(op, &[x])
}

/// Compress: a gather of the kept positions along the axis (of the flattened
/// input without one). A condition known at import keeps a constant index
/// list; one computed at run time goes through `nonzero`, so the output's
/// size is bound by the data.
pub fn compress(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let known = n.input_name(1).and_then(|c| cx.known(c)).and_then(|k| k.tensor());
    let (x, axis) = match n.int_opt("axis")? {
        Some(a) => {
            let r = cx.rank(x);
            (x, smelt_ir::shape::normalize_axis(a, r).ok_or_else(|| n.err(format!("axis {a} is out of range for rank {r}")))?)
        }
        None => {
            let numel = cx.ty(x).shape.numel().ok_or_else(|| n.unsupported("a Compress without axis of symbolic dims"))?;
            (cx.reshape(x, &[Dim::Fixed(numel)])?, 0)
        }
    };
    let Some(cond) = known else {
        let c = cx.input(n, 1)?;
        if cx.rank(c) != 1 {
            return Err(n.err(format!("the condition {} is not 1-d", cx.ty(c))));
        }
        if let (Some(cl), Some(len)) = (cx.dims(c)[0].fixed(), cx.dims(x)[axis].fixed())
            && cl > len
        {
            return Err(n.err(format!("the condition has {cl} entries for an axis of {len}")));
        }
        let idx = nonzero_of(cx, n, c)?;
        let k = cx.dims(idx)[1].clone();
        let idx = cx.reshape(idx, &[k])?;
        return Ok(vec![cx.op(Op::Gather { axis: axis as i64 }, &[x, idx])?]);
    };
    let keep: Vec<i64> = cond.to_f32().iter().enumerate().filter(|(_, c)| **c != 0.0).map(|(i, _)| i as i64).collect();
    let len = cx.dims(x)[axis].fixed().ok_or_else(|| n.unsupported("a Compress along a symbolic axis"))?;
    if cond.numel() as u64 > len {
        return Err(n.err(format!("the condition has {} entries for an axis of {len}", cond.numel())));
    }
    let idx = cx.konst(Tensor::i64(vec![keep.len()], keep).map_err(|e| n.err(e.to_string()))?);
    Ok(vec![cx.op(Op::Gather { axis: axis as i64 }, &[x, idx])?])
}

/// TensorScatter: the cache with, for each batch entry `b`, the update written
/// along `axis` from `write_indices[b]` (wrapping around in `circular` mode).
/// Each cache position `p` reads the update at `p − w[b]` where that lies in the
/// update, else the cache: a gather from the two concatenated along `axis`.
pub fn tensor_scatter(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (past, update) = (cx.input(n, 0)?, cx.input(n, 1)?);
    let w = cx.opt_input(n, 2)?;
    let pd = cx.fixed_dims(n, past, "TensorScatter")?;
    let ud = cx.fixed_dims(n, update, "TensorScatter")?;
    let r = pd.len();
    let axis = n.int("axis", -2)?;
    let a = smelt_ir::shape::normalize_axis(axis, r).ok_or_else(|| n.err(format!("axis {axis} is out of range for rank {r}")))?;
    let circular = match n.string("mode")?.as_deref().unwrap_or("linear") {
        "linear" => false,
        "circular" => true,
        m => return Err(n.err(format!("unknown mode `{m}` (linear or circular)"))),
    };
    if r < 2 || a == 0 || ud.len() != r || (0..r).any(|i| if i == a { ud[i] > pd[i] } else { ud[i] != pd[i] }) {
        return Err(n.err(format!("the update {} does not fit the cache {} along axis {axis}", cx.ty(update), cx.ty(past))));
    }
    let (m, s) = (pd[a] as i64, ud[a] as i64);
    let k = |cx: &mut Ctx, shape: Vec<usize>, v: Vec<i64>| -> Result<Value> {
        Ok(cx.konst(Tensor::i64(shape, v).map_err(|e| n.err(e.to_string()))?))
    };
    // The write index of each batch entry, [B, 1, …].
    let mut wshape = vec![1usize; r];
    wshape[0] = pd[0];
    let w = match w {
        Some(w) => {
            let w = cx.cast(w, DType::I64)?;
            cx.reshape_fixed(w, &wshape)?
        }
        None => k(cx, wshape, vec![0; pd[0]])?,
    };
    let mut pshape = vec![1usize; r];
    pshape[a] = pd[a];
    let p = k(cx, pshape, (0..m).collect())?;
    let mut idx = cx.binary(BinaryOp::Sub, p, w)?;
    if circular {
        let zero = k(cx, vec![], vec![0])?;
        let mm = k(cx, vec![], vec![m])?;
        let neg = cx.binary(BinaryOp::Less, idx, zero)?;
        let up = cx.binary(BinaryOp::Add, idx, mm)?;
        idx = cx.op(Op::Where, &[neg, up, idx])?;
    }
    let (zero, sk) = (k(cx, vec![], vec![0])?, k(cx, vec![], vec![s])?);
    let below = cx.binary(BinaryOp::Less, idx, zero)?;
    let fits = cx.binary(BinaryOp::Less, idx, sk)?;
    let not_below = cx.unary(smelt_ir::UnaryOp::Not, below)?;
    let inside = cx.binary(BinaryOp::And, not_below, fits)?;
    // Positions along the concatenation [cache; update]: the update's from m.
    let mk = k(cx, vec![], vec![m])?;
    let from_update = cx.binary(BinaryOp::Add, idx, mk)?;
    let pos = cx.op(Op::Where, &[inside, from_update, p])?;
    // Flat positions in the concatenation, shaped as the cache.
    super::indexing::count(n, &pd)?;
    super::indexing::count(n, &ud)?;
    let (outer, inner): (usize, usize) = (pd[..a].iter().product(), pd[a + 1..].iter().product());
    let width = (m + s) as usize * inner;
    let mut oshape = pd.clone();
    oshape[a] = 1;
    let base: Vec<i64> = (0..outer).flat_map(|o| (0..inner).map(move |i| (o * width + i) as i64)).collect();
    let base = k(cx, oshape, base)?;
    let ik = k(cx, vec![], vec![inner as i64])?;
    let scaled = cx.binary(BinaryOp::Mul, pos, ik)?;
    let flat_pos = cx.binary(BinaryOp::Add, base, scaled)?;
    let both = cx.op(Op::Concat { axis: a as i64 }, &[past, update])?;
    Ok(vec![super::indexing::gather_flat(cx, both, flat_pos, &pd)?])
}
