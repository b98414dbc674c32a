//! Algebraic rules: identities (`x+0`, `x·1`, `relu(relu x)`…), constant
//! canonicalization (scalar constants to the right and outward, division by a
//! constant as multiplication), constant broadcasting (`add(x, expand(c))` reads
//! `c` directly), transpose/reshape cancellation and sinking, and matmul
//! reassociation (the cost model decides which association pays).

use super::{Rw, add_op, add_scalar, is_const, ops_in, rw, rw_fn, rw_if, rw_op, rw_ops, scalar, ty, uniform, var};
use crate::classic::{perm_of, spec_of};
use crate::egraph::analysis::EG;
use egg::{Id, Subst};
use smelt_ir::ops::BinaryOp;
use smelt_ir::ops::shape::reshape_dims;
use smelt_ir::Op;

fn is(eg: &EG, s: &Subst, v: &str, x: f32) -> bool {
    uniform(eg, s[var(v)]) == Some(x)
}

/// `?c` is a one-element constant and `?x` is not constant.
fn const_moves(eg: &EG, s: &Subst) -> bool {
    scalar(eg, s[var("?c")]).is_some() && !is_const(eg, s[var("?x")])
}

fn const_floats(eg: &EG, s: &Subst) -> bool {
    scalar(eg, s[var("?c")]).is_some() && !is_const(eg, s[var("?y")])
}

fn ranks_ge2(eg: &EG, s: &Subst) -> bool {
    ["?a", "?b", "?c"].iter().all(|v| ty(eg, s[var(v)]).is_some_and(|t| t.rank() >= 2))
}

/// Binary arithmetic that broadcasts.
const ARITH: [&str; 6] = ["add", "sub", "mul", "div", "max", "min"];
/// Unary ops a transpose sinks through.
const SINK_UNARY: [&str; 9] = ["relu", "neg", "exp", "tanh", "sigmoid", "gelu", "silu", "sqrt", "abs"];

pub fn rules() -> Vec<Rw> {
    let mut v = vec![
        rw_if("add-zero", "(add ?x ?z)", "?x", |eg, s| is(eg, s, "?z", 0.0)),
        rw_if("add-zero-left", "(add ?z ?x)", "?x", |eg, s| is(eg, s, "?z", 0.0)),
        rw_if("sub-zero", "(sub ?x ?z)", "?x", |eg, s| is(eg, s, "?z", 0.0)),
        rw_if("mul-one", "(mul ?x ?o)", "?x", |eg, s| is(eg, s, "?o", 1.0)),
        rw_if("mul-one-left", "(mul ?o ?x)", "?x", |eg, s| is(eg, s, "?o", 1.0)),
        rw_if("div-one", "(div ?x ?o)", "?x", |eg, s| is(eg, s, "?o", 1.0)),
        rw("relu-relu", "(relu (relu ?x))", "(relu ?x)"),
        rw("neg-neg", "(neg (neg ?x))", "?x"),
        rw("identity-elim", "(identity ?x)", "?x"),
        rw_if("mul-const-right", "(mul ?c ?x)", "(mul ?x ?c)", const_moves),
        rw_if("add-const-right", "(add ?c ?x)", "(add ?x ?c)", const_moves),
        rw_if("mul-const-outward", "(mul (mul ?x ?c) ?y)", "(mul (mul ?x ?y) ?c)", const_floats),
        rw_fn("div-const-to-mul", "(div ?x ?c)", div_const_to_mul),
        rw_op("transpose-transpose", "transpose", transpose_transpose),
        rw_op("transpose-identity", "transpose", transpose_identity),
        rw_op("reshape-reshape", "reshape", reshape_reshape),
        rw_op("reshape-noop", "reshape", noop),
        rw_op("expand-noop", "expand", noop),
        rw_if("matmul-assoc-right", "(matmul (matmul ?a ?b) ?c)", "(matmul ?a (matmul ?b ?c))", ranks_ge2),
        rw_if("matmul-assoc-left", "(matmul ?a (matmul ?b ?c))", "(matmul (matmul ?a ?b) ?c)", ranks_ge2),
        rw_if("matmul-scale-into-weight", "(mul (matmul ?a ?b) ?s)", "(matmul ?a (mul ?b ?s))", |eg, s| {
            is_const(eg, s[var("?b")]) && scalar(eg, s[var("?s")]).is_some()
        }),
    ];
    v.push(rw_ops("broadcast-expand", ARITH.to_vec(), broadcast_expand));
    v.push(rw_ops("sink-transpose", SINK_UNARY.to_vec(), sink_transpose));
    v.push(rw_ops("transpose-binary", ARITH.to_vec(), transpose_binary));
    v
}

