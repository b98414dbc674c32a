//! ONNX TfIdfVectorizer over integer tokens, written with smelt's ops at import,
//! counting as ONNX's reference does: an n-gram of the pool (sizes within
//! `[min_gram_length, max_gram_length]`) is counted at every start position
//! and every skip distance `1 ..= max_skip_count + 1` (unigrams at distance 1
//! only). For each n-gram size and distance the windows of the row
//! (`[B, P, k]`, slices stacked) are compared with all that size's n-grams at
//! once and the matches summed; a constant 0/1 matrix then places the counts
//! in their output columns (`ngram_indexes`), and `mode` weighs them (TF,
//! IDF, TFIDF, with `weights` or 1). String pools are not supported (smelt has
//! no string tensors).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{ReduceKind, Slice};
use smelt_ir::{BinaryOp, DType, Dim, Op, Tensor, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[("TfIdfVectorizer", tfidf)];

pub fn tfidf(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    if n.has_attr("pool_strings") {
        return Err(n.unsupported("string pools (smelt has no string tensors)"));
    }
    let pool = n.ints("pool_int64s")?.ok_or_else(|| n.err("TfIdfVectorizer needs pool_int64s"))?;
    let counts = n.ints("ngram_counts")?.ok_or_else(|| n.err("TfIdfVectorizer needs ngram_counts"))?;
    let indexes = n.ints("ngram_indexes")?.ok_or_else(|| n.err("TfIdfVectorizer needs ngram_indexes"))?;
    let (min_k, max_k, skips) = (n.int("min_gram_length", 1)?, n.int("max_gram_length", 1)?, n.int("max_skip_count", 0)?);
    if min_k < 1 || max_k < min_k || !(0..=1 << 10).contains(&skips) {
        return Err(n.err(format!("gram lengths {min_k}..{max_k} and max_skip_count {skips} are out of range")));
    }
    let weights = n.floats("weights")?;
    let mode = n.string("mode")?.ok_or_else(|| n.err("TfIdfVectorizer needs mode"))?;
    if !matches!(mode.as_str(), "TF" | "IDF" | "TFIDF") {
        return Err(n.err(format!("unknown mode `{mode}` (TF, IDF or TFIDF)")));
    }
    let out = usize::try_from(indexes.iter().copied().max().unwrap_or(-1) + 1).unwrap_or(0);
    super::indexing::count(n, &[out.max(1), indexes.len().max(1)])?;
    if indexes.iter().any(|&i| i < 0) || weights.as_ref().is_some_and(|w| w.len() < out) {
        return Err(n.err("ngram_indexes must be non-negative, and weights cover every output column"));
    }
    // The pool's n-grams by size: (size, first id, tokens).
    let mut groups: Vec<(usize, usize, Vec<i64>)> = vec![];
    let mut id = 0usize;
    for (i, &start) in counts.iter().enumerate() {
        let end = counts.get(i + 1).copied().unwrap_or(pool.len() as i64);
        let size = i + 1;
        if start < 0 || end < start || end as usize > pool.len() || !((end - start) as usize).is_multiple_of(size) {
            return Err(n.err(format!("ngram_counts {counts:?} do not split a pool of {}", pool.len())));
        }
        let grams = (end - start) as usize / size;
        if grams > 0 && size as i64 >= min_k && size as i64 <= max_k {
            groups.push((size, id, pool[start as usize..end as usize].to_vec()));
        }
        id += grams;
    }
    if id > indexes.len() {
        return Err(n.err(format!("{id} n-grams in the pool, {} ngram_indexes", indexes.len())));
    }
    // Rows [B, L] of i64 tokens.
    let dims = cx.fixed_dims(n, x, "TfIdfVectorizer")?;
    let (rows, len, flat_out) = match dims[..] {
        [l] => (1, l, true),
        [b, l] => (b, l, false),
        _ => return Err(n.err(format!("the input must be [C] or [B, C], found {}", cx.ty(x)))),
    };
    let x = cx.cast(x, DType::I64)?;
    let x = cx.reshape(x, &[Dim::Fixed(rows as u64), Dim::Fixed(len as u64)])?;
    // Counts of every pool n-gram in pool order: [B, id].
    let mut parts: Vec<(usize, Value)> = vec![];
    for (size, first, tokens) in &groups {
        let (k, m) = (*size, tokens.len() / size);
        super::indexing::count(n, &[rows, len, m, k])?;
        let g = cx.konst(Tensor::i64(vec![1, 1, m, k], tokens.clone()).map_err(|e| n.err(e.to_string()))?);
        let mut total: Option<Value> = None;
        let distances = if k == 1 { 1 } else { skips as usize + 1 };
        for d in 1..=distances {
            let span = (k - 1) * d;
            if span >= len {
                break;
            }
            let p = len - span;
            let mut cols = Vec::with_capacity(k);
            for j in 0..k {
                let s = (j * d) as i64;
                let sl = cx.op(Op::Slice(Slice { starts: vec![s], ends: vec![s + p as i64], axes: Some(vec![1]), steps: None }), &[x])?;
                cols.push(cx.reshape_fixed(sl, &[rows, p, 1, 1])?);
            }
            let w = if k == 1 { cols[0] } else { cx.op(Op::Concat { axis: 3 }, &cols)? };
            let eq = cx.binary(BinaryOp::Equal, w, g)?;
            let eq = cx.cast(eq, DType::F32)?;
            let all = cx.op(Op::Reduce { kind: ReduceKind::Min, axes: vec![3], keepdims: false }, &[eq])?;
            let c = cx.op(Op::Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: false }, &[all])?;
            total = Some(match total {
                Some(t) => cx.binary(BinaryOp::Add, t, c)?,
                None => c,
            });
        }
        if let Some(t) = total {
            parts.push((*first, t));
        }
    }
    // Each counted n-gram's column: a 0/1 [m, out] matrix per group.
    let mut y: Option<Value> = None;
    for (first, counts) in parts {
        let m = cx.dims(counts)[1].fixed().unwrap_or(0) as usize;
        let mut place = vec![0f32; m * out];
        for i in 0..m {
            place[i * out + indexes[first + i] as usize] = 1.0;
        }
        let place = cx.konst(Tensor::f32(vec![m, out], place).map_err(|e| n.err(e.to_string()))?);
        let v = cx.op(Op::MatMul, &[counts, place])?;
        y = Some(match y {
            Some(a) => cx.binary(BinaryOp::Add, a, v)?,
            None => v,
        });
    }
    let y = match y {
        Some(y) => y,
        None => cx.filled(&Tensor::scalar_f32(0.0), &[Dim::Fixed(rows as u64), Dim::Fixed(out as u64)])?,
    };
    let w = weights.map(|w| cx.konst(Tensor::f32(vec![1, out], w[..out].to_vec()).expect("sized")));
    let y = match (mode.as_str(), w) {
        ("TF", _) | ("TFIDF", None) => y,
        ("TFIDF", Some(w)) => cx.binary(BinaryOp::Mul, y, w)?,
        (_, w) => {
            let zero = cx.scalar(0.0, DType::F32);
            let seen = cx.binary(BinaryOp::Greater, y, zero)?;
            let on = match w {
                Some(w) => w,
                None => cx.scalar(1.0, DType::F32),
            };
            cx.op(Op::Where, &[seen, on, zero])?
        }
    };
    Ok(vec![if flat_out { cx.reshape(y, &[Dim::Fixed(out as u64)])? } else { y }])
}
