//! The reference semantics of the elementwise ops (`UnaryOp::eval`,
//! `BinaryOp::eval`, `Expr::eval` in `smelt-ir`) as kernel IR. Every intermediate
//! is bound to a variable, so expressions that use a value twice stay small.

use crate::kernel::{BinOp, BufId, CmpOp, Expr, Intrinsic, KernelBuilder, Scalar, UnOp};
use smelt_ir::{BinaryOp, UnaryOp};

/// An f32 constant with `lanes` lanes.
fn k(lanes: u32, x: f32) -> Expr {
    if lanes == 1 { Expr::f(x) } else { Expr::splat(Expr::f(x), lanes) }
}

/// Binds `e` to a fresh variable unless it is already a variable or constant.
pub fn bind(kb: &mut KernelBuilder, name: &str, e: Expr) -> Expr {
    match e {
        Expr::Var(_) | Expr::Const(_) => e,
        e => kb.let_(name, e),
    }
}

/// A unary op on an f32 value (or vector of `lanes`), as `UnaryOp::eval` computes it.
pub fn unary_f32(kb: &mut KernelBuilder, u: UnaryOp, x: Expr, lanes: u32) -> Expr {
    let f = |x: f32| k(lanes, x);
    let x = bind(kb, "x", x);
    let sel = |c: Expr, a: Expr, b: Expr| Expr::select(c, a, b);
    let call = |i: Intrinsic, a: Expr| Expr::call(i, vec![a]);
    match u {
        // NaN propagates (`UnaryOp::eval`).
        UnaryOp::Relu => sel(x.clone().lt(f(0.0)), f(0.0), x),
        UnaryOp::Gelu => {
            let e = call(Intrinsic::Erf, x.clone() * f(std::f32::consts::FRAC_1_SQRT_2));
            x * f(0.5) * (e + f(1.0))
        }
        UnaryOp::GeluTanh => {
            let c = (2.0f32 / std::f32::consts::PI).sqrt();
            let x3 = x.clone() * x.clone() * x.clone();
            let inner = (x.clone() + x3 * f(0.044715)) * f(c);
            let t = call(Intrinsic::Tanh, inner);
            x * f(0.5) * (t + f(1.0))
        }
        UnaryOp::Tanh => call(Intrinsic::Tanh, x),
        UnaryOp::Sigmoid => call(Intrinsic::Sigmoid, x),
        UnaryOp::Exp => call(Intrinsic::Exp, x),
        UnaryOp::Log => call(Intrinsic::Log, x),
        UnaryOp::Sqrt => Expr::un(UnOp::Sqrt, x),
        UnaryOp::Rsqrt => f(1.0) / Expr::un(UnOp::Sqrt, x),
        UnaryOp::Neg => Expr::un(UnOp::Neg, x),
        UnaryOp::Abs => Expr::un(UnOp::Abs, x),
        UnaryOp::Erf => call(Intrinsic::Erf, x),
        UnaryOp::Sin => call(Intrinsic::Sin, x),
        UnaryOp::Cos => call(Intrinsic::Cos, x),
        UnaryOp::Reciprocal => f(1.0) / x,
        UnaryOp::Floor => Expr::un(UnOp::Floor, x),
        UnaryOp::Ceil => Expr::un(UnOp::Ceil, x),
        UnaryOp::Round => Expr::un(UnOp::Round, x),
        UnaryOp::Sign => sel(x.clone().gt(f(0.0)), f(1.0), sel(x.clone().lt(f(0.0)), f(-1.0), x)),
        UnaryOp::Softplus => call(Intrinsic::Softplus, x),
        UnaryOp::Silu => x.clone() * call(Intrinsic::Sigmoid, x),
        UnaryOp::Identity => x,
        UnaryOp::Not => Expr::cast(Scalar::F32, x.eq_(f(0.0))),
        UnaryOp::LeakyRelu { alpha } => sel(x.clone().lt(f(0.0)), x.clone() * f(alpha), x),
        UnaryOp::Elu { alpha } => {
            let e = call(Intrinsic::Exp, x.clone()) - f(1.0);
            sel(x.clone().lt(f(0.0)), e * f(alpha), x)
        }
        UnaryOp::HardSigmoid { alpha, beta } => {
            // (αx + β).clamp(0, 1), two roundings as in Rust; NaN stays NaN.
            let v = bind(kb, "hs", x * f(alpha) + f(beta));
            sel(v.clone().lt(f(0.0)), f(0.0), sel(v.clone().gt(f(1.0)), f(1.0), v))
        }
        UnaryOp::Clip { min, max } => {
            // x.max(min).min(max) (a NaN operand of Rust's max/min gives the
            // other), but a NaN x stays NaN (`UnaryOp::eval`).
            let a = bind(kb, "lo", sel(x.clone().ge(f(min)), x.clone(), f(min)));
            let c = sel(a.clone().le(f(max)), a, f(max));
            sel(x.clone().ne(x.clone()), x, c)
        }
    }
}

