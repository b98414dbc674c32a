//! Max and average pooling with large windows, where the GPU lowering spreads
//! one output's window over a workgroup (`lower::coop::cooperative_window`:
//! windows of 64 taps or more over fewer than 2048 outputs, or of 256 or more),
//! next to windows just under the threshold (one invocation per output): odd and
//! prime windows and sizes, padding (begin and end differing), strides,
//! dilation, ceil mode, `count_include_pad` both ways, max pooling's indices in
//! both storage orders, a window wholly in the padding, and NaN and −inf
//! inputs (the first NaN, or the first maximum, is the index).
//!
//! Tolerances are the suite's: a workgroup sums a window in a tree rather than
//! in window order, which moves an f32 sum of ≤ 343 terms of |x| ≤ 3 by a few
//! ulps of its largest partial sum, far inside them.

use super::cases::{Case, Dist, case};
use smelt_ir::{DType, Data, Tensor};

/// A pooling case filed under `label` (`op` or `op+indices`).
fn pool(label: &str, name: &str, seed: u64, xs: &[usize], attrs: &str) -> Case {
    let op = label.split('+').next().unwrap_or(label);
    let outs: &[&str] = if label.ends_with("+indices") { &["y", "i"] } else { &["y"] };
    case(name, seed, &[("x", DType::F32, xs, Dist::Any)], outs, &format!("  {} = {op}(x) {{{attrs}}}", outs.join(", ")))
}

/// `c` with `x[k] = v` for each `(k, v)`.
fn poke(mut c: Case, at: &[(usize, f32)]) -> Case {
    if let Some(x) = c.inputs.get_mut("x")
        && let Data::F32(mut d) = x.data().clone()
    {
        let n = d.len();
        for &(k, v) in at {
            d[k % n] = v;
        }
        *x = Tensor::new(x.shape().to_vec(), Data::F32(d)).expect("same shape");
    }
    c
}

