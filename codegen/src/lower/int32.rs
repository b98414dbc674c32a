//! i32 arithmetic for the GPU target, exactly as the interpreter computes it
//! (in i64, then saturated into i32) but in i32 registers only, since the WGSL
//! backend has no 64-bit integers: each op computes the wrapped i32 result and
//! detects overflow from the operands' and result's signs (add, sub), from one
//! division (mul), or from the one overflowing input (neg, abs, div of
//! `i32::MIN` by −1), and saturates. Integer matmul's i64 accumulator (wrapping)
//! is two i32 words, the products' high words by 16-bit halves (Hacker's
//! Delight `mulhs`). Valid kernel IR on every backend: no division by zero or
//! `MIN / −1` is ever evaluated.

use super::expr::bind;
use crate::kernel::{BinOp, BufId, CmpOp, Expr, KernelBuilder, Scalar, Ty, UnOp, VarId};
use smelt_ir::{BinaryOp, UnaryOp};

fn k(v: i64) -> Expr {
    Expr::int(v, Scalar::I32)
}

fn min() -> Expr {
    k(i32::MIN as i64)
}

fn max() -> Expr {
    k(i32::MAX as i64)
}

/// Whether `b`/`u` on i32 needs this file (the others cannot overflow).
pub fn binary_overflows(b: BinaryOp) -> bool {
    matches!(b, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div)
}

pub fn unary_overflows(u: UnaryOp) -> bool {
    matches!(u, UnaryOp::Neg | UnaryOp::Abs)
}

/// `neg`/`abs` of an i32, saturated (`-MIN` and `|MIN|` are `MAX`).
pub fn unary(kb: &mut KernelBuilder, u: UnaryOp, x: Expr) -> Expr {
    let x = bind(kb, "x", x);
    let is_min = x.clone().eq_(min());
    let r = if u == UnaryOp::Neg { Expr::un(UnOp::Neg, x) } else { Expr::un(UnOp::Abs, x) };
    Expr::select(is_min, max(), r)
}

/// `add`/`sub`/`mul` of i32s, saturated.
pub fn binary(kb: &mut KernelBuilder, b: BinaryOp, x: Expr, y: Expr) -> Expr {
    let x = bind(kb, "a", x);
    let y = bind(kb, "b", y);
    let neg = |e: Expr| Expr::cmp(CmpOp::Lt, e, k(0));
    // The sign of the true result when it overflows: that of x for add and sub,
    // x's xor y's for mul.
    let (r, ovf, toward_min) = match b {
        BinaryOp::Add | BinaryOp::Sub => {
            let r = kb.let_("r", if b == BinaryOp::Add { x.clone() + y.clone() } else { x.clone() - y.clone() });
            // add: x and y of one sign, r of the other; sub: x and y of different
            // signs, r's sign not x's.
            let s = if b == BinaryOp::Add {
                Expr::bin(BinOp::And, Expr::bin(BinOp::Xor, x.clone(), r.clone()), Expr::bin(BinOp::Xor, y, r.clone()))
            } else {
                Expr::bin(BinOp::And, Expr::bin(BinOp::Xor, x.clone(), y), Expr::bin(BinOp::Xor, x.clone(), r.clone()))
            };
            (r, neg(s), neg(x))
        }
        _ => {
            let r = kb.let_("r", x.clone() * y.clone());
            // r / x == y unless the product wrapped; x = −1 (where r / x could be
            // MIN / −1) overflows only for y = MIN.
            let plain = Expr::bin(BinOp::Or, x.clone().eq_(k(0)), x.clone().eq_(k(-1)));
            let safe = Expr::select(plain.clone(), k(1), x.clone());
            let wrapped = Expr::cmp(CmpOp::Ne, r.clone() / safe, y.clone());
            let ovf = Expr::select(plain, x.clone().eq_(k(-1)).and(y.clone().eq_(min())), wrapped);
            (r, ovf, Expr::bin(BinOp::Xor, neg(x), neg(y)))
        }
    };
    let ovf = kb.let_("ovf", ovf);
    Expr::select(ovf, Expr::select(toward_min, min(), max()), r)
}

/// `div` of i32s as `BinaryOp::eval_int` in i64 saturated into i32: truncating,
/// `MIN / −1` is `MAX`; division by zero gives 0 and, unless an earlier element
/// failed, `status` (i64) gets `[1, x, y]` (see `lower::Check`).
pub fn checked_div(kb: &mut KernelBuilder, x: Expr, y: Expr, status: BufId) -> Expr {
    let x = bind(kb, "p", x);
    let y = bind(kb, "q", y);
    let zero = kb.let_("bad", y.clone().eq_(k(0)));
    let ovf = kb.let_("ovf", x.clone().eq_(min()).and(y.clone().eq_(k(-1))));
    let safe = Expr::select(Expr::bin(BinOp::Or, zero.clone(), ovf.clone()), k(1), y.clone());
    let value = kb.let_("quot", x.clone() / safe);
    kb.if_(zero.clone(), |kb| {
        kb.if_(Expr::load(status, Expr::i(0)).eq_(Expr::i(0)), |kb| {
            kb.store(status, Expr::i(0), Expr::i(1));
            kb.store(status, Expr::i(1), Expr::cast(Scalar::I64, x.clone()));
            kb.store(status, Expr::i(2), Expr::cast(Scalar::I64, y.clone()));
        });
    });
    Expr::select(zero, k(0), Expr::select(ovf, max(), value))
}