/// A binary op on f32 values (or vectors of `lanes`), as `BinaryOp::eval`:
/// arithmetic gives f32, comparisons and logic give bool.
pub fn binary_f32(kb: &mut KernelBuilder, b: BinaryOp, x: Expr, y: Expr, lanes: u32) -> Expr {
    let f = |x: f32| k(lanes, x);
    let x = bind(kb, "a", x);
    let y = bind(kb, "b", y);
    let nz = |e: Expr| Expr::cmp(CmpOp::Ne, e, f(0.0));
    match b {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Max => Expr::bin(BinOp::Max, x, y),
        BinaryOp::Min => Expr::bin(BinOp::Min, x, y),
        BinaryOp::Pow => Expr::call(Intrinsic::Pow, vec![x, y]),
        BinaryOp::Prelu => Expr::select(x.clone().lt(f(0.0)), x.clone() * y, x),
        BinaryOp::Equal => Expr::cmp(CmpOp::Eq, x, y),
        BinaryOp::Less => Expr::cmp(CmpOp::Lt, x, y),
        BinaryOp::LessEqual => Expr::cmp(CmpOp::Le, x, y),
        BinaryOp::Greater => Expr::cmp(CmpOp::Gt, x, y),
        BinaryOp::GreaterEqual => Expr::cmp(CmpOp::Ge, x, y),
        BinaryOp::And => Expr::bin(BinOp::And, nz(x), nz(y)),
        BinaryOp::Or => Expr::bin(BinOp::Or, nz(x), nz(y)),
        BinaryOp::Xor => Expr::bin(BinOp::Xor, nz(x), nz(y)),
    }
}

/// An integer unary op in i64 (`x` is i64), as the interpreter: wrapping, to be
/// saturated into the output dtype by the caller.
pub fn unary_i64(u: UnaryOp, x: Expr) -> Option<Expr> {
    let i = |v: i64| Expr::i(v);
    Some(match u {
        UnaryOp::Neg => Expr::un(UnOp::Neg, x),
        UnaryOp::Abs => Expr::un(UnOp::Abs, x),
        UnaryOp::Sign => Expr::select(x.clone().gt(i(0)), i(1), Expr::select(x.lt(i(0)), i(-1), i(0))),
        UnaryOp::Relu => Expr::bin(BinOp::Max, x, i(0)),
        UnaryOp::Identity => x,
        _ => return None,
    })
}

