//! Cases for the ops that ONNX models needed beyond the first lowering: 3-d
//! convolution and pooling, max pooling with indices (both storage orders), `wrap`
//! padding and LSTM peepholes, plus the conv and LSTM schedules' paths (1×1
//! convs, wide rows, strides, dilations, groups; LSTM gate-panel tails) — on odd and prime sizes, sizes that are not multiples
//! of the vector width, and one size large enough for the parallel paths.

use super::cases::{Case, Dist, case, with_param, with_param_scaled};
use smelt_ir::DType;

const F: DType = DType::F32;

/// `y = conv3d(x, w, b?) {attrs}` with random weights.
fn conv3d(name: &str, seed: u64, xs: &[usize], ws: &[usize], bias: bool, attrs: &str) -> Case {
    let shape = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let mut body = format!("  w = param f32[{}]\n", shape(ws));
    if bias {
        body += &format!("  b = param f32[{}]\n", ws[0]);
    }
    let args = if bias { "x, w, b" } else { "x, w" };
    body += &format!("  y = conv3d({args}){attrs}");
    let c = case(name, seed, &[("x", F, xs, Dist::Any)], &["y"], &body);
    let c = with_param(c, "w", ws, seed + 1);
    if bias { with_param(c, "b", &ws[..1], seed + 2) } else { c }
}

/// A pooling case filed under `label` (`op` or `op+indices`).
fn pool(label: &str, name: &str, seed: u64, xs: &[usize], outs: &[&str], attrs: &str) -> Case {
    let op = label.split('+').next().unwrap_or(label);
    let lhs = outs.join(", ");
    case(name, seed, &[("x", F, xs, Dist::Any)], outs, &format!("  {lhs} = {op}(x) {{{attrs}}}"))
}

/// An LSTM with peepholes (and initial states, which they need before them).
fn lstm_peep(name: &str, seed: u64, t: usize, n: usize, i: usize, h: usize, dir: &str) -> Case {
    let d = if dir == "bidirectional" { 2 } else { 1 };
    let attrs = if dir == "forward" { format!("hidden = {h}") } else { format!("hidden = {h}, direction = {dir}") };
    let body = format!(
        "  w = param f32[{d}, {g}, {i}]\n  r = param f32[{d}, {g}, {h}]\n  b = param f32[{d}, {b}]\n  p = param f32[{d}, {p}]\n  y, hn, cn = lstm(x, w, r, b, h0, c0, p) {{{attrs}}}",
        g = 4 * h,
        b = 8 * h,
        p = 3 * h
    );
    let ins: &[(&str, DType, &[usize], Dist)] =
        &[("x", F, &[t, n, i], Dist::Any), ("h0", F, &[d, n, h], Dist::Any), ("c0", F, &[d, n, h], Dist::Any)];
    let c = case(name, seed, ins, &["y", "hn", "cn"], &body);
    let c = with_param(c, "w", &[d, 4 * h, i], seed + 1);
    let c = with_param(c, "r", &[d, 4 * h, h], seed + 2);
    let c = with_param(c, "b", &[d, 8 * h], seed + 3);
    with_param(c, "p", &[d, 3 * h], seed + 4)
}

/// `y = {op}(x, w, b?, res?) {attrs}` with random weights (`op` a 1-/2-d conv or
/// fused conv; `res`, the residual input, has the output's shape `rs`).
#[allow(clippy::too_many_arguments)]
fn conv(op: &str, name: &str, seed: u64, xs: &[usize], ws: &[usize], bias: bool, rs: Option<&[usize]>, attrs: &str) -> Case {
    let shape = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let mut body = format!("  w = param f32[{}]\n", shape(ws));
    if bias {
        body += &format!("  b = param f32[{}]\n", ws[0]);
    }
    let mut args = String::from(if bias { "x, w, b" } else { "x, w" });
    if rs.is_some() {
        args += ", r";
    }
    body += &format!("  y = {op}({args}){attrs}");
    let mut ins: Vec<(&str, DType, &[usize], Dist)> = vec![("x", F, xs, Dist::Any)];
    if let Some(rs) = rs {
        ins.push(("r", F, rs, Dist::Any));
    }
    let c = case(name, seed, &ins, &["y"], &body);
    let c = with_param(c, "w", ws, seed + 1);
    if bias { with_param(c, "b", &ws[..1], seed + 2) } else { c }
}

