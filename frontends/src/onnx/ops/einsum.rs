//! ONNX Einsum as transposes, sums and one batched `matmul`, as ONNX Runtime
//! decomposes it: with two operands, each letter is a batch letter (in both
//! inputs and the output), contracted (in both, not the output), one side's
//! own (in one input and the output) or summed away first (in one input only).
//! One operand is a sum and a transpose. Repeated letters in one operand
//! (diagonals), ellipses and more than two operands are not supported yet.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::ReduceKind;
use smelt_ir::{Dim, Op, Value};

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[("Einsum", einsum)];

type Out = Result<Vec<Value>>;

/// The operands' letters and the output's (implicit: the letters seen once,
/// sorted).
fn parse(n: &NodeRef, eq: &str) -> Result<(Vec<Vec<char>>, Vec<char>)> {
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    if eq.contains('.') {
        return Err(n.unsupported("an Einsum with an ellipsis"));
    }
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (eq.clone(), None),
    };
    if let Some(t) = lhs.chars().chain(rhs.iter().flat_map(|r| r.chars())).find(|c| !c.is_ascii_alphabetic() && *c != ',') {
        return Err(n.err(format!("`{t}` in the Einsum equation `{eq}` is not a letter")));
    }
    let ins: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
    for t in &ins {
        if (1..t.len()).any(|i| t[..i].contains(&t[i])) {
            return Err(n.unsupported("an Einsum with a repeated letter in one operand (a diagonal)"));
        }
    }
    let out: Vec<char> = match rhs {
        Some(r) => r.chars().collect(),
        None => {
            let mut once: Vec<char> =
                ins.iter().flatten().copied().filter(|c| ins.iter().flatten().filter(|d| *d == c).count() == 1).collect();
            once.sort_unstable();
            once
        }
    };
    if let Some(c) = out.iter().find(|c| !ins.iter().flatten().any(|d| d == *c)) {
        return Err(n.err(format!("output letter `{c}` of the Einsum equation `{eq}` is in no operand")));
    }
    Ok((ins, out))
}

/// `x` (letters `have`) summed over the letters not in `keep`.
fn sum_away(cx: &mut Ctx, x: Value, have: &mut Vec<char>, keep: &dyn Fn(char) -> bool) -> Result<Value> {
    let axes: Vec<i64> = (0..have.len()).filter(|&i| !keep(have[i])).map(|i| i as i64).collect();
    if axes.is_empty() {
        return Ok(x);
    }
    have.retain(|&c| keep(c));
    cx.op(Op::Reduce { kind: ReduceKind::Sum, axes, keepdims: false }, &[x])
}

/// `x` (letters `have`) transposed to `want`.
fn permute(cx: &mut Ctx, x: Value, have: &[char], want: &[char]) -> Result<Value> {
    let perm: Vec<usize> = want.iter().map(|c| have.iter().position(|d| d == c).expect("a letter of x")).collect();
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(x);
    }
    cx.op(Op::Transpose { perm: Some(perm) }, &[x])
}

/// One dim for a group of dims: the dim itself, 1 when empty, else the product
/// (which must be fixed).
fn merged(n: &NodeRef, dims: &[Dim]) -> Result<Dim> {
    match dims {
        [] => Ok(Dim::Fixed(1)),
        [d] => Ok(d.clone()),
        _ => {
            let mut p = 1u64;
            for d in dims {
                match d {
                    Dim::Fixed(k) => p = p.checked_mul(*k).ok_or_else(|| n.err("Einsum sizes overflow"))?,
                    _ => return Err(n.unsupported("an Einsum merging symbolic dims")),
                }
            }
            Ok(Dim::Fixed(p))
        }
    }
}

fn einsum(cx: &mut Ctx, n: &NodeRef) -> Out {
    let eq = n.string("equation")?.ok_or_else(|| n.err("Einsum has no equation"))?;
    let (ins, out) = parse(n, &eq)?;
    if ins.len() != n.num_inputs() {
        return Err(n.err(format!("the equation `{eq}` has {} operands; the node has {} inputs", ins.len(), n.num_inputs())));
    }
    let mut vals = Vec::new();
    for (i, letters) in ins.iter().enumerate() {
        let v = cx.input(n, i)?;
        if cx.rank(v) != letters.len() {
            return Err(n.err(format!("operand {i} is {}, but the equation gives it {} letters", cx.ty(v), letters.len())));
        }
        vals.push(v);
    }
    let y = match (vals.as_slice(), ins.as_slice()) {
        ([x], [a]) => {
            let mut a = a.clone();
            let x = sum_away(cx, *x, &mut a, &|c| out.contains(&c))?;
            permute(cx, x, &a, &out)?
        }
        ([x, w], [a, b]) => {
            let (mut a, mut b) = (a.clone(), b.clone());
            // Letters in one operand only, and not in the output: summed first.
            let (a0, b0) = (a.clone(), b.clone());
            let x = sum_away(cx, *x, &mut a, &|c| out.contains(&c) || b0.contains(&c))?;
            let w = sum_away(cx, *w, &mut b, &|c| out.contains(&c) || a0.contains(&c))?;
            let batch: Vec<char> = out.iter().copied().filter(|c| a.contains(c) && b.contains(c)).collect();
            let contr: Vec<char> = a.iter().copied().filter(|c| b.contains(c) && !out.contains(c)).collect();
            let left: Vec<char> = out.iter().copied().filter(|c| a.contains(c) && !b.contains(c)).collect();
            let right: Vec<char> = out.iter().copied().filter(|c| b.contains(c) && !a.contains(c)).collect();
            let order_a: Vec<char> = batch.iter().chain(&left).chain(&contr).copied().collect();
            let order_b: Vec<char> = batch.iter().chain(&contr).chain(&right).copied().collect();
            let x = permute(cx, x, &a, &order_a)?;
            let w = permute(cx, w, &b, &order_b)?;
            let (xd, wd) = (cx.dims(x), cx.dims(w));
            let nb = batch.len();
            for (i, c) in batch.iter().chain(&contr).enumerate() {
                let (da, db) = (&xd[if i < nb { i } else { nb + left.len() + i - nb }], &wd[i]);
                if da != db {
                    return Err(n.err(format!("letter `{c}` is {da} in one operand and {db} in the other")));
                }
            }
            let l = merged(n, &xd[nb..nb + left.len()])?;
            let k = merged(n, &xd[nb + left.len()..])?;
            let r = merged(n, &wd[nb + contr.len()..])?;
            let bd = &xd[..nb];
            let x3: Vec<Dim> = bd.iter().cloned().chain([l, k.clone()]).collect();
            let w3: Vec<Dim> = bd.iter().cloned().chain([k, r]).collect();
            let x = cx.reshape(x, &x3)?;
            let w = cx.reshape(w, &w3)?;
            let p = cx.op(Op::MatMul, &[x, w])?;
            let pd: Vec<Dim> =
                bd.iter().cloned().chain(xd[nb..nb + left.len()].iter().cloned()).chain(wd[nb + contr.len()..].iter().cloned()).collect();
            let p = cx.reshape(p, &pd)?;
            let have: Vec<char> = batch.iter().chain(&left).chain(&right).copied().collect();
            permute(cx, p, &have, &out)?
        }
        _ => return Err(n.unsupported(format!("an Einsum of {} operands", vals.len()))),
    };
    Ok(vec![y])
}
