//! The inverse trigonometric functions ONNX has and smelt's IR does not (Atan,
//! Asin, Acos), written with smelt's elementwise ops at import, so every backend
//! runs them.
//!
//! `atan` is Cephes' `atanf`: the argument's magnitude is reduced to
//! |t| ≤ tan(π/8) (`t = −1/a` above tan(3π/8), `(a − 1)/(a + 1)` above tan(π/8)),
//! where a degree-9 odd polynomial is within an ulp or two, and the sign is put
//! back. `asin x = atan(x / √((1 − x)(1 + x)))` and `acos x = 2·atan(√((1 − x) /
//! (1 + x)))` keep their relative accuracy near ±1 (where `1 − x` is exact) and
//! give ±π/2, 0 and π at the ends through `atan(±∞)`; outside [−1, 1] the square
//! root is of a negative number: NaN, as ONNX wants.

use super::super::ctx::Ctx;
use super::super::error::Result;
use smelt_ir::{BinaryOp, Op, UnaryOp, Value};
use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};

/// tan(3π/8) and tan(π/8).
const TAN_3PI_8: f64 = 2.414_213_562_373_095;
const TAN_PI_8: f64 = 0.414_213_562_373_095;

/// atan(t) ≈ t + t·z·(c₃ + z·(c₅ + z·(c₇ + z·c₉))), z = t², for |t| ≤ tan(π/8)
/// (Cephes `atanf`).
const POLY: [f64; 4] = [8.053_744_495_38e-2, -1.387_768_560_32e-1, 1.997_771_064_78e-1, -3.333_294_915_39e-1];

pub fn atan(cx: &mut Ctx, x: Value) -> Result<Value> {
    let d = cx.ty(x).dtype;
    let a = cx.unary(UnaryOp::Abs, x)?;
    let (one, zero) = (cx.scalar(1.0, d), cx.scalar(0.0, d));
    let (hi, lo) = (cx.scalar(TAN_3PI_8, d), cx.scalar(TAN_PI_8, d));
    let big = cx.binary(BinaryOp::Greater, a, hi)?;
    let mid = cx.binary(BinaryOp::Greater, a, lo)?;
    // The reduced argument and the angle it is relative to.
    let inv = cx.unary(UnaryOp::Reciprocal, a)?;
    let ninv = cx.unary(UnaryOp::Neg, inv)?;
    let (am, ap) = (cx.binary(BinaryOp::Sub, a, one)?, cx.binary(BinaryOp::Add, a, one)?);
    let q = cx.binary(BinaryOp::Div, am, ap)?;
    let t = cx.op(Op::Where, &[mid, q, a])?;
    let t = cx.op(Op::Where, &[big, ninv, t])?;
    let (p2, p4) = (cx.scalar(FRAC_PI_2, d), cx.scalar(FRAC_PI_4, d));
    let base = cx.op(Op::Where, &[mid, p4, zero])?;
    let base = cx.op(Op::Where, &[big, p2, base])?;
    let z = cx.binary(BinaryOp::Mul, t, t)?;
    let mut p = cx.scalar(POLY[0], d);
    for &c in &POLY[1..] {
        let pz = cx.binary(BinaryOp::Mul, p, z)?;
        let c = cx.scalar(c, d);
        p = cx.binary(BinaryOp::Add, pz, c)?;
    }
    let tz = cx.binary(BinaryOp::Mul, t, z)?;
    let r = cx.binary(BinaryOp::Mul, tz, p)?;
    let r = cx.binary(BinaryOp::Add, r, t)?;
    let y = cx.binary(BinaryOp::Add, base, r)?;
    // Back to x's sign (NaN stays NaN: it took the `a` branch).
    let neg = cx.binary(BinaryOp::Less, x, zero)?;
    let ny = cx.unary(UnaryOp::Neg, y)?;
    cx.op(Op::Where, &[neg, ny, y])
}

pub fn asin(cx: &mut Ctx, x: Value) -> Result<Value> {
    let d = cx.ty(x).dtype;
    let one = cx.scalar(1.0, d);
    let (m, p) = (cx.binary(BinaryOp::Sub, one, x)?, cx.binary(BinaryOp::Add, one, x)?);
    let c2 = cx.binary(BinaryOp::Mul, m, p)?;
    let c = cx.unary(UnaryOp::Sqrt, c2)?;
    let q = cx.binary(BinaryOp::Div, x, c)?;
    atan(cx, q)
}

pub fn acos(cx: &mut Ctx, x: Value) -> Result<Value> {
    let d = cx.ty(x).dtype;
    let one = cx.scalar(1.0, d);
    let (m, p) = (cx.binary(BinaryOp::Sub, one, x)?, cx.binary(BinaryOp::Add, one, x)?);
    let q = cx.binary(BinaryOp::Div, m, p)?;
    let r = cx.unary(UnaryOp::Sqrt, q)?;
    let a = atan(cx, r)?;
    let two = cx.scalar(2.0, d);
    cx.binary(BinaryOp::Mul, two, a)
}
