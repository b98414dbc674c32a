//! Row-wise reductions at sizes where the GPU lowering makes them cooperative (a
//! workgroup per row, `lower::coop`: rows of 256 or more, or of 32 or more when
//! there are fewer than 2048 rows), next to short rows that stay one row per
//! invocation: softmax and log-softmax (last axis and a strided axis), layer norm,
//! every float reduction over trailing and non-trailing axes, integer max/min, and
//! global pooling. Row lengths are odd or prime, so no row is a multiple of the
//! workgroup.
//!
//! Tolerances are the suite's (1e-4 + 1e-4·|want|): a workgroup sums in a tree
//! rather than left to right, which for these lengths (≤ 4099 terms of |x| ≤ 3)
//! moves an f32 sum by a few ulps of its largest partial sum, far inside them.

use super::cases::{Case, Dist, case, with_param};
use smelt_ir::DType;

pub fn rows() -> Vec<Case> {
    use DType::*;
    use Dist::*;
    let mut v = vec![];
    let mut seed = 7000;
    let mut next = || {
        seed += 1;
        seed
    };
    // Softmax: one long row, a few long rows, many short rows (per invocation),
    // and a strided axis (rows of 301 with stride 5).
    for (name, shape, axis) in [("1x4099", &[1usize, 4099][..], -1i64), ("3x1000", &[3, 1000], -1), ("2500x7", &[2500, 7], -1), ("301x5_axis0", &[301, 5], 0), ("2x67x3_axis1", &[2, 67, 3], 1)] {
        for log in [false, true] {
            let op = if log { "log_softmax" } else { "softmax" };
            v.push(case(&format!("{op}_{name}"), next(), &[("x", F32, shape, Any)], &["y"], &format!("  y = {op}(x) {{axis = {axis}}}")));
        }
    }
    // Layer norm over the last axis and over the last two (rows of 5·67).
    for (name, shape, axis, pshape) in [("4x333", &[4usize, 333][..], -1i64, &[333usize][..]), ("1x1031", &[1, 1031], -1, &[1031]), ("3x5x67", &[3, 5, 67], 1, &[5, 67])] {
        let c = case(&format!("layer_norm_{name}"), next(), &[("x", F32, shape, Any)], &["y"], &format!(
            "  scale = param f32{pshape:?}\n  bias = param f32{pshape:?}\n  y = layer_norm(x, scale, bias) {{axis = {axis}}}"
        ));
        let c = with_param(c, "scale", pshape, next());
        v.push(with_param(c, "bias", pshape, next()));
    }
    // Reductions: trailing axis (long rows), non-trailing axes (407 elements per
    // output, gathered with strides), everything into one value.
    for kind in ["sum", "mean", "max", "min", "l2"] {
        let op = format!("reduce_{kind}");
        v.push(case(&format!("{op}_5x301"), next(), &[("x", F32, &[5, 301], Any)], &["y"], &format!("  y = {op}(x) {{axes = [1], keepdims = false}}")));
        v.push(case(&format!("{op}_37x3x11"), next(), &[("x", F32, &[37, 3, 11], Any)], &["y"], &format!("  y = {op}(x) {{axes = [0, 2], keepdims = true}}")));
        v.push(case(&format!("{op}_all_13x97"), next(), &[("x", F32, &[13, 97], Any)], &["y"], &format!("  y = {op}(x) {{keepdims = false}}")));
    }
    // Products of 41 and 43 terms near 1 (no overflow, so no order-dependent inf).
    v.push(case("reduce_prod_3x41", next(), &[("x", F32, &[3, 41], Range(0, 2))], &["y"], "  y = reduce_prod(x) {axes = [1], keepdims = false}"));
    v.push(case("reduce_prod_43x2", next(), &[("x", F32, &[43, 2], Range(0, 2))], &["y"], "  y = reduce_prod(x) {axes = [0], keepdims = false}"));
    for d in [I8, U8, I32] {
        for kind in ["max", "min"] {
            let op = format!("reduce_{kind}");
            v.push(case(&format!("{op}_{d}_3x259"), next(), &[("x", d, &[3, 259], Any)], &["y"], &format!("  y = {op}(x) {{axes = [1], keepdims = false}}")));
        }
    }
    for kind in ["avg", "max"] {
        let op = format!("global_{kind}_pool");
        v.push(case(&format!("{op}_2x3x17x19"), next(), &[("x", F32, &[2, 3, 17, 19], Any)], &["y"], &format!("  y = {op}(x)")));
        v.push(case(&format!("{op}_1x2x1999"), next(), &[("x", F32, &[1, 2, 1999], Any)], &["y"], &format!("  y = {op}(x)")));
    }
    v
}
