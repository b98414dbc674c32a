//! Fusion rules: they create the fused ops of `ir/src/ops/fused.rs`.
//!
//! - `gemm-to-matmul`: a plain gemm is a matmul plus its bias (so the matmul rules
//!   apply to it);
//! - `conv-bias`, `conv-act-*`, `conv-residual`: `act(conv(x, w) + b + r)` →
//!   `fused_conv2d(x, w, b, r) {activation}`;
//! - `matmul-epilogue-*`: elementwise ops on a matmul's result join its epilogue
//!   (`fused_matmul(a, b, e…) {epilogue}`);
//! - `conv-epilogue-region`: an elementwise op on a conv's result whose other
//!   operands have the conv's type (or are scalars) becomes the conv's epilogue
//!   (`fused_conv(x, w, b, e…) {epilogue}`) — unless the epilogue reads extra
//!   inputs and calls a transcendental function (measured slower on a CPU);
//! - `elementwise-region`: an elementwise op absorbs the elementwise op feeding it
//!   into one `elementwise` region.
//!
//! A value is absorbed only when the original graph used it once (the analysis's
//! `uses`), so fusion never computes anything twice.

use super::{Rw, add_const, add_op, is_const, ops_where, rw_fn, rw_op, rw_ops, scalar, ty, uses, var};
use crate::egraph::analysis::EG;
use egg::{Id, Subst};
use smelt_ir::ops::elementwise::{BINARY, PARAM_UNARY, PLAIN_UNARY};
use smelt_ir::ops::{BinaryOp, Conv, Gemm, UnaryOp};
use smelt_ir::{DimSpec, Expr, Op, Tensor};

/// The activations `fused_conv` takes.
pub const CONV_ACTS: [&str; 6] = ["relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu"];
/// Unary ops that join a matmul epilogue.
const EPILOGUE_UNARY: [&str; 8] = ["relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu", "exp", "neg"];
const EPILOGUE_BINARY: [&str; 6] = ["add", "sub", "mul", "div", "max", "min"];
/// The largest expression a region or epilogue grows to (ops).
const MAX_EXPR: usize = 24;
const MAX_REGION_INPUTS: usize = 8;

pub fn rules() -> Vec<Rw> {
    let mut v = vec![
        rw_op("gemm-to-matmul", "gemm", gemm_to_matmul),
        rw_fn("conv-bias", "(add ?c ?b)", conv_bias),
        rw_fn("conv-bias-left", "(add ?b ?c)", conv_bias),
        rw_fn("conv-residual", "(add ?c ?r)", conv_residual),
        rw_fn("conv-residual-left", "(add ?r ?c)", conv_residual),
    ];
    v.push(rw_ops("conv-act", CONV_ACTS.to_vec(), conv_act));
    v.push(rw_ops("matmul-epilogue-unary", EPILOGUE_UNARY.to_vec(), epilogue_unary));
    v.push(rw_ops("matmul-epilogue-binary", EPILOGUE_BINARY.to_vec(), |eg, r, op, k| epilogue_binary(eg, r, op, k, false)));
    v.push(rw_ops("matmul-epilogue-binary-left", EPILOGUE_BINARY.to_vec(), |eg, r, op, k| epilogue_binary(eg, r, op, k, true)));
    v.push(rw_op("matmul-epilogue-region", "elementwise", epilogue_region));
    let unary = PLAIN_UNARY.iter().map(|(n, _)| *n).chain(PARAM_UNARY.iter().map(|(n, _)| *n));
    let names: Vec<&str> = unary.chain(BINARY.iter().map(|(n, _)| *n)).chain(["where", "elementwise"]).filter(|n| *n != "identity").collect();
    v.push(rw_ops("conv-epilogue-region", names.clone(), conv_epilogue_region));
    v.push(rw_ops("elementwise-region", names, elementwise_region));
    v
}

/// The op of the matched root e-node with children `kids`.
pub fn root_op(eg: &EG, root: Id, kids: &[Id]) -> Option<Op> {
    eg[root].nodes.iter().find_map(|n| {
        let same = n.children.len() == kids.len() && n.children.iter().zip(kids).all(|(a, b)| eg.find(*a) == eg.find(*b));
        if same { n.ir().cloned() } else { None }
    })
}

