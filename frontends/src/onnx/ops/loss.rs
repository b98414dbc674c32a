//! ONNX loss functions, written with smelt's ops at import:
//! NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (a LogSoftmax over the
//! classes, then the same loss, with the log-probabilities as an optional second
//! output).
//!
//! The class each position picks is a one-hot mask — the target compared with the
//! class indices `0..C` along axis 1 — so the picked log-probability and its class
//! weight are sums over the classes of `where(mask, ·, 0)`: exact, every backend
//! runs it, and a target outside `0..C` (only allowed where it is `ignore_index`)
//! picks nothing. As the ops' function bodies (and PyTorch) define them, positions
//! whose target is `ignore_index` contribute 0 and weigh 0, and `mean` divides the
//! weighted sum by the sum of the weights the positions picked (their count
//! without `weight`).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::ReduceKind;
use smelt_ir::{BinaryOp, DType, Data, Dim, Op, Tensor, UnaryOp, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] =
    &[("NegativeLogLikelihoodLoss", negative_log_likelihood), ("SoftmaxCrossEntropyLoss", softmax_cross_entropy)];

/// `reduction`: how the per-position losses become the output.
#[derive(Clone, Copy, PartialEq)]
enum Reduction {
    None,
    Sum,
    Mean,
}

fn reduction(n: &NodeRef) -> Result<Reduction> {
    match n.string("reduction")?.as_deref().unwrap_or("mean") {
        "none" => Ok(Reduction::None),
        "sum" => Ok(Reduction::Sum),
        "mean" => Ok(Reduction::Mean),
        r => Err(n.err(format!("unknown reduction `{r}` (none, sum or mean)"))),
    }
}

pub fn negative_log_likelihood(cx: &mut Ctx, n: &NodeRef) -> Out {
    n.only_outputs(1, "the loss")?;
    let x = cx.input(n, 0)?;
    Ok(vec![nll(cx, n, x)?])
}

pub fn softmax_cross_entropy(cx: &mut Ctx, n: &NodeRef) -> Out {
    let scores = cx.input(n, 0)?;
    if cx.rank(scores) < 2 {
        return Err(n.err(format!("scores must be [N, C, …], found {}", cx.ty(scores))));
    }
    let log_prob = cx.op(Op::Softmax { axis: 1, log: true }, &[scores])?;
    let loss = nll(cx, n, log_prob)?;
    Ok(if n.has_output(1) { vec![loss, log_prob] } else { vec![loss] })
}

/// The loss of log-probabilities `x` `[N, C, d…]` against the node's target
/// (input 1, `[N, d…]`) and optional class weights (input 2, `[C]`).
fn nll(cx: &mut Ctx, n: &NodeRef, x: Value) -> Result<Value> {
    let target = cx.input(n, 1)?;
    let weight = cx.opt_input(n, 2)?;
    let red = reduction(n)?;
    let ignore = n.int_opt("ignore_index")?;
    let (xt, tt) = (cx.ty(x), cx.ty(target));
    let d = xt.dtype;
    if !d.is_float() {
        return Err(n.err(format!("the input must be float, found {xt}")));
    }
    if !matches!(tt.dtype, DType::I32 | DType::I64) {
        return Err(n.err(format!("the target must be int32 or int64, found {tt}")));
    }
    let (xd, td) = (cx.dims(x), cx.dims(target));
    if xd.len() < 2 || td.len() + 1 != xd.len() || td[0] != xd[0] || td[1..] != xd[2..] {
        return Err(n.err(format!("the input must be [N, C, d…] and the target [N, d…], found {xt} and {tt}")));
    }
    let classes = xd[1].fixed().ok_or_else(|| n.unsupported("a loss over a symbolic number of classes"))? as usize;
    super::indexing::count(n, &[classes])?;
    if let Some(w) = weight {
        let wt = cx.ty(w);
        if wt.dtype != d || cx.dims(w) != [Dim::Fixed(classes as u64)] {
            return Err(n.err(format!("the weight must be {d}[{classes}], found {wt}")));
        }
    }
    let target = cx.cast(target, DType::I64)?;
    // [N, 1, d…] against the class indices [1, C, 1…].
    let mut td1 = td.clone();
    td1.insert(1, Dim::Fixed(1));
    let t1 = cx.reshape(target, &td1)?;
    let mut shape = vec![1usize; xd.len()];
    shape[1] = classes;
    let iota = Tensor::new(shape.clone(), Data::from_i64(DType::I64, &(0..classes as i64).collect::<Vec<_>>()))
        .map_err(|e| n.err(e.to_string()))?;
    let iota = cx.konst(iota);
    let mask = cx.binary(BinaryOp::Equal, t1, iota)?;
    let zero = cx.scalar(0.0, d);
    let over_classes = |cx: &mut Ctx, v: Value| -> Result<Value> {
        let picked = cx.op(Op::Where, &[mask, v, zero])?;
        cx.op(Op::Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: false }, &[picked])
    };
    let picked = over_classes(cx, x)?;
    let mut loss = cx.unary(UnaryOp::Neg, picked)?;
    let mut picked_weight = match weight {
        Some(w) => {
            let w = cx.reshape_fixed(w, &shape)?;
            let pw = over_classes(cx, w)?;
            loss = cx.binary(BinaryOp::Mul, loss, pw)?;
            Some(pw)
        }
        None => None,
    };
    // Ignored positions: loss 0 (a `where`, not a product, so that an infinite
    // log-probability there gives no NaN) and weight 0.
    if let Some(i) = ignore {
        let i = cx.konst(Tensor::i64(vec![], vec![i]).map_err(|e| n.err(e.to_string()))?);
        let hit = cx.binary(BinaryOp::Equal, target, i)?;
        loss = cx.op(Op::Where, &[hit, zero, loss])?;
        let one = cx.scalar(1.0, d);
        let w = picked_weight.unwrap_or(one);
        picked_weight = Some(cx.op(Op::Where, &[hit, zero, w])?);
    }
    let all: Vec<i64> = (0..td.len() as i64).collect();
    let total = |cx: &mut Ctx, v: Value, kind: ReduceKind| cx.op(Op::Reduce { kind, axes: all.clone(), keepdims: false }, &[v]);
    match (red, picked_weight) {
        (Reduction::None, _) => Ok(loss),
        (Reduction::Sum, _) => total(cx, loss, ReduceKind::Sum),
        (Reduction::Mean, None) => total(cx, loss, ReduceKind::Mean),
        (Reduction::Mean, Some(pw)) => {
            let s = total(cx, loss, ReduceKind::Sum)?;
            let w = total(cx, pw, ReduceKind::Sum)?;
            cx.binary(BinaryOp::Div, s, w)
        }
    }
}
