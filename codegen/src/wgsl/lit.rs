//! WGSL literals and type names, shared by the emitter (`emit.rs`) and its
//! helper functions (`helpers.rs`).

use super::scalar_name;
use crate::kernel::{Scalar, Ty};

/// The WGSL type of a kernel value type.
pub fn ty_name(t: Ty) -> String {
    let s = scalar_name(t.scalar);
    if t.lanes == 1 { s.to_string() } else { format!("vec{}<{s}>", t.lanes) }
}

/// A literal of scalar `s` (as held in registers) with value `v`.
pub fn int_lit(v: i64, s: Scalar) -> String {
    match s {
        Scalar::Bool => (v != 0).to_string(),
        Scalar::F32 => f32_lit(v as f32),
        Scalar::F64 => f64_lit(v as f64),
        // I64 is i32 in WGSL; `Emitter::expr` refuses constants out of range.
        _ if v <= i32::MIN as i64 => "(-2147483647i - 1i)".into(),
        _ if v > i32::MAX as i64 => "2147483647i".into(),
        _ => if v < 0 { format!("({v}i)") } else { format!("{v}i") },
    }
}

pub fn f32_lit(x: f32) -> String {
    if x.is_finite() && (x == 0.0 || x.abs() >= f32::MIN_POSITIVE) {
        let s = format!("{x:e}f");
        if x.is_sign_negative() { format!("({s})") } else { s }
    } else {
        format!("bitcast<f32>({}u)", x.to_bits())
    }
}

pub fn f64_lit(x: f64) -> String {
    if x.is_finite() && (x == 0.0 || x.abs() >= f64::MIN_POSITIVE) {
        let s = format!("{x:e}lf");
        if x.is_sign_negative() { format!("({s})") } else { s }
    } else {
        format!("bitcast<f64>({}lu)", x.to_bits())
    }
}