pub fn pools() -> Vec<Case> {
    let mut v = vec![];
    // 2-d: 9×9 (81 taps) with uneven padding and stride; 7×9 (63: one under the
    // threshold); 11×7 (77) averaged both ways; a 13×13 global-like window.
    v.push(pool("max_pool2d", "max_pool2d-9x9-pad-stride", 9501, &[1, 2, 13, 11], "kernel = [9, 9], stride = [2, 2], pad = [1, 2, 1, 0]"));
    v.push(pool("max_pool2d", "max_pool2d-7x9-serial", 9502, &[1, 3, 12, 13], "kernel = [7, 9], stride = [3, 2], pad = [3, 4, 2, 1]"));
    for (k, include) in [(0, false), (1, true)] {
        v.push(pool(
            "avg_pool2d",
            &format!("avg_pool2d-11x7-include-{include}"),
            9510 + k,
            &[2, 3, 17, 10],
            &format!("kernel = [11, 7], stride = [3, 2], pad = [5, 3, 4, 6], count_include_pad = {include}"),
        ));
        v.push(pool(
            "avg_pool2d",
            &format!("avg_pool2d-9x9-ceil-include-{include}"),
            9520 + k,
            &[1, 5, 15, 14],
            &format!("kernel = [9, 9], stride = [4, 4], pad = [2, 3, 1, 2], ceil_mode = true, count_include_pad = {include}"),
        ));
    }
    v.push(pool("avg_pool2d", "avg_pool2d-13x13", 9530, &[1, 7, 13, 13], "kernel = [13, 13]"));
    // 1-d: a long window with dilation; 257 taps (cooperative at any number of
    // outputs: 4400 here); one just below the threshold.
    v.push(pool("max_pool1d", "max_pool1d-97-dil", 9540, &[2, 3, 301], "kernel = [97], stride = [5], pad = [3, 4], dilation = [2]"));
    v.push(pool("avg_pool1d", "avg_pool1d-257-many", 9541, &[2, 50, 300], "kernel = [257], count_include_pad = true, pad = [0, 1]"));
    v.push(pool("avg_pool1d", "avg_pool1d-63", 9542, &[3, 2, 131], "kernel = [63], stride = [7], pad = [31, 30]"));
    // 3-d: 5×5×5 and 3×7×5 windows.
    v.push(pool("max_pool3d", "max_pool3d-5x5x5", 9550, &[1, 2, 9, 8, 7], "kernel = [5, 5, 5], stride = [2, 1, 3], pad = [2, 1, 0, 2, 2, 1]"));
    v.push(pool(
        "avg_pool3d",
        "avg_pool3d-3x7x5-include",
        9551,
        &[1, 3, 7, 11, 9],
        "kernel = [3, 7, 5], stride = [2, 2, 2], pad = [1, 3, 2, 1, 3, 2], count_include_pad = true",
    ));
    // Indices, both storage orders.
    v.push(pool("max_pool2d+indices", "max_pool2d-9x9-indices-row", 9560, &[2, 3, 11, 13], "kernel = [9, 9], stride = [2, 3], pad = [4, 1, 3, 2], indices = row_major"));
    v.push(pool("max_pool2d+indices", "max_pool2d-8x11-indices-col", 9561, &[1, 2, 10, 17], "kernel = [8, 11], stride = [1, 3], pad = [3, 5, 4, 2], indices = col_major"));
    v.push(pool("max_pool1d+indices", "max_pool1d-67-indices-ceil", 9562, &[2, 3, 211], "kernel = [67], stride = [9], dilation = [2], pad = [7, 3], ceil_mode = true, indices = col_major"));
    v.push(pool("max_pool3d+indices", "max_pool3d-4x5x4-indices-col", 9563, &[1, 3, 7, 9, 6], "kernel = [4, 5, 4], stride = [2, 2, 1], pad = [1, 2, 0, 2, 1, 3], indices = col_major"));
    // The window of the one output lies wholly in the padding: −inf and −1; the
    // average's divisor is 0 (NaN) or the padded count.
    v.push(pool("max_pool1d+indices", "max_pool1d-64-window-in-padding", 9570, &[1, 2, 1], "kernel = [64], dilation = [2], pad = [63, 63], indices = row_major"));
    v.push(pool("avg_pool1d", "avg_pool1d-64-window-in-padding", 9571, &[1, 2, 1], "kernel = [64], dilation = [2], pad = [63, 63]"));
    v.push(pool("avg_pool1d", "avg_pool1d-64-window-in-padding-include", 9572, &[1, 2, 1], "kernel = [64], dilation = [2], pad = [63, 63], count_include_pad = true"));
    // NaN and −inf: the maximum is NaN and its index the first NaN in window
    // order; a plane of −inf keeps the first tap.
    let nan = pool("max_pool2d+indices", "max_pool2d-9x9-nan-indices", 9580, &[1, 2, 12, 12], "kernel = [9, 9], stride = [3, 3], indices = row_major");
    v.push(poke(nan, &[(30, f32::NAN), (70, f32::NAN), (100, f32::INFINITY), (200, f32::NAN)]));
    let inf = pool("max_pool2d+indices", "max_pool2d-8x8-neg-inf-indices", 9581, &[1, 1, 8, 8], "kernel = [8, 8], indices = col_major");
    v.push(poke(inf, &(0..64).map(|k| (k, f32::NEG_INFINITY)).collect::<Vec<_>>()));
    // The separable interior of strided 2-d max pooling (rows, then columns) keeps
    // NaN and ±inf as the window-order loop does; odd sizes, a tail past the vector
    // width, asymmetric pads and a 2×3 window with column stride 3.
    let sep = pool("max_pool2d", "max_pool2d-3x3-s2-sep-nan", 9583, &[2, 3, 23, 37], "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1]");
    v.push(poke(sep, &[(5, f32::NAN), (40, f32::INFINITY), (77, f32::NEG_INFINITY), (300, f32::NAN), (1000, f32::NAN), (2100, f32::INFINITY)]));
    v.push(pool("max_pool2d", "max_pool2d-2x3-s3-sep", 9584, &[1, 4, 19, 41], "kernel = [2, 3], stride = [1, 3], pad = [0, 2, 1, 0]"));
    let avg_nan = pool("avg_pool2d", "avg_pool2d-9x9-nan", 9582, &[1, 2, 12, 12], "kernel = [9, 9], stride = [3, 3]");
    v.push(poke(avg_nan, &[(30, f32::NAN), (160, f32::INFINITY)]));
    v
}
