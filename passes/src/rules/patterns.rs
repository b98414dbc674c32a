//! Pattern rules: ops recognized from their decompositions, as exporters and
//! hand-written models spell them.
//!
//! - `layer-norm`: `(x − mean(x))/√(mean((x − mean(x))²) + ε)·γ + β` (the square as
//!   `pow(d, 2)` or `mul(d, d)`; the division also as `mul(d, rsqrt(…))`) over
//!   trailing axes → `layer_norm(x, γ, β) {axis, epsilon}`;
//! - `attention`: `softmax(q·kᵀ·s)·v` → `attention(q, k, v) {scale = s}`, on
//!   `[B, T, E]` operands, or on per-head `[B, H, T, D]` operands made by
//!   reshape + transpose of `[B, T, E]` projections → `attention {heads = H}`;
//! - `gelu-erf`: `x·(erf(x·(1/√2)) + 1)·0.5` → `gelu(x)`;
//! - `gelu-tanh`: `x·(tanh((x + x³·0.044715)·√(2/π)) + 1)·0.5` → `gelu_tanh(x)`.
//!
//! The algebra rules first put scalar constants on the right and outward, and turn
//! division by a constant into multiplication, so each pattern has one spelling.

use super::{Rw, add_op, ops_in, ops_where, rw_fn, scalar, near, ty, var};
use crate::classic::{perm_of, spec_of};
use crate::egraph::analysis::EG;
use egg::{Id, Subst};
use smelt_ir::ops::{Attention, BinaryOp, ReduceKind};
use smelt_ir::{Op, UnaryOp};

pub fn rules() -> Vec<Rw> {
    vec![
        rw_fn("layer-norm", "(add (mul ?n ?g) ?beta)", |eg, _, s| layer_norm(eg, s[var("?n")], s[var("?g")], s[var("?beta")])),
        rw_fn("layer-norm-scale-left", "(add (mul ?g ?n) ?beta)", |eg, _, s| layer_norm(eg, s[var("?n")], s[var("?g")], s[var("?beta")])),
        rw_fn("attention", "(matmul ?p ?v)", attention),
        rw_fn("gelu-erf", "(mul (mul ?x (add (erf (mul ?x ?c)) ?one)) ?half)", gelu_erf),
        rw_fn("gelu-tanh", "(mul (mul ?x (add (tanh (mul ?i ?k)) ?one)) ?half)", gelu_tanh),
    ]
}

/// The axes of a keepdims mean over trailing axes of a rank-`r` input: how many.
fn trailing_mean(op: &Op, r: usize) -> Option<usize> {
    let Op::Reduce { kind: ReduceKind::Mean, axes, keepdims: true } = op else { return None };
    let mut ax = smelt_ir::ops::reduce::reduce_axes(axes, r).ok()?;
    ax.sort_unstable();
    let n = ax.len();
    (n > 0 && ax == (r - n..r).collect::<Vec<_>>()).then_some(n)
}

fn layer_norm(eg: &mut EG, n: Id, g: Id, beta: Id) -> Option<Id> {
    let div_like = ops_where(eg, n, |o| matches!(o, Op::Binary(BinaryOp::Div | BinaryOp::Mul)));
    for (op, k) in div_like {
        let (d, den) = (k[0], k[1]);
        let root = if op == Op::Binary(BinaryOp::Div) { "sqrt" } else { "rsqrt" };
        for (_, rk) in ops_in(eg, den, root) {
            for (_, ak) in ops_in(eg, rk[0], "add") {
                let Some(eps) = scalar(eg, ak[1]) else { continue };
                let v = ak[0];
                if let Some(id) = layer_norm_from(eg, d, v, eps, g, beta) {
                    return Some(id);
                }
            }
        }
    }
    None
}

fn layer_norm_from(eg: &mut EG, d: Id, v: Id, eps: f32, g: Id, beta: Id) -> Option<Id> {
    for (_, sk) in ops_in(eg, d, "sub") {
        let (x, m) = (sk[0], sk[1]);
        let xt = ty(eg, x)?;
        let r = xt.rank();
        let Some(n) = ops_where(eg, m, |o| matches!(o, Op::Reduce { .. })).into_iter().find_map(|(o, mk)| {
            (mk[0] == eg.find(x)).then(|| trailing_mean(&o, r)).flatten()
        }) else {
            continue;
        };
        let var_ok = ops_where(eg, v, |o| matches!(o, Op::Reduce { .. })).into_iter().any(|(o, vk)| {
            trailing_mean(&o, r) == Some(n)
                && ops_where(eg, vk[0], |o| matches!(o, Op::Binary(BinaryOp::Pow | BinaryOp::Mul))).into_iter().any(|(o, qk)| match o {
                    Op::Binary(BinaryOp::Pow) => qk[0] == eg.find(d) && scalar(eg, qk[1]) == Some(2.0),
                    _ => qk[0] == eg.find(d) && qk[1] == eg.find(d),
                })
        });
        if !var_ok {
            continue;
        }
        let norm = &xt.dims()[r - n..];
        let fit = |eg: &mut EG, p: Id| -> Option<Id> {
            let t = ty(eg, p)?;
            if t.dims() == norm {
                return Some(p);
            }
            let want = xt.with_shape(norm.to_vec());
            (t.shape.numel()? == want.shape.numel()? && t.dtype == xt.dtype).then_some(())?;
            add_op(eg, Op::Reshape { shape: spec_of(t.dims(), norm) }, vec![p])
        };
        let (g2, b2) = (fit(eg, g)?, fit(eg, beta)?);
        return add_op(eg, Op::LayerNorm { axis: -(n as i64), epsilon: eps }, vec![x, g2, b2]);
    }
    None
}