/// An i64 accumulator as two i32 words: the high word and the low word's bits.
#[derive(Debug, Clone, Copy)]
pub struct Acc64 {
    hi: VarId,
    lo: VarId,
}

/// A new accumulator, set to 0.
pub fn acc64(kb: &mut KernelBuilder) -> Acc64 {
    let (hi, lo) = (kb.var("acc_hi", Ty::I32), kb.var("acc_lo", Ty::I32));
    kb.set(hi, k(0));
    kb.set(lo, k(0));
    Acc64 { hi, lo }
}

fn shr(x: Expr, s: i64) -> Expr {
    Expr::bin(BinOp::Shr, x, k(s))
}

fn low16(x: Expr) -> Expr {
    Expr::bin(BinOp::And, x, k(0xffff))
}

/// The high word of the signed 64-bit product of i32s `x` and `y` (every partial
/// product of 16-bit halves fits in i32).
fn mulhs(kb: &mut KernelBuilder, x: &Expr, y: &Expr) -> Expr {
    let (xl, xh) = (kb.let_("xl", low16(x.clone())), kb.let_("xh", shr(x.clone(), 16)));
    let (yl, yh) = (kb.let_("yl", low16(y.clone())), kb.let_("yh", shr(y.clone(), 16)));
    let ll = kb.let_("ll", xl.clone() * yl.clone());
    let t = kb.let_("t", low16(shr(ll, 16)) + xh.clone() * yl);
    let t2 = kb.let_("t2", low16(t.clone()) + xl * yh.clone());
    xh * yh + shr(t, 16) + shr(t2, 16)
}

/// A new accumulator, set to 1.
pub fn one64(kb: &mut KernelBuilder) -> Acc64 {
    let acc = acc64(kb);
    kb.set(acc.lo, k(1));
    acc
}

/// `acc += x` for an i32 `x` (sign-extended), wrapping in 64 bits.
pub fn add64(kb: &mut KernelBuilder, acc: Acc64, x: Expr) {
    let x = bind(kb, "x", x);
    add_words(kb, acc, shr(x.clone(), 31), x);
}

/// `acc *= x` for an i32 `x`, wrapping in 64 bits (`i64::wrapping_mul`):
/// `(hi·2³² + lo)·x` where `lo` is unsigned, so the low word's high product is the
/// signed one plus `x` when `lo`'s top bit is set.
pub fn mul64(kb: &mut KernelBuilder, acc: Acc64, x: Expr) {
    let x = bind(kb, "x", x);
    let lo = Expr::var(acc.lo);
    let h = mulhs(kb, &lo, &x);
    let fix = Expr::select(Expr::cmp(CmpOp::Lt, lo.clone(), k(0)), x.clone(), k(0));
    let hi = kb.let_("ph", h + fix + Expr::var(acc.hi) * x.clone());
    let nlo = kb.let_("pl", lo * x);
    kb.set(acc.hi, hi);
    kb.set(acc.lo, nlo);
}

/// `acc += (hi, lo)`: the low words add with an unsigned carry (compared with
/// the sign bit flipped).
fn add_words(kb: &mut KernelBuilder, acc: Acc64, hi: Expr, lo: Expr) {
    let lo = bind(kb, "pl", lo);
    let nlo = kb.let_("nlo", Expr::var(acc.lo) + lo.clone());
    let flip = |e: Expr| Expr::bin(BinOp::Xor, e, min());
    let carry = Expr::select(Expr::cmp(CmpOp::Lt, flip(nlo.clone()), flip(lo)), k(1), k(0));
    kb.set(acc.hi, Expr::var(acc.hi) + hi + carry);
    kb.set(acc.lo, nlo);
}

/// `acc += x·y` for i32 `x`, `y`, wrapping in 64 bits (`i64::wrapping_add` of the
/// exact product, as the reference).
pub fn mac64(kb: &mut KernelBuilder, acc: Acc64, x: Expr, y: Expr) {
    let x = bind(kb, "x", x);
    let y = bind(kb, "y", y);
    let h = mulhs(kb, &x, &y);
    let hi = kb.let_("ph", h);
    let lo = kb.let_("pl", x * y);
    add_words(kb, acc, hi, lo);
}

/// The accumulator saturated into i32.
pub fn saturate64(acc: Acc64) -> Expr {
    let (hi, lo) = (Expr::var(acc.hi), Expr::var(acc.lo));
    let fits = hi.clone().eq_(shr(lo.clone(), 31));
    Expr::select(fits, lo, Expr::select(Expr::cmp(CmpOp::Lt, hi, k(0)), min(), max()))
}