fn gemm_to_matmul(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let Op::Gemm(Gemm { trans_a: false, trans_b, alpha, beta }) = op else { return None };
    if *alpha != 1.0 || *beta != 1.0 {
        return None;
    }
    let b = if *trans_b { add_op(eg, Op::Transpose { perm: Some(vec![1, 0]) }, vec![kids[1]])? } else { kids[1] };
    let m = add_op(eg, Op::MatMul, vec![kids[0], b])?;
    match kids.get(2) {
        Some(&c) => add_op(eg, Op::Binary(BinaryOp::Add), vec![m, c]),
        None => Some(m),
    }
}

/// Convs (plain, or fused with identity activation and no residual) in class `c`
/// that may be absorbed: `(conv, kids)`.
fn absorbable_convs(eg: &EG, c: Id, residual_ok: bool) -> Vec<(Conv, Vec<Id>)> {
    if uses(eg, c) > 1 {
        return vec![];
    }
    ops_where(eg, c, |op| matches!(op, Op::Conv(_)) || matches!(op, Op::FusedConv { activation: UnaryOp::Identity, epilogue: None, .. }))
        .into_iter()
        .filter_map(|(op, k)| match op {
            Op::Conv(cv) => Some((cv, k)),
            Op::FusedConv { conv, .. } if k.len() <= 3 || residual_ok => Some((conv, k)),
            _ => None,
        })
        .collect()
}

/// `add(conv(x, w, b0?), b)` with a constant per-channel `b` → `conv(x, w, b0 + b)`.
fn conv_bias(eg: &mut EG, _: Id, s: &Subst) -> Option<Id> {
    let (c, b) = (s[var("?c")], s[var("?b")]);
    if !is_const(eg, b) {
        return None;
    }
    let out = ty(eg, c)?;
    let bt = ty(eg, b)?;
    let m = out.dims().get(1)?.fixed()?;
    // b, right-aligned against the output, must be [.., M, 1, …, 1] with M at dim 1.
    let r = out.rank();
    if bt.rank() > r || bt.rank() + 1 < r {
        return None;
    }
    let pad = r - bt.rank();
    let ok = (0..r).all(|i| {
        let d = if i < pad { 1 } else { bt.dims()[i - pad].fixed().unwrap_or(0) };
        if i == 1 { d == m } else { d == 1 }
    });
    if !ok {
        return None;
    }
    let (conv, kids) = absorbable_convs(eg, c, false).into_iter().find(|(_, k)| k.len() <= 3)?;
    let flat = add_op(eg, Op::Reshape { shape: vec![DimSpec::Int(m as i64)] }, vec![b])?;
    let bias = match kids.get(2) {
        Some(&b0) => add_op(eg, Op::Binary(BinaryOp::Add), vec![b0, flat])?,
        None => flat,
    };
    add_op(eg, Op::Conv(conv), vec![kids[0], kids[1], bias])
}

/// `add(conv(x, w, b), r)` with `r` of the conv's type → `fused_conv(x, w, b, r)`.
fn conv_residual(eg: &mut EG, _: Id, s: &Subst) -> Option<Id> {
    let (c, r) = (s[var("?c")], s[var("?r")]);
    if eg.find(c) == eg.find(r) || ty(eg, c)? != ty(eg, r)? {
        return None;
    }
    let (conv, kids) = absorbable_convs(eg, c, false).into_iter().next()?;
    let bias = match kids.get(2) {
        Some(&b) => b,
        None => {
            let t = ty(eg, kids[1])?;
            let m = t.dims()[0].fixed()? as usize;
            add_const(eg, Tensor::zeros(t.dtype, vec![m]))
        }
    };
    add_op(eg, Op::FusedConv { conv, activation: UnaryOp::Identity, epilogue: None }, vec![kids[0], kids[1], bias, r])
}