/// An integer binary op in i64 (`x`, `y` are i64): arithmetic wraps, comparisons
/// give bool. Division (which can fail at run time) is [`checked_i64`].
pub fn binary_i64(b: BinaryOp, x: Expr, y: Expr) -> Option<Expr> {
    Some(match b {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Max => Expr::bin(BinOp::Max, x, y),
        BinaryOp::Min => Expr::bin(BinOp::Min, x, y),
        BinaryOp::Prelu => Expr::select(x.clone().lt(Expr::i(0)), x.clone() * y, x),
        BinaryOp::Equal => Expr::cmp(CmpOp::Eq, x, y),
        BinaryOp::Less => Expr::cmp(CmpOp::Lt, x, y),
        BinaryOp::LessEqual => Expr::cmp(CmpOp::Le, x, y),
        BinaryOp::Greater => Expr::cmp(CmpOp::Gt, x, y),
        BinaryOp::GreaterEqual => Expr::cmp(CmpOp::Ge, x, y),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            let nz = |e: Expr| Expr::cmp(CmpOp::Ne, e, Expr::i(0));
            let op = match b {
                BinaryOp::And => BinOp::And,
                BinaryOp::Or => BinOp::Or,
                _ => BinOp::Xor,
            };
            Expr::bin(op, nz(x), nz(y))
        }
        BinaryOp::Div | BinaryOp::Pow => return None,
    })
}

/// Whether `b` on integers is lowered by [`checked_i64`] (it can fail at run
/// time). Integer `pow` is not a valid graph (the IR takes it on floats only).
pub fn is_checked_int(b: BinaryOp) -> bool {
    matches!(b, BinaryOp::Div)
}

/// Integer `div` in i64 (`x`, `y` are i64) as `BinaryOp::eval_int`:
/// `x.checked_div(y)`, truncating toward zero. Where the reference has no result
/// (division by zero, `i64::MIN / -1`) the value is 0 and, unless an earlier
/// element failed, `status` gets `[1, x, y]` (see `lower::Check`).
pub fn checked_i64(kb: &mut KernelBuilder, x: Expr, y: Expr, status: BufId) -> Expr {
    let x = bind(kb, "p", x);
    let y = bind(kb, "q", y);
    let i = Expr::i;
    let bad = kb.let_("bad", Expr::bin(BinOp::Or, y.clone().eq_(i(0)), x.clone().eq_(i(i64::MIN)).and(y.clone().eq_(i(-1)))));
    // sdiv would trap: divide by 1 instead where the result is an error.
    let safe = Expr::select(bad.clone(), i(1), y.clone());
    let value = kb.let_("quot", x.clone() / safe);
    kb.if_(bad.clone(), |kb| {
        kb.if_(Expr::load(status, i(0)).eq_(i(0)), |kb| {
            kb.store(status, i(0), i(1));
            kb.store(status, i(1), x.clone());
            kb.store(status, i(2), y.clone());
        });
    });
    Expr::select(bad, i(0), value)
}

/// An expression of an `elementwise` region or matmul epilogue, evaluated as
/// `Expr::eval` does: every value an f32 (comparisons give 0 or 1), `$i` is
/// `inputs[i]`; all values have `lanes` lanes. Returns the f32 result.
pub fn region(kb: &mut KernelBuilder, e: &smelt_ir::Expr, inputs: &[Expr], lanes: u32) -> Expr {
    use smelt_ir::Expr as E;
    let f = |x: f32| k(lanes, x);
    match e {
        E::Input(i) => inputs.get(*i).cloned().unwrap_or_else(|| f(f32::NAN)),
        E::Const(c) => f(*c),
        E::Unary(u, a) => {
            let a = region(kb, a, inputs, lanes);
            let r = unary_f32(kb, *u, a, lanes);
            bind(kb, "t", r)
        }
        E::Binary(b, x, y) => {
            let x = region(kb, x, inputs, lanes);
            let y = region(kb, y, inputs, lanes);
            let r = binary_f32(kb, *b, x, y, lanes);
            let r = if b.is_comparison() || b.is_logical() { Expr::cast(Scalar::F32, r) } else { r };
            bind(kb, "t", r)
        }
        E::Where(c, x, y) => {
            let c = region(kb, c, inputs, lanes);
            let x = region(kb, x, inputs, lanes);
            let y = region(kb, y, inputs, lanes);
            bind(kb, "t", Expr::select(Expr::cmp(CmpOp::Ne, c, f(0.0)), x, y))
        }
    }
}