/// `div(x, c)` → `mul(x, 1/c)` for a one-element constant `c`.
fn div_const_to_mul(eg: &mut EG, _: Id, s: &Subst) -> Option<Id> {
    let (x, c) = (s[var("?x")], s[var("?c")]);
    let k = scalar(eg, c)?;
    if k == 0.0 || !k.is_finite() || is_const(eg, x) {
        return None;
    }
    let ct = ty(eg, c)?;
    let r = add_scalar(eg, ct.dtype, 1.0 / k);
    let r = if ct.rank() == 0 { r } else { add_op(eg, Op::Reshape { shape: spec_of(&[], ct.dims()) }, vec![r])? };
    add_op(eg, Op::Binary(BinaryOp::Mul), vec![x, r])
}

fn transpose_transpose(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let Op::Transpose { perm: p2 } = op else { return None };
    let r = ty(eg, kids[0])?.rank();
    let (inner, ikids) = ops_in(eg, kids[0], "transpose").into_iter().next()?;
    let Op::Transpose { perm: p1 } = inner else { return None };
    let (p1, p2) = (perm_of(&p1, r), perm_of(p2, r));
    let p: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
    if p.iter().enumerate().all(|(i, &v)| i == v) {
        return Some(ikids[0]);
    }
    add_op(eg, Op::Transpose { perm: Some(p) }, vec![ikids[0]])
}

fn transpose_identity(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let Op::Transpose { perm } = op else { return None };
    let r = ty(eg, kids[0])?.rank();
    perm_of(perm, r).iter().enumerate().all(|(i, &v)| i == v).then_some(kids[0])
}

fn reshape_reshape(eg: &mut EG, root: Id, _: &Op, kids: &[Id]) -> Option<Id> {
    let out = ty(eg, root)?;
    let (_, ikids) = ops_in(eg, kids[0], "reshape").into_iter().next()?;
    let src = ty(eg, ikids[0])?;
    if src == out {
        return Some(ikids[0]);
    }
    let spec = spec_of(src.dims(), out.dims());
    reshape_dims(src.dims(), &spec).ok()?;
    add_op(eg, Op::Reshape { shape: spec }, vec![ikids[0]])
}

/// A reshape or expand that changes nothing is its input.
fn noop(eg: &mut EG, root: Id, _: &Op, kids: &[Id]) -> Option<Id> {
    (ty(eg, root)? == ty(eg, kids[0])?).then_some(kids[0])
}

/// `u(transpose(x))` → `transpose(u(x))`.
fn sink_transpose(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let (tr, tk) = ops_in(eg, kids[0], "transpose").into_iter().next()?;
    let inner = add_op(eg, op.clone(), vec![tk[0]])?;
    add_op(eg, tr, vec![inner])
}

/// `b(transpose(p, x), transpose(p, y))` → `transpose(p, b(x, y))` for operands of
/// one rank.
fn transpose_binary(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let (tp, pk) = ops_in(eg, kids[0], "transpose").into_iter().next()?;
    let (tq, qk) = ops_in(eg, kids[1], "transpose").into_iter().next()?;
    let (rp, rq) = (ty(eg, pk[0])?.rank(), ty(eg, qk[0])?.rank());
    let (Op::Transpose { perm: a }, Op::Transpose { perm: b }) = (&tp, &tq) else { return None };
    if rp != rq || perm_of(a, rp) != perm_of(b, rq) {
        return None;
    }
    let inner = add_op(eg, op.clone(), vec![pk[0], qk[0]])?;
    add_op(eg, tp, vec![inner])
}

/// `b(x, expand(e))` → `b(x, e)` (either operand): broadcasting does the expanding.
fn broadcast_expand(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    for at in 0..2 {
        if let Some((_, ek)) = ops_in(eg, kids[at], "expand").into_iter().next() {
            let mut k = kids.to_vec();
            k[at] = ek[0];
            return add_op(eg, op.clone(), k);
        }
    }
    None
}