/// `act(conv(…))` → `fused_conv(…) {activation = act}`.
fn conv_act(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let c = kids[0];
    let Op::Unary(act) = *op else { return None };
    let (conv, kids) = absorbable_convs(eg, c, true).into_iter().max_by_key(|(_, k)| k.len())?;
    add_op(eg, Op::FusedConv { conv, activation: act, epilogue: None }, kids)
}

/// A conv (plain or fused) in class `c` used once, in epilogue form: `(conv,
/// epilogue, kids)` with kids `[x, w, b, extras…]`, `$0` the conv plus its bias
/// (a zero bias added when it has none) and `$1…` the extras.
fn conv_as_epilogue(eg: &mut EG, c: Id) -> Option<(Conv, Expr, Vec<Id>)> {
    if uses(eg, c) > 1 {
        return None;
    }
    let (op, mut kids) = ops_where(eg, c, |op| matches!(op, Op::Conv(_) | Op::FusedConv { .. }))
        .into_iter()
        .max_by_key(|(op, k)| matches!(op, Op::FusedConv { .. }) as usize * 8 + k.len())?;
    if kids.len() == 2 {
        let t = ty(eg, kids[1])?;
        let m = t.dims()[0].fixed()? as usize;
        kids.push(add_const(eg, Tensor::zeros(t.dtype, vec![m])));
    }
    Some(match op {
        Op::Conv(cv) => (cv, Expr::Input(0), kids),
        Op::FusedConv { conv, activation, epilogue: None } => {
            let x = if kids.len() > 3 { Expr::binary(BinaryOp::Add, Expr::Input(0), Expr::Input(1)) } else { Expr::Input(0) };
            let e = if activation == UnaryOp::Identity { x } else { Expr::unary(activation, x) };
            (conv, e, kids)
        }
        Op::FusedConv { conv, activation: UnaryOp::Identity, epilogue: Some(e) } => (conv, e, kids),
        _ => return None,
    })
}

/// An elementwise op with an operand `c` computed by a conv of the op's result
/// type, every other operand of that type too or a scalar constant → the op
/// becomes the conv's epilogue, the other operands its extra inputs.
///
/// Not when the epilogue has extra inputs and calls a transcendental function:
/// such an elementwise kernel is compute-bound on a CPU, so fusing saves no
/// time, while the GEMM reads the extras in register tiles whose rows lie a
/// channel plane apart, slower than a stream. WaveNet's gated unit
/// `tanh(conv_a) · sigmoid(conv_b)` fused into conv_a's GEMM took 1.06 ms per
/// layer against 0.61 + 0.36 ms for the GEMM and a separate kernel (LLVM, 1
/// thread; the whole model 1.2 ms slower), and with the faster `exp` since
/// 0.86 against 0.62 + 0.19. The cost model counts a tanh as 12 flops and
/// cannot see this.
fn conv_epilogue_region(eg: &mut EG, root: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let expr = as_expr(op)?;
    let out = ty(eg, root)?;
    for (i, &c) in kids.iter().enumerate() {
        if ty(eg, c).as_ref() != Some(&out) {
            continue;
        }
        let Some((conv, e, mut ck)) = conv_as_epilogue(eg, c) else { continue };
        if expr_size(&e) + expr_size(&expr) > MAX_EXPR {
            continue;
        }
        // Scalar operands inline; the others must have the conv's type.
        let inline = |k: Id| scalar(eg, k).filter(|_| ty(eg, k).is_some_and(|t| t.rank() == 0)).map(Expr::Const);
        let Some(epilogue) = absorb_region(eg, &expr, kids, i, &e, &mut ck, 3, inline, |k| ty(eg, k).as_ref() == Some(&out)) else {
            continue;
        };
        if ck.len() > 3 && epilogue.is_transcendental() {
            continue;
        }
        if let Some(id) = add_op(eg, Op::FusedConv { conv, activation: UnaryOp::Identity, epilogue: Some(epilogue) }, ck) {
            return Some(id);
        }
    }
    None
}