/// A `fused_conv2d` with bias and two extra inputs `r`, `q` of shape `rs`.
fn conv_extras(name: &str, seed: u64, xs: &[usize], ws: &[usize], rs: &[usize], attrs: &str) -> Case {
    let shape = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let body = format!("  w = param f32[{}]\n  b = param f32[{}]\n  y = fused_conv2d(x, w, b, r, q){attrs}", shape(ws), ws[0]);
    let ins: Vec<(&str, DType, &[usize], Dist)> = vec![("x", F, xs, Dist::Any), ("r", F, rs, Dist::Any), ("q", F, rs, Dist::Any)];
    let c = case(name, seed, &ins, &["y"], &body);
    let c = with_param(c, "w", ws, seed + 1);
    with_param(c, "b", &ws[..1], seed + 2)
}

/// A plain LSTM (no initial states or peepholes).
fn lstm(name: &str, seed: u64, t: usize, n: usize, i: usize, h: usize, dir: &str) -> Case {
    let d = if dir == "bidirectional" { 2 } else { 1 };
    let attrs = if dir == "forward" { format!("hidden = {h}") } else { format!("hidden = {h}, direction = {dir}") };
    let body = format!(
        "  w = param f32[{d}, {g}, {i}]\n  r = param f32[{d}, {g}, {h}]\n  b = param f32[{d}, {b}]\n  y, hn, cn = lstm(x, w, r, b) {{{attrs}}}",
        g = 4 * h,
        b = 8 * h
    );
    let c = case(name, seed, &[("x", F, &[t, n, i], Dist::Any)], &["y", "hn", "cn"], &body);
    let c = with_param(c, "w", &[d, 4 * h, i], seed + 1);
    let c = with_param(c, "r", &[d, 4 * h, h], seed + 2);
    with_param(c, "b", &[d, 8 * h], seed + 3)
}

/// A GRU with an initial state; `lbr` sets `linear_before_reset`.
#[allow(clippy::too_many_arguments)]
fn gru(name: &str, seed: u64, t: usize, n: usize, i: usize, h: usize, dir: &str, lbr: bool) -> Case {
    let d = if dir == "bidirectional" { 2 } else { 1 };
    let mut attrs = format!("hidden = {h}, direction = {dir}");
    if lbr {
        attrs.push_str(", linear_before_reset = true");
    }
    let body = format!(
        "  w = param f32[{d}, {g}, {i}]\n  r = param f32[{d}, {g}, {h}]\n  b = param f32[{d}, {b}]\n  y, hn = gru(x, w, r, b, h0) {{{attrs}}}",
        g = 3 * h,
        b = 6 * h
    );
    let ins: &[(&str, DType, &[usize], Dist)] = &[("x", F, &[t, n, i], Dist::Any), ("h0", F, &[d, n, h], Dist::Any)];
    let c = case(name, seed, ins, &["y", "hn"], &body);
    let c = with_param(c, "w", &[d, 3 * h, i], seed + 1);
    let c = with_param_scaled(c, "r", &[d, 3 * h, h], seed + 2, 1.0 / (h as f32).sqrt());
    with_param(c, "b", &[d, 6 * h], seed + 3)
}