/// A transpose in class `c` with perm `p` (after resolving the default): its input.
fn transposed(eg: &EG, c: Id, p: &[usize]) -> Option<Id> {
    let r = ty(eg, c)?.rank();
    ops_in(eg, c, "transpose").into_iter().find_map(|(o, k)| match o {
        Op::Transpose { perm } if perm_of(&perm, r) == p => Some(k[0]),
        _ => None,
    })
}

/// A reshape in class `c` of a rank-3 `[B, T, H·D]` value into `[B, T, H, D]`: the
/// value and H.
fn split_heads(eg: &EG, c: Id) -> Option<(Id, u64)> {
    let t4 = ty(eg, c)?;
    ops_in(eg, c, "reshape").into_iter().find_map(|(_, k)| {
        let t3 = ty(eg, k[0])?;
        let ok = t3.rank() == 3 && t4.rank() == 4 && t3.dims()[..2] == t4.dims()[..2];
        ok.then(|| t4.dims()[2].fixed().map(|h| (k[0], h))).flatten()
    })
}

fn attention(eg: &mut EG, root: Id, s: &Subst) -> Option<Id> {
    let (p, v) = (s[var("?p")], s[var("?v")]);
    let rank = ty(eg, root)?.rank();
    let sc = ops_in(eg, p, "softmax").into_iter().find_map(|(o, k)| match o {
        Op::Softmax { axis, log: false } if axis == -1 || axis == rank as i64 - 1 => Some(k[0]),
        _ => None,
    })?;
    // sc = qk·s or qk.
    let mut cands: Vec<(Id, f32)> = ops_in(eg, sc, "mul").into_iter().filter_map(|(_, k)| scalar(eg, k[1]).map(|c| (k[0], c))).collect();
    cands.push((sc, 1.0));
    for (qk, scale) in cands {
        for (_, mk) in ops_in(eg, qk, "matmul") {
            let (q, kt) = (mk[0], mk[1]);
            let a = Attention { heads: 1, scale: Some(scale), causal: false };
            if rank == 3 {
                let Some(k) = transposed(eg, kt, &[0, 2, 1]) else { continue };
                if let Some(id) = add_op(eg, Op::Attention(a), vec![q, k, v]) {
                    return Some(id);
                }
            } else if rank == 4 {
                let (Some(qr), Some(kr), Some(vr)) =
                    (transposed(eg, q, &[0, 2, 1, 3]), transposed(eg, kt, &[0, 2, 3, 1]), transposed(eg, v, &[0, 2, 1, 3]))
                else {
                    continue;
                };
                let (Some((q3, h)), Some((k3, hk)), Some((v3, hv))) = (split_heads(eg, qr), split_heads(eg, kr), split_heads(eg, vr)) else {
                    continue;
                };
                if h != hk || h != hv {
                    continue;
                }
                let att = add_op(eg, Op::Attention(Attention { heads: h as usize, ..a }), vec![q3, k3, v3])?;
                let heads = ty(eg, vr)?;
                let at = ty(eg, att)?;
                let r4 = add_op(eg, Op::Reshape { shape: spec_of(at.dims(), heads.dims()) }, vec![att])?;
                return add_op(eg, Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, vec![r4]);
            }
        }
    }
    None
}

/// `x` is the same class as `y`.
fn same(eg: &EG, x: Id, y: Id) -> bool {
    eg.find(x) == eg.find(y)
}

fn gelu_erf(eg: &mut EG, _: Id, s: &Subst) -> Option<Id> {
    let ok = near(scalar(eg, s[var("?c")])?, std::f32::consts::FRAC_1_SQRT_2)
        && scalar(eg, s[var("?one")])? == 1.0
        && scalar(eg, s[var("?half")])? == 0.5;
    ok.then_some(())?;
    add_op(eg, Op::Unary(UnaryOp::Gelu), vec![s[var("?x")]])
}

/// Class `c` holds `x³` as `pow(x, 3)`, `x·(x·x)` or `(x·x)·x`.
fn is_cube(eg: &EG, c: Id, x: Id) -> bool {
    let sq = |eg: &EG, q: Id| ops_in(eg, q, "mul").iter().any(|(_, k)| same(eg, k[0], x) && same(eg, k[1], x));
    ops_in(eg, c, "pow").iter().any(|(_, k)| same(eg, k[0], x) && scalar(eg, k[1]) == Some(3.0))
        || ops_in(eg, c, "mul").iter().any(|(_, k)| (same(eg, k[0], x) && sq(eg, k[1])) || (same(eg, k[1], x) && sq(eg, k[0])))
}

fn gelu_tanh(eg: &mut EG, _: Id, s: &Subst) -> Option<Id> {
    let x = s[var("?x")];
    let k = scalar(eg, s[var("?k")])?;
    let ok = near(k, (2.0 / std::f32::consts::PI).sqrt())
        && scalar(eg, s[var("?one")])? == 1.0
        && scalar(eg, s[var("?half")])? == 0.5;
    ok.then_some(())?;
    let inner = ops_in(eg, s[var("?i")], "add").into_iter().any(|(_, ak)| {
        same(eg, ak[0], x)
            && ops_in(eg, ak[1], "mul").into_iter().any(|(_, mk)| scalar(eg, mk[1]).is_some_and(|c| near(c, 0.044715)) && is_cube(eg, mk[0], x))
    });
    inner.then_some(())?;
    add_op(eg, Op::Unary(UnaryOp::GeluTanh), vec![x])
}