/// A matmul (`$0` epilogue) or fused matmul in class `m` that may be absorbed:
/// `(epilogue, kids)`.
fn absorbable_matmul(eg: &EG, m: Id) -> Option<(Expr, Vec<Id>)> {
    if uses(eg, m) > 1 {
        return None;
    }
    ops_where(eg, m, |op| matches!(op, Op::MatMul | Op::FusedMatMul { .. }))
        .into_iter()
        .map(|(op, k)| match op {
            Op::FusedMatMul { epilogue } => (epilogue, k),
            _ => (Expr::Input(0), k),
        })
        .max_by_key(|(e, _)| expr_size(e))
}

fn epilogue_unary(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let m = kids[0];
    let Op::Unary(u) = *op else { return None };
    let (e, kids) = absorbable_matmul(eg, m)?;
    if expr_size(&e) >= MAX_EXPR {
        return None;
    }
    add_op(eg, Op::FusedMatMul { epilogue: Expr::unary(u, e) }, kids)
}

/// `b(m, y)` (or `b(y, m)` when `left`) with `m` a matmul → its epilogue.
fn epilogue_binary(eg: &mut EG, _: Id, op: &Op, k: &[Id], left: bool) -> Option<Id> {
    let (m, y) = if left { (k[1], k[0]) } else { (k[0], k[1]) };
    if eg.find(m) == eg.find(y) {
        return None;
    }
    let Op::Binary(b) = *op else { return None };
    let (e, mut kids) = absorbable_matmul(eg, m)?;
    if expr_size(&e) >= MAX_EXPR {
        return None;
    }
    let operand = match scalar(eg, y) {
        Some(k) if ty(eg, y)?.rank() <= ty(eg, m)?.rank() => Expr::Const(k),
        _ => {
            let y = eg.find(y);
            let at = kids[2..].iter().position(|&k| k == y).map(|i| i + 1).unwrap_or_else(|| {
                kids.push(y);
                kids.len() - 2
            });
            Expr::Input(at)
        }
    };
    let epilogue = if left { Expr::binary(b, operand, e) } else { Expr::binary(b, e, operand) };
    add_op(eg, Op::FusedMatMul { epilogue }, kids)
}

/// `elementwise(…, m, …) {expr}` with `m` a matmul of the region's shape → the
/// region becomes the matmul's epilogue.
fn epilogue_region(eg: &mut EG, root: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let Op::Elementwise { expr } = op else { return None };
    let out = ty(eg, root)?;
    for (i, &m) in kids.iter().enumerate() {
        if ty(eg, m).as_ref() != Some(&out) {
            continue;
        }
        let Some((e, mut mk)) = absorbable_matmul(eg, m) else { continue };
        if expr_size(&e) + expr_size(expr) > MAX_EXPR {
            continue;
        }
        // Extras broadcast to the product, so any f32 operand will do (the
        // GEMM's tile loads extras as f32: a bool mask stays in its own region).
        let f32_extra = |k: Id| ty(eg, k).is_some_and(|t| t.dtype == smelt_ir::DType::F32);
        let Some(epilogue) = absorb_region(eg, expr, kids, i, &e, &mut mk, 2, |_| None, f32_extra) else { continue };
        if let Some(id) = add_op(eg, Op::FusedMatMul { epilogue }, mk) {
            return Some(id);
        }
    }
    None
}

/// Region `expr` (over `kids`) as the epilogue of the producer of its input `i`,
/// whose epilogue is `e` and whose kids are `fused` (`fixed` operands, then extra
/// inputs): input `i` becomes `e`; any other input becomes `inline(k)` when that
/// is an expression, else an extra input (the one already in `fused`, or a new
/// one) if `extra_ok(k)`, else the region is not absorbed (None).
#[allow(clippy::too_many_arguments)]
fn absorb_region(
    eg: &EG,
    expr: &Expr,
    kids: &[Id],
    i: usize,
    e: &Expr,
    fused: &mut Vec<Id>,
    fixed: usize,
    inline: impl Fn(Id) -> Option<Expr>,
    extra_ok: impl Fn(Id) -> bool,
) -> Option<Expr> {
    let mut map = Vec::with_capacity(kids.len());
    for (j, &k) in kids.iter().enumerate() {
        if j == i {
            map.push(e.clone());
            continue;
        }
        if let Some(x) = inline(k) {
            map.push(x);
            continue;
        }
        if !extra_ok(k) {
            return None;
        }
        let k = eg.find(k);
        let at = fused[fixed..].iter().position(|&x| eg.find(x) == k).map(|p| p + 1).unwrap_or_else(|| {
            fused.push(k);
            fused.len() - fixed
        });
        map.push(Expr::Input(at));
    }
    Some(substitute(expr, &|j| map[j].clone()))
}