pub fn conv_pool_rnn() -> Vec<Case> {
    let mut v = vec![
        conv3d("conv3d-basic", 9001, &[2, 3, 5, 6, 7], &[4, 3, 3, 2, 3], true, ""),
        conv3d(
            "conv3d-stride-pad",
            9011,
            &[1, 3, 7, 5, 9],
            &[5, 3, 3, 3, 2],
            false,
            " {stride = [2, 1, 3], pad = [1, 0, 2, 1, 1, 0]}",
        ),
        conv3d(
            "conv3d-groups-dilation",
            9021,
            &[1, 4, 7, 5, 6],
            &[6, 2, 2, 3, 2],
            true,
            " {pad = [1, 0, 1, 0, 2, 1], dilation = [2, 1, 2], groups = 2}",
        ),
        // Big enough for the parallel im2col and GEMM.
        conv3d("conv3d-parallel", 9031, &[2, 8, 9, 13, 11], &[16, 8, 3, 3, 3], true, " {pad = [1, 1, 1, 1, 1, 1]}"),
        pool("max_pool3d", "max_pool3d-basic", 9101, &[2, 3, 4, 6, 5], &["y"], "kernel = [2, 2, 2]"),
        pool(
            "max_pool3d",
            "max_pool3d-pad-stride-dil",
            9111,
            &[1, 2, 7, 6, 9],
            &["y"],
            "kernel = [3, 2, 2], stride = [2, 1, 3], pad = [1, 0, 1, 1, 1, 0], dilation = [1, 2, 1]",
        ),
        pool(
            "avg_pool3d",
            "avg_pool3d-include",
            9121,
            &[1, 3, 5, 7, 6],
            &["y"],
            "kernel = [3, 3, 2], stride = [2, 2, 2], pad = [1, 1, 0, 1, 1, 1], count_include_pad = true",
        ),
        pool(
            "avg_pool3d",
            "avg_pool3d-ceil",
            9131,
            &[1, 2, 6, 7, 5],
            &["y"],
            "kernel = [2, 3, 2], stride = [2, 2, 2], pad = [1, 0, 0, 0, 1, 0], ceil_mode = true",
        ),
        pool("avg_pool3d", "avg_pool3d-parallel", 9141, &[3, 16, 9, 17, 13], &["y"], "kernel = [3, 3, 3], stride = [1, 2, 2]"),
        // Windows wholly inside the input run unchecked (the last dim split in
        // three runs): a ResNet-like 3×3/2, dilation with asymmetric pads, ceil
        // mode with padding counted, 1-d, and a window wider than the interior.
        pool("max_pool2d", "max_pool2d-interior", 9151, &[2, 5, 17, 19], &["y"], "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1]"),
        pool("max_pool2d", "max_pool2d-dilated-asym", 9161, &[1, 3, 13, 11], &["y"], "kernel = [2, 3], stride = [1, 2], pad = [0, 2, 1, 1], dilation = [2, 2]"),
        pool("avg_pool2d", "avg_pool2d-ceil-include", 9171, &[1, 4, 11, 13], &["y"], "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1], ceil_mode = true, count_include_pad = true"),
        pool("avg_pool1d", "avg_pool1d-interior", 9181, &[2, 3, 29], &["y"], "kernel = [4], stride = [3], pad = [2, 1]"),
        pool("max_pool2d", "max_pool2d-no-interior", 9191, &[1, 2, 3, 4], &["y"], "kernel = [3, 3], pad = [1, 1, 1, 1]"),
        pool(
            "max_pool2d+indices",
            "max_pool2d-indices-row",
            9201,
            &[2, 3, 7, 6],
            &["y", "i"],
            "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1], indices = row_major",
        ),
        pool(
            "max_pool2d+indices",
            "max_pool2d-indices-col",
            9211,
            &[2, 3, 7, 6],
            &["y", "i"],
            "kernel = [3, 2], stride = [2, 1], pad = [1, 0, 1, 1], indices = col_major",
        ),
        pool(
            "max_pool1d+indices",
            "max_pool1d-indices-ceil",
            9221,
            &[2, 3, 11],
            &["y", "i"],
            "kernel = [3], stride = [2], dilation = [2], ceil_mode = true, indices = col_major",
        ),
        pool(
            "max_pool3d+indices",
            "max_pool3d-indices-col",
            9231,
            &[1, 2, 5, 4, 6],
            &["y", "i"],
            "kernel = [2, 2, 3], stride = [1, 2, 2], pad = [0, 1, 1, 1, 0, 1], indices = col_major",
        ),
        pool(
            "max_pool3d+indices",
            "max_pool3d-indices-row-parallel",
            9241,
            &[2, 16, 9, 17, 13],
            &["y", "i"],
            "kernel = [2, 3, 2], stride = [2, 1, 1], indices = row_major",
        ),
        // Length 2, pad [1, 1], kernel 2, dilation 3: the one window reads positions −1
        // and 2, both padding, so −inf and index −1.
        pool(
            "max_pool1d+indices",
            "max_pool1d-indices-window-in-padding",
            9251,
            &[1, 2, 2],
            &["y", "i"],
            "kernel = [2], stride = [1], pad = [1, 1], dilation = [3], indices = row_major",
        ),
    ];
    v.push(case("pad-wrap-2d", 9301, &[("x", F, &[5, 7], Dist::Any)], &["y"], "  y = pad(x) {pads = [2, 3, 4, 1], mode = wrap}"));
    v.push(case("pad-wrap-past-length",
        9311,
        &[("x", F, &[2, 3, 3], Dist::Any)],
        &["y"],
        "  y = pad(x) {pads = [3, 0, 7, 2, 1, 5], mode = wrap}",
    ));
    v.push(case("pad-wrap-i64",
        9321,
        &[("x", DType::I64, &[3, 5], Dist::Any)],
        &["y"],
        "  y = pad(x) {pads = [1, 6, 2, 0], mode = wrap}",
    ));
    // swin_t's window padding (batch 2): more than 65,535 elements, so a kernel
    // that walks them in one GPU invocation is slow, and cut short by Mesa's
    // lavapipe (which bounds a loop at 65,535 iterations); reflect and a
    // transpose of the same size beside it.
    v.push(case("pad-swin-window", 9331, &[("x", F, &[2, 16, 16, 97], Dist::Any)], &["y"], "  y = pad(x) {pads = [0, 0, 0, 0, 0, 5, 5, 0]}"));
    v.push(case("pad-reflect-large",
        9341,
        &[("x", F, &[2, 9, 70, 75], Dist::Any)],
        &["y"],
        "  p = pad(x) {pads = [0, 0, 3, 2, 0, 0, 3, 2], mode = reflect}\n  y = transpose(p) {perm = [0, 3, 1, 2]}",
    ));
    v.push(lstm_peep("lstm-peephole-forward", 9401, 5, 3, 7, 5, "forward"));
    v.push(lstm_peep("lstm-peephole-reverse", 9411, 4, 2, 3, 8, "reverse"));
    v.push(lstm_peep("lstm-peephole-bidirectional", 9421, 6, 3, 5, 7, "bidirectional"));
    // Gate rows not a multiple of the packed-Rᵀ panel block (4·NR), and a long
    // hidden state: the matrix-vector recurrence's main and tail panel loops.
    v.push(lstm("lstm-hidden37", 9431, 5, 3, 11, 37, "forward"));
    v.push(lstm("lstm-hidden70-bidirectional", 9441, 4, 2, 9, 70, "bidirectional"));
    v.push(lstm("lstm-hidden3-reverse", 9451, 3, 1, 2, 3, "reverse"));
    // Hidden sizes past a GPU workgroup (128 invocations share a row's gates and
    // units, several each), batch 1 (one workgroup walks the sequence).
    v.push(lstm("lstm-hidden131", 9461, 6, 1, 5, 131, "forward"));
    v.push(gru("gru-hidden137-bidirectional", 9471, 5, 2, 6, 137, "bidirectional", false));
    v.push(gru("gru-hidden129-lbr-reverse", 9481, 4, 1, 3, 129, "reverse", true));
    v.push(gru("gru-hidden9-lbr", 9491, 7, 3, 4, 9, "forward", true));
    // Convolutions: 1×1 (the input packed as B directly), rows wider than a
    // register tile (vector-copy im2col panels next to padded edges), strides,
    // dilations, groups, odd channel counts, a depth above the GEMM's K block.
    v.push(conv("conv2d", "conv2d-1x1", 9501, &[2, 5, 9, 11], &[7, 5, 1, 1], true, None, ""));
    v.push(conv("conv2d", "conv2d-1x1-groups", 9511, &[2, 6, 7, 13], &[9, 2, 1, 1], false, None, " {groups = 3}"));
    v.push(conv("conv2d", "conv2d-1x1-stride2", 9521, &[1, 3, 9, 10], &[4, 3, 1, 1], true, None, " {stride = [2, 2]}"));
    v.push(conv("conv2d", "conv2d-1x1-pad", 9531, &[1, 3, 5, 6], &[4, 3, 1, 1], true, None, " {pad = [1, 0, 0, 2]}"));
    v.push(conv("conv2d", "conv2d-wide-image", 9541, &[2, 3, 5, 37], &[6, 3, 3, 3], true, None, " {pad = [1, 1, 1, 1]}"));
    v.push(conv(
        "conv2d",
        "conv2d-wide-dil-groups",
        9551,
        &[1, 4, 6, 41],
        &[6, 2, 2, 3],
        true,
        None,
        " {pad = [1, 2, 0, 1], dilation = [2, 3], groups = 2}",
    ));
    v.push(conv("conv2d", "conv2d-wide-stride-h", 9561, &[1, 3, 9, 35], &[5, 3, 3, 2], false, None, " {stride = [2, 1], pad = [0, 1, 1, 0]}"));
    v.push(conv("conv2d", "conv2d-stride2-odd", 9571, &[1, 7, 13, 19], &[5, 7, 3, 3], true, None, " {stride = [2, 2], pad = [1, 1, 1, 1]}"));
    v.push(conv("conv2d", "conv2d-deep-k", 9581, &[1, 31, 9, 17], &[7, 31, 3, 3], true, None, " {pad = [1, 1, 1, 1]}"));
    v.push(conv("conv2d", "conv2d-parallel", 9591, &[1, 16, 23, 29], &[24, 16, 3, 3], true, None, " {pad = [1, 1, 1, 1]}"));
    v.push(conv("conv1d", "conv1d-causal-dilated-long", 9601, &[1, 7, 301], &[6, 7, 2], true, None, " {pad = [4, 0], dilation = [4]}"));
    v.push(conv("conv1d", "conv1d-stride2", 9611, &[2, 3, 67], &[4, 3, 3], true, None, " {stride = [2], pad = [1, 1]}"));
    v.push(conv("conv1d", "conv1d-1x1", 9621, &[2, 5, 53], &[3, 5, 1], true, None, ""));
    // A long depth over few outputs: split-K on the GPU (bias, residual and relu
    // applied once the slices are summed).
    v.push(conv(
        "fused_conv2d",
        "fused_conv2d-split-k",
        9625,
        &[1, 64, 7, 7],
        &[37, 64, 3, 3],
        true,
        Some(&[1, 37, 7, 7]),
        " {pad = [1, 1, 1, 1], activation = relu}",
    ));
    v.push(conv(
        "fused_conv2d",
        "fused_conv2d-1x1-residual",
        9631,
        &[1, 5, 7, 19],
        &[5, 5, 1, 1],
        true,
        Some(&[1, 5, 7, 19]),
        " {activation = relu}",
    ));
    v.push(conv(
        "fused_conv2d",
        "fused_conv2d-wide-residual",
        9641,
        &[2, 3, 4, 29],
        &[4, 3, 3, 3],
        true,
        Some(&[2, 4, 4, 29]),
        " {pad = [1, 1, 1, 1], activation = relu}",
    ));
    // Unit-stride convs read their input in place: positions filling whole
    // panels without padding (no copy), asymmetric end padding, groups with
    // residual and bias, a 3-d conv with depth padding, and a K above the block.
    v.push(conv("conv2d", "conv2d-1x1-whole-panels", 9651, &[2, 5, 4, 8], &[3, 5, 1, 1], true, None, ""));
    v.push(conv("conv1d", "conv1d-valid-whole-panels", 9661, &[1, 3, 34], &[4, 3, 3], false, None, ""));
    v.push(conv("conv2d", "conv2d-end-pad-only", 9671, &[1, 3, 6, 11], &[5, 3, 2, 3], true, None, " {pad = [0, 0, 2, 3]}"));
    v.push(conv(
        "fused_conv2d",
        "fused_conv2d-groups-residual-sigmoid",
        9681,
        &[2, 6, 5, 7],
        &[4, 3, 3, 3],
        true,
        Some(&[2, 4, 5, 7]),
        " {pad = [1, 1, 1, 1], groups = 2, activation = sigmoid}",
    ));
    v.push(conv("conv3d", "conv3d-pad-depth", 9691, &[1, 2, 4, 5, 6], &[3, 2, 3, 3, 2], true, None, " {pad = [1, 1, 0, 1, 1, 1]}"));
    // Strided convs pack an im2col: a 7×7/2 stem, many output channels,
    // dilations, stride 3 with groups and asymmetric padding, 3-d.
    v.push(conv("conv2d", "conv2d-stem", 9711, &[1, 3, 23, 29], &[16, 3, 7, 7], true, None, " {stride = [2, 2], pad = [3, 3, 3, 3]}"));
    v.push(conv("conv2d", "conv2d-stride2-many-channels", 9721, &[1, 5, 11, 13], &[48, 5, 3, 3], true, None, " {stride = [2, 2], pad = [1, 1, 1, 1]}"));
    v.push(conv("conv2d", "conv2d-stride2-dilated", 9731, &[1, 3, 13, 12], &[5, 3, 3, 3], true, None, " {stride = [2, 2], pad = [2, 2, 2, 2], dilation = [2, 2]}"));
    v.push(conv("fused_conv2d", "fused_conv2d-stride3-groups-asym", 9741, &[2, 4, 14, 17], &[6, 2, 4, 5], true, Some(&[2, 6, 5, 5]), " {stride = [3, 3], pad = [1, 2, 2, 0], groups = 2, activation = relu}"));
    v.push(conv("conv3d", "conv3d-stride2-mixed", 9751, &[1, 2, 6, 7, 5], &[3, 2, 3, 2, 3], true, None, " {stride = [2, 1, 2], pad = [1, 0, 1, 1, 1, 0]}"));
    // At least NR (32) output channels per group: on LLVM, positions as the
    // GEMM's rows (`lower/conv/rows.rs`) — partial channel panels, position counts
    // that fill no whole tile, strides, dilations, groups, residuals, 3-d, 1×1
    // with a prime channel count, a 7×7 stem, a block loop run in parallel.
    v.push(conv("conv2d", "conv2d-rows-odd", 9801, &[2, 7, 11, 13], &[37, 7, 3, 3], true, None, " {pad = [1, 1, 1, 1]}"));
    v.push(conv("fused_conv2d", "fused_conv2d-rows-residual", 9811, &[1, 5, 7, 7], &[33, 5, 3, 3], true, Some(&[1, 33, 7, 7]), " {pad = [1, 1, 1, 1], activation = relu}"));
    v.push(conv("fused_conv2d", "fused_conv2d-rows-groups-strided", 9821, &[2, 6, 9, 5], &[64, 3, 3, 3], true, Some(&[2, 64, 4, 2]), " {stride = [2, 2], pad = [1, 0, 2, 1], dilation = [2, 1], groups = 2, activation = tanh}"));
    v.push(conv("conv3d", "conv3d-rows", 9831, &[1, 3, 5, 6, 7], &[35, 3, 3, 2, 3], true, None, " {stride = [1, 2, 1], pad = [1, 1, 0, 0, 1, 1]}"));
    v.push(conv("conv2d", "conv2d-rows-1x1-prime", 9841, &[1, 13, 5, 7], &[40, 13, 1, 1], false, None, ""));
    v.push(conv("conv2d", "conv2d-rows-1x1-stride2", 9851, &[1, 8, 9, 11], &[32, 8, 1, 1], true, None, " {stride = [2, 2]}"));
    // (1-d convs never take this path: one output row per image, the column
    // GEMM writes the output directly.)
    v.push(conv("conv1d", "conv1d-dilated-many-channels", 9861, &[2, 5, 31], &[41, 5, 5], true, None, " {pad = [3, 5], dilation = [2]}"));
    v.push(conv("fused_conv2d", "fused_conv2d-rows-stem", 9871, &[1, 3, 17, 19], &[32, 3, 7, 7], true, None, " {stride = [2, 2], pad = [3, 3, 3, 3], activation = relu}"));
    // 3·19 = 57 positions: one left for the last tile of 8 rows.
    v.push(conv("conv2d", "conv2d-rows-last-tile-of-one", 9891, &[2, 3, 5, 21], &[32, 3, 3, 3], true, None, ""));
    v.push(conv("conv2d", "conv2d-rows-parallel", 9881, &[1, 16, 23, 29], &[48, 16, 3, 3], true, None, " {pad = [1, 1, 1, 1]}"));
    // Winograd F(2×2, 3×3) (3×3, unit stride, constant weights, ≥ 16 channels):
    // odd and prime sizes (half-used last tiles), no padding, asymmetric padding,
    // a 1×1 output, batches, bias, residual and activation, a fused epilogue with
    // two extras, and one size large enough for the parallel transforms.
    v.push(conv("conv2d", "conv2d-winograd-odd-nopad", 10021, &[2, 17, 9, 11], &[19, 17, 3, 3], true, None, ""));
    v.push(conv("conv2d", "conv2d-winograd-asym-pad", 10031, &[1, 16, 6, 5], &[17, 16, 3, 3], false, None, " {pad = [0, 2, 1, 0]}"));
    v.push(conv("conv2d", "conv2d-winograd-1x1-out", 10041, &[1, 16, 3, 3], &[16, 16, 3, 3], true, None, ""));
    v.push(conv("fused_conv2d", "fused_conv2d-winograd-residual-relu", 10051, &[3, 20, 8, 13], &[23, 20, 3, 3], true, Some(&[3, 23, 8, 13]), " {pad = [1, 1, 1, 1], activation = relu}"));
    v.push(conv_extras("fused_conv2d-winograd-epilogue", 10001, &[1, 16, 5, 7], &[16, 16, 3, 3], &[1, 16, 5, 7], " {pad = [1, 1, 1, 1], epilogue = add(mul($0, $1), sub($2, 0.25))}"));
    v.push(conv("conv2d", "conv2d-winograd-parallel", 10011, &[2, 32, 15, 17], &[40, 32, 3, 3], false, None, " {pad = [1, 1, 1, 1]}"));
    // 1-d convs whose GEMM columns are the output positions (one output row per
    // image): the GEMM writes the output with bias, residual and activation —
    // causal and end padding, dilations, groups, batches, prime lengths.
    v.push(conv("fused_conv1d", "fused_conv1d-causal-residual-tanh", 9901, &[2, 5, 37], &[7, 5, 3], true, Some(&[2, 7, 37]), " {pad = [6, 0], dilation = [3], activation = tanh}"));
    v.push(conv("fused_conv1d", "fused_conv1d-groups-residual-sigmoid", 9911, &[3, 4, 29], &[6, 2, 2], true, Some(&[3, 6, 29]), " {pad = [1, 0], groups = 2, activation = sigmoid}"));
    v.push(conv("conv1d", "conv1d-causal-groups-prime", 9921, &[1, 9, 53], &[9, 3, 2], true, None, " {pad = [2, 0], dilation = [2], groups = 3}"));
    v.push(conv("fused_conv1d", "fused_conv1d-end-pad-relu", 9931, &[2, 3, 41], &[5, 3, 4], true, None, " {pad = [0, 5], dilation = [2], activation = relu}"));
    // Fused convs with an epilogue expression over the conv (`$0`) and extra
    // inputs of its type: WaveNet's gated unit on a 1-d conv (GEMM writes the
    // output), a 2-d conv whose GEMM output is cropped, positions as rows
    // (`lower/conv/rows.rs`, two extras), a strided im2col conv.
    v.push(conv("fused_conv1d", "fused_conv1d-epilogue-gated", 9941, &[2, 6, 43], &[5, 6, 2], true, Some(&[2, 5, 43]), " {pad = [3, 0], dilation = [3], epilogue = mul(tanh($1), sigmoid($0))}"));
    v.push(conv("fused_conv2d", "fused_conv2d-epilogue-crop", 9951, &[1, 3, 7, 11], &[6, 3, 3, 3], true, Some(&[1, 6, 7, 11]), " {pad = [1, 1, 1, 1], epilogue = sub($1, mul($0, 0.5))}"));
    v.push(conv_extras("fused_conv2d-epilogue-rows-two-extras", 9961, &[1, 5, 7, 9], &[35, 5, 3, 3], &[1, 35, 7, 9], " {pad = [1, 1, 1, 1], epilogue = add(mul(tanh($0), sigmoid($2)), $1)}"));
    v.push(conv("fused_conv2d", "fused_conv2d-epilogue-strided", 9971, &[1, 3, 11, 13], &[5, 3, 3, 3], true, Some(&[1, 5, 6, 7]), " {stride = [2, 2], pad = [1, 1, 1, 1], epilogue = max($0, $1)}"));
    v.push(conv("conv2d", "conv2d-deep-k-wide", 9701, &[1, 40, 6, 23], &[5, 40, 3, 3], true, None, " {pad = [1, 1, 1, 1], dilation = [1, 2]}"));
    v
}