/// Ops in an expression.
pub fn expr_size(e: &Expr) -> usize {
    match e {
        Expr::Input(_) | Expr::Const(_) => 0,
        Expr::Unary(_, x) => 1 + expr_size(x),
        Expr::Binary(_, x, y) => 1 + expr_size(x) + expr_size(y),
        Expr::Where(c, x, y) => 1 + expr_size(c) + expr_size(x) + expr_size(y),
    }
}

/// Replaces every `$i` by `f(i)`.
pub fn substitute(e: &Expr, f: &dyn Fn(usize) -> Expr) -> Expr {
    match e {
        Expr::Input(i) => f(*i),
        Expr::Const(c) => Expr::Const(*c),
        Expr::Unary(u, x) => Expr::unary(*u, substitute(x, f)),
        Expr::Binary(b, x, y) => Expr::binary(*b, substitute(x, f), substitute(y, f)),
        Expr::Where(c, x, y) => Expr::Where(Box::new(substitute(c, f)), Box::new(substitute(x, f)), Box::new(substitute(y, f))),
    }
}

/// An elementwise op as an expression over its inputs.
pub fn as_expr(op: &Op) -> Option<Expr> {
    Some(match op {
        Op::Unary(u) => Expr::unary(*u, Expr::Input(0)),
        Op::Binary(b) => Expr::binary(*b, Expr::Input(0), Expr::Input(1)),
        Op::Where => Expr::Where(Box::new(Expr::Input(0)), Box::new(Expr::Input(1)), Box::new(Expr::Input(2))),
        Op::Elementwise { expr } => expr.clone(),
        _ => return None,
    })
}

/// An elementwise consumer absorbs, for each input whose value is used once and is
/// computed by an elementwise op, that op: one `elementwise` region.
fn elementwise_region(eg: &mut EG, _: Id, op: &Op, kids: &[Id]) -> Option<Id> {
    let e = as_expr(op)?;
    let mut inputs: Vec<Id> = Vec::new();
    let mut map: Vec<Expr> = Vec::new();
    let mut absorbed = false;
    for &k in kids {
        let producer = if uses(eg, k) <= 1 && !is_const(eg, k) {
            ops_where(eg, k, |o| as_expr(o).is_some()).into_iter().filter_map(|(o, pk)| as_expr(&o).map(|pe| (pe, pk))).max_by_key(|(pe, _)| expr_size(pe))
        } else {
            None
        };
        match producer {
            Some((pe, pk)) => {
                absorbed = true;
                let mut local = Vec::new();
                for p in pk {
                    local.push(slot(eg, &mut inputs, p));
                }
                map.push(substitute(&pe, &|i| local[i].clone()));
            }
            None => {
                let s = slot(eg, &mut inputs, k);
                map.push(s);
            }
        }
    }
    if !absorbed || inputs.len() > MAX_REGION_INPUTS || inputs.is_empty() {
        return None;
    }
    let expr = substitute(&e, &|i| map[i].clone());
    if expr_size(&expr) > MAX_EXPR {
        return None;
    }
    add_op(eg, Op::Elementwise { expr }, inputs)
}

/// The expression for class `k` among a region's inputs: a number for a
/// one-element constant, else `$i` (added to `inputs` once).
fn slot(eg: &EG, inputs: &mut Vec<Id>, k: Id) -> Expr {
    if let Some(c) = scalar(eg, k)
        && ty(eg, k).is_some_and(|t| t.rank() == 0)
    {
        return Expr::Const(c);
    }
    let k = eg.find(k);
    match inputs.iter().position(|&i| i == k) {
        Some(i) => Expr::Input(i),
        None => {
            inputs.push(k);
            Expr::Input(inputs.len() - 1)
        }
    }
}
