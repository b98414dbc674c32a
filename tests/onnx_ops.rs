//! ONNX ops that the importer writes with smelt's ops (inverse trigonometric
//! functions, the losses, DFT/STFT and the windows, the layout ops), on every
//! backend, against values computed here in f64 from the ops' definitions — or,
//! for pure data movement, against the interpreter (which the ONNX conformance
//! suite checks against ONNX's own outputs).

#[path = "support/onnx.rs"]
mod onnx_support;

use smelt::Tensor;
use smelt::engine::BackendKind;
use smelt::frontends::onnx::tensor::to_proto;
use onnx_support::{int_attr, ints_attr, model, node, node_with, on_every_backend, string_attr, tensors, vi, vi_i64};

/// A deterministic value in [-1, 1) for position `i` (no RNG crate needed).
fn wobble(i: usize, seed: usize) -> f32 {
    let h = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)).wrapping_mul(2_246_822_519) >> 7;
    (h % 20_000) as f32 / 10_000.0 - 1.0
}

/// Asserts `got` is within `tol` of `want` relative to the larger of |want| and
/// `floor`.
fn close(what: &str, got: &[f32], want: &[f64], tol: f64, floor: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what} at {i}: {g}, want NaN");
            continue;
        }
        let err = (g as f64 - w).abs() / w.abs().max(floor);
        assert!(err <= tol, "{what} at {i}: {g} against {w} (error {err:.2e})");
    }
}

/// Atan, Asin and Acos against f64 over their domains — tiny arguments, the
/// ends ±1, the reduction's boundaries tan(π/8) and tan(3π/8), huge and
/// infinite ones for Atan, NaN outside [−1, 1] for Asin and Acos.
#[test]
fn inverse_trigonometric_functions_are_accurate_on_every_backend() {
    let wide: Vec<f32> = [0.0, -0.0, 1e-30, -1e-8, 0.414_213_5, 0.414_213_6, 2.414_213, 2.414_214, 1.0, -1.0, 1e6, -3e38, f32::INFINITY]
        .into_iter()
        .chain((0..307).map(|i| (i as f32 - 153.0) * 0.05))
        .collect();
    let unit: Vec<f32> = [0.0, 1.0, -1.0, 0.999_999_9, -0.999_999_9, 1e-20, 0.5, -0.5, 1.5, -2.0]
        .into_iter()
        .chain((0..310).map(|i| (i as f32 - 155.0) / 155.0))
        .collect();
    let n = wide.len();
    assert_eq!(unit.len(), n);
    let ops = [("Atan", "w"), ("Asin", "u"), ("Acos", "u")];
    let bytes = model(
        7,
        ops.iter().map(|(op, i)| node(op, op, &[i], &[&op.to_lowercase()])).collect(),
        vec![vi("w", &["N"]), vi("u", &["N"])],
        ops.iter().map(|(op, _)| vi(&op.to_lowercase(), &["N"])).collect(),
        vec![],
    );
    let inputs = tensors(vec![("w", Tensor::f32(vec![n], wide.clone()).unwrap()), ("u", Tensor::f32(vec![n], unit.clone()).unwrap())]);
    for (b, out) in on_every_backend(&bytes, &inputs) {
        let tol = if b == BackendKind::Wgsl { 1e-5 } else { 2e-6 };
        for (op, _) in ops {
            let want: Vec<f64> = match op {
                "Atan" => wide.iter().map(|&x| (x as f64).atan()).collect(),
                "Asin" => unit.iter().map(|&x| (x as f64).asin()).collect(),
                _ => unit.iter().map(|&x| (x as f64).acos()).collect(),
            };
            close(&format!("{b:?} {op}"), &out[&op.to_lowercase()].to_f32(), &want, tol, 1e-37);
        }
    }
}

/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against the definition
/// in f64: `[N, C, d]` inputs with class weights and an `ignore_index` inside
/// the classes, each reduction, and the log-probabilities output.
#[test]
fn losses_match_their_definition_on_every_backend() {
    let (n, c, d) = (3usize, 5usize, 4usize);
    let x: Vec<f32> = (0..n * c * d).map(|i| 3.0 * wobble(i, 1)).collect();
    let target: Vec<i64> = (0..n * d).map(|i| ((i * 7 + 3) % c) as i64).collect();
    let weight: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.25).collect();
    let ignore = 2i64;
    assert!(target.contains(&ignore), "the test needs an ignored position");
    let reductions = ["none", "sum", "mean"];
    let mut nodes = vec![];
    let mut outputs = vec![];
    for r in reductions {
        nodes.push(node_with(
            "NegativeLogLikelihoodLoss",
            &format!("nll_{r}"),
            &["x", "t", "w"],
            &[&format!("nll_{r}")],
            vec![string_attr("reduction", r), int_attr("ignore_index", ignore)],
        ));
        let dims: &[&str] = if r == "none" { &["3", "4"] } else { &[] };
        outputs.push(vi(&format!("nll_{r}"), dims));
    }
    nodes.push(node_with("SoftmaxCrossEntropyLoss", "sce", &["x", "t"], &["sce", "log_prob"], vec![]));
    outputs.push(vi("sce", &[]));
    outputs.push(vi("log_prob", &["3", "5", "4"]));
    let w = to_proto(&Tensor::f32(vec![c], weight.clone()).unwrap(), "w");
    let bytes = model(13, nodes, vec![vi("x", &["3", "5", "4"]), vi_i64("t", &["3", "4"])], outputs, vec![w]);
    let inputs = tensors(vec![("x", Tensor::f32(vec![n, c, d], x.clone()).unwrap()), ("t", Tensor::i64(vec![n, d], target.clone()).unwrap())]);

    let at = |b: usize, k: usize, j: usize| x[(b * c + k) * d + j] as f64;
    // NLL on x itself (as if x held log-probabilities).
    let mut per = vec![0f64; n * d];
    let mut wsum = 0f64;
    for b in 0..n {
        for j in 0..d {
            let t = target[b * d + j];
            if t != ignore {
                let wt = weight[t as usize] as f64;
                per[b * d + j] = -at(b, t as usize, j) * wt;
                wsum += wt;
            }
        }
    }
    let sum: f64 = per.iter().sum();
    // SCE: log-softmax over the classes, unweighted mean.
    let mut log_prob = vec![0f64; n * c * d];
    let mut sce = 0f64;
    for b in 0..n {
        for j in 0..d {
            let m = (0..c).map(|k| at(b, k, j)).fold(f64::NEG_INFINITY, f64::max);
            let lse = m + (0..c).map(|k| (at(b, k, j) - m).exp()).sum::<f64>().ln();
            for k in 0..c {
                log_prob[(b * c + k) * d + j] = at(b, k, j) - lse;
            }
            sce -= log_prob[(b * c + target[b * d + j] as usize) * d + j];
        }
    }
    sce /= (n * d) as f64;
    for (b, out) in on_every_backend(&bytes, &inputs) {
        close(&format!("{b:?} nll none"), &out["nll_none"].to_f32(), &per, 1e-6, 1.0);
        close(&format!("{b:?} nll sum"), &out["nll_sum"].to_f32(), &[sum], 1e-6, 1.0);
        close(&format!("{b:?} nll mean"), &out["nll_mean"].to_f32(), &[sum / wsum], 1e-6, 1.0);
        close(&format!("{b:?} sce"), &out["sce"].to_f32(), &[sce], 1e-5, 1.0);
        close(&format!("{b:?} log_prob"), &out["log_prob"].to_f32(), &log_prob, 1e-5, 1.0);
    }
}

/// The DFT of `x` (`[batch, L, 2]`, complex) along axis 1, of length `len`,
/// computed naively in f64: `[batch, K, 2]`.
fn naive_dft(x: &[f32], batch: usize, l: usize, len: usize, inverse: bool, onesided: bool) -> Vec<f64> {
    let k_out = if onesided { len / 2 + 1 } else { len };
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut y = vec![0f64; batch * k_out * 2];
    for b in 0..batch {
        for k in 0..k_out {
            let (mut re, mut im) = (0f64, 0f64);
            for t in 0..l.min(len) {
                let (a, c) = (x[(b * l + t) * 2] as f64, x[(b * l + t) * 2 + 1] as f64);
                let th = sign * 2.0 * std::f64::consts::PI * (k * t) as f64 / len as f64;
                re += a * th.cos() - c * th.sin();
                im += a * th.sin() + c * th.cos();
            }
            let s = if inverse { 1.0 / len as f64 } else { 1.0 };
            y[(b * k_out + k) * 2] = re * s;
            y[(b * k_out + k) * 2 + 1] = im * s;
        }
    }
    y
}

/// DFT forward (zero-padded to a longer length), inverse, one-sided of a real
/// signal and its inverse (irfft) and STFT with a Hann window, against naive
/// transforms in f64: within 1e-5 of the largest output.
#[test]
fn dft_and_stft_match_naive_transforms_on_every_backend() {
    let (batch, l) = (2usize, 12usize);
    let x: Vec<f32> = (0..batch * l * 2).map(|i| wobble(i, 2)).collect();
    let real: Vec<f32> = (0..batch * l).map(|i| wobble(i, 3)).collect();
    let len16 = to_proto(&Tensor::i64(vec![], vec![16]).unwrap(), "len16");
    let step = to_proto(&Tensor::i64(vec![], vec![3]).unwrap(), "step");
    let win_len = to_proto(&Tensor::i64(vec![], vec![6]).unwrap(), "win_len");
    let nodes = vec![
        node("DFT", "fwd", &["x", "len16"], &["fwd"]),
        node_with("DFT", "inv", &["x"], &["inv"], vec![int_attr("inverse", 1)]),
        node_with("DFT", "rfft", &["r"], &["rfft"], vec![int_attr("onesided", 1)]),
        node_with("DFT", "irfft", &["rfft"], &["irfft"], vec![int_attr("onesided", 1), int_attr("inverse", 1)]),
        node("HannWindow", "hann", &["win_len"], &["hann"]),
        node("STFT", "stft", &["r", "step", "hann"], &["stft"]),
        // A real signal without its last dim, as PyTorch exports torch.stft.
        node("STFT", "stft2", &["r2", "step", "hann"], &["stft2"]),
    ];
    let outputs = vec![
        vi("fwd", &["2", "16", "2"]),
        vi("inv", &["2", "12", "2"]),
        vi("rfft", &["2", "7", "2"]),
        vi("irfft", &["2", "12", "1"]),
        vi("stft", &["2", "3", "4", "2"]),
        vi("stft2", &["2", "3", "4", "2"]),
    ];
    let bytes = model(17, nodes, vec![vi("x", &["2", "12", "2"]), vi("r", &["2", "12", "1"]), vi("r2", &["2", "12"])], outputs, vec![len16, step, win_len]);
    let inputs = tensors(vec![
        ("x", Tensor::f32(vec![batch, l, 2], x.clone()).unwrap()),
        ("r", Tensor::f32(vec![batch, l, 1], real.clone()).unwrap()),
        ("r2", Tensor::f32(vec![batch, l], real.clone()).unwrap()),
    ]);
    let complex_real: Vec<f32> = real.iter().flat_map(|&v| [v, 0.0]).collect();
    let fwd = naive_dft(&x, batch, l, 16, false, false);
    let inv = naive_dft(&x, batch, l, l, true, false);
    let rfft = naive_dft(&complex_real, batch, l, l, false, true);
    // The inverse of the one-sided transform is the real signal back.
    let irfft: Vec<f64> = real.iter().map(|&v| v as f64).collect();
    // STFT: frames of 6 every 3 (3 of them), Hann-windowed (periodic), one-sided.
    let hann: Vec<f64> = (0..6).map(|i| (std::f64::consts::PI * i as f64 / 6.0).sin().powi(2)).collect();
    let mut stft = vec![];
    for b in 0..batch {
        for f in 0..3 {
            let frame: Vec<f32> = (0..6).flat_map(|i| [(real[b * l + f * 3 + i] as f64 * hann[i]) as f32, 0.0]).collect();
            stft.extend(naive_dft(&frame, 1, 6, 6, false, true));
        }
    }
    for (b, out) in on_every_backend(&bytes, &inputs) {
        for (name, want) in [("fwd", &fwd), ("inv", &inv), ("rfft", &rfft), ("irfft", &irfft), ("stft", &stft), ("stft2", &stft)] {
            let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
            close(&format!("{b:?} {name}"), &out[name].to_f32(), want, 1e-5, scale);
        }
    }
}

/// DepthToSpace (both modes), SpaceToDepth, CenterCropPad (a crop and a pad),
/// ReverseSequence, Col2Im (strides, dilation, padding), EyeLike and
/// MeanVarianceNormalization on every backend against the interpreter; the
/// moves exactly, the sums and normalization within 1e-6.
#[test]
fn layout_ops_match_the_interpreter_on_every_backend() {
    let x: Vec<f32> = (0..2 * 8 * 4 * 6).map(|i| wobble(i, 4)).collect();
    let cols: Vec<f32> = (0..2 * 2 * 9 * 12).map(|i| wobble(i, 5)).collect();
    let crop = to_proto(&Tensor::i64(vec![2], vec![3, 9]).unwrap(), "crop");
    let image = to_proto(&Tensor::i64(vec![2], vec![6, 7]).unwrap(), "image");
    let block = to_proto(&Tensor::i64(vec![2], vec![3, 3]).unwrap(), "block");
    let lens = Tensor::i64(vec![4], vec![4, 1, 3, 0]).unwrap();
    let nodes = vec![
        node_with("DepthToSpace", "dcr", &["x"], &["dcr"], vec![int_attr("blocksize", 2)]),
        node_with("DepthToSpace", "crd", &["x"], &["crd"], vec![int_attr("blocksize", 2), string_attr("mode", "CRD")]),
        node_with("SpaceToDepth", "s2d", &["x"], &["s2d"], vec![int_attr("blocksize", 2)]),
        node_with("CenterCropPad", "ccp", &["x", "crop"], &["ccp"], vec![ints_attr("axes", &[2, 3])]),
        node_with("ReverseSequence", "rev", &["x3", "lens"], &["rev"], vec![int_attr("batch_axis", 0), int_attr("time_axis", 1)]),
        node_with(
            "Col2Im",
            "col2im",
            &["cols", "image", "block"],
            &["col2im"],
            vec![ints_attr("strides", &[2, 1]), ints_attr("dilations", &[1, 2]), ints_attr("pads", &[1, 1, 1, 0])],
        ),
        node_with("EyeLike", "eye", &["x2"], &["eye"], vec![int_attr("k", 1)]),
        node("MeanVarianceNormalization", "mvn", &["x"], &["mvn"]),
    ];
    let outputs = vec![
        vi("dcr", &["2", "2", "8", "12"]),
        vi("crd", &["2", "2", "8", "12"]),
        vi("s2d", &["2", "32", "2", "3"]),
        vi("ccp", &["2", "8", "3", "9"]),
        vi("rev", &["4", "6", "4"]),
        vi("col2im", &["2", "2", "6", "7"]),
        vi("eye", &["4", "6"]),
        vi("mvn", &["2", "8", "4", "6"]),
    ];
    let inputs_vi = vec![
        vi("x", &["2", "8", "4", "6"]),
        vi("x3", &["4", "6", "4"]),
        vi("x2", &["4", "6"]),
        vi_i64("lens", &["4"]),
        vi("cols", &["2", "18", "12"]),
    ];
    let bytes = model(18, nodes, inputs_vi, outputs, vec![crop, image, block]);
    let inputs = tensors(vec![
        ("x", Tensor::f32(vec![2, 8, 4, 6], x.clone()).unwrap()),
        ("x3", Tensor::f32(vec![4, 6, 4], x[..96].to_vec()).unwrap()),
        ("x2", Tensor::f32(vec![4, 6], x[..24].to_vec()).unwrap()),
        ("lens", lens),
        ("cols", Tensor::f32(vec![2, 18, 12], cols).unwrap()),
    ]);
    let mut runs = on_every_backend(&bytes, &inputs).into_iter();
    let (_, want) = runs.next().expect("the interpreter");
    // Spot checks of the interpreter's results against the definitions.
    let eye = want["eye"].to_f32();
    assert!((0..24).all(|i| eye[i] == f32::from(i % 6 == i / 6 + 1)), "eye: {eye:?}");
    let rev = want["rev"].to_f32();
    assert_eq!(rev[0..4], x[12..16], "sequence 0 (length 4): its element 0 is old element 3");
    assert_eq!(rev[24..48], x[24..48], "sequence 1 (length 1) stays");
    let s2d = want["s2d"].to_f32();
    assert_eq!(s2d[8 * 6], x[1], "s2d channel 8 is channel 0 at block offset (0, 1)");
    for (b, got) in runs {
        for o in ["dcr", "crd", "s2d", "ccp", "rev", "eye"] {
            assert_eq!(got[o].to_f32(), want[o].to_f32(), "{b:?} {o}");
        }
        for o in ["col2im", "mvn"] {
            let w: Vec<f64> = want[o].to_f32().iter().map(|&v| v as f64).collect();
            close(&format!("{b:?} {o}"), &got[o].to_f32(), &w, 1e-6, 1.0);
        }
    }
}

/// GridSample in every mode, padding mode and corner alignment (2-d, grid
/// points up to 30% outside the image), a 3-d linear one, and AffineGrid
/// feeding GridSample (a spatial transformer), on every backend against the
/// interpreter (which the ONNX conformance cases check): within 1e-5.
#[test]
fn grid_sample_and_affine_grid_match_the_interpreter_on_every_backend() {
    let x: Vec<f32> = (0..2 * 3 * 5 * 7).map(|i| wobble(i, 6)).collect();
    let grid: Vec<f32> = (0..2 * 4 * 6 * 2).map(|i| 1.3 * wobble(i, 7)).collect();
    let v: Vec<f32> = (0..2 * 2 * 3 * 4 * 5).map(|i| wobble(i, 8)).collect();
    let g3: Vec<f32> = (0..2 * 2 * 3 * 4 * 3).map(|i| 1.2 * wobble(i, 9)).collect();
    let theta: Vec<f32> = (0..2 * 6).map(|i| [0.9, -0.2, 0.1, 0.3, 1.1, -0.2][i % 6] + 0.05 * wobble(i, 10)).collect();
    let size = to_proto(&Tensor::i64(vec![4], vec![2, 3, 4, 6]).unwrap(), "size");
    let mut nodes = vec![];
    let mut outputs = vec![];
    for mode in ["nearest", "linear", "cubic"] {
        for pad in ["zeros", "border", "reflection"] {
            for align in [0, 1] {
                let name = format!("{mode}_{pad}_{align}");
                let attrs = vec![string_attr("mode", mode), string_attr("padding_mode", pad), int_attr("align_corners", align)];
                nodes.push(node_with("GridSample", &name, &["x", "grid"], &[&name], attrs));
                outputs.push(vi(&name, &["2", "3", "4", "6"]));
            }
        }
    }
    nodes.push(node_with("GridSample", "vol", &["v", "g3"], &["vol"], vec![string_attr("mode", "linear")]));
    outputs.push(vi("vol", &["2", "2", "2", "3", "4"]));
    nodes.push(node("AffineGrid", "affine", &["theta", "size"], &["affine"]));
    nodes.push(node("GridSample", "stn", &["x", "affine"], &["stn"]));
    outputs.push(vi("affine", &["2", "4", "6", "2"]));
    outputs.push(vi("stn", &["2", "3", "4", "6"]));
    let inputs_vi = vec![
        vi("x", &["2", "3", "5", "7"]),
        vi("grid", &["2", "4", "6", "2"]),
        vi("v", &["2", "2", "3", "4", "5"]),
        vi("g3", &["2", "2", "3", "4", "3"]),
        vi("theta", &["2", "2", "3"]),
    ];
    let names: Vec<String> = outputs.iter().map(|o| o.name.clone().unwrap_or_default()).collect();
    let bytes = model(20, nodes, inputs_vi, outputs, vec![size]);
    let inputs = tensors(vec![
        ("x", Tensor::f32(vec![2, 3, 5, 7], x.clone()).unwrap()),
        ("grid", Tensor::f32(vec![2, 4, 6, 2], grid.clone()).unwrap()),
        ("v", Tensor::f32(vec![2, 2, 3, 4, 5], v).unwrap()),
        ("g3", Tensor::f32(vec![2, 2, 3, 4, 3], g3).unwrap()),
        ("theta", Tensor::f32(vec![2, 2, 3], theta.clone()).unwrap()),
    ]);
    let mut runs = on_every_backend(&bytes, &inputs).into_iter();
    let (_, want) = runs.next().expect("the interpreter");
    // Spot checks of the interpreter: the affine grid's first point is θ·(−1 + 1/6, −1 + 1/4, 1);
    // an aligned nearest sample with the border clamp reads the pixel the grid names.
    let (gx, gy) = (-1.0 + 1.0 / 6.0, -1.0 + 1.0 / 4.0);
    let a = want["affine"].to_f32();
    assert!((a[0] - (theta[0] * gx + theta[1] * gy + theta[2])).abs() < 1e-6, "affine {}", a[0]);
    let (px, py) = ((((grid[0] + 1.0) / 2.0 * 6.0).round_ties_even()).clamp(0.0, 6.0), (((grid[1] + 1.0) / 2.0 * 4.0).round_ties_even()).clamp(0.0, 4.0));
    assert_eq!(want["nearest_border_1"].to_f32()[0], x[py as usize * 7 + px as usize], "nearest, border, aligned");
    for (b, got) in runs {
        for o in &names {
            let w: Vec<f64> = want[o.as_str()].to_f32().iter().map(|&v| v as f64).collect();
            close(&format!("{b:?} {o}"), &got[o.as_str()].to_f32(), &w, 1e-5, 1.0);
        }
    }
}

/// Scan (a scan axis other than 0, a reversed scan output) and Loop (a known
/// trip count, the iteration number used as data, a scan output), unrolled at
/// import, on every backend against sums computed here.
#[test]
fn scan_and_loop_unroll_on_every_backend() {
    use onnx_support::graph_attr;
    let (t, w) = (5usize, 3usize);
    let x: Vec<f32> = (0..w * t).map(|i| wobble(i, 11)).collect();
    let s0: Vec<f32> = vec![0.5, -1.0, 2.0];
    // Scan body: s ← s + x_t; y_t = 2·s.
    let scan_body = graph_attr(
        "body",
        vec![node("Add", "acc", &["s_in", "x_t"], &["s_out"]), node("Add", "twice", &["s_out", "s_out"], &["y_t"])],
        vec![vi("s_in", &["3"]), vi("x_t", &["3"])],
        vec![vi("s_out", &["3"]), vi("y_t", &["3"])],
    );
    let scan = node_with(
        "Scan",
        "scan",
        &["s0", "x"],
        &["s_final", "ys"],
        vec![scan_body, int_attr("num_scan_inputs", 1), ints_attr("scan_input_axes", &[1]), ints_attr("scan_output_directions", &[1])],
    );
    // Loop body: acc ← acc + (float) i; out_i = acc.
    let loop_body = graph_attr(
        "body",
        vec![
            node("Identity", "keep", &["cond_in"], &["cond_out"]),
            node_with("Cast", "as_float", &["i"], &["fi"], vec![int_attr("to", 1)]),
            node("Add", "step", &["acc_in", "fi"], &["acc_out"]),
            node("Identity", "out", &["acc_out"], &["acc_scan"]),
        ],
        vec![vi_i64("i", &[]), onnx_support::vi_typed("cond_in", &[], 9), vi("acc_in", &["3"])],
        vec![onnx_support::vi_typed("cond_out", &[], 9), vi("acc_out", &["3"]), vi("acc_scan", &["3"])],
    );
    let trips = to_proto(&Tensor::i64(vec![], vec![4]).unwrap(), "trips");
    let cond = to_proto(&Tensor::new(vec![], smelt::ir::Data::Bool(vec![true])).unwrap(), "cond");
    let lp = node_with("Loop", "loop", &["trips", "cond", "s0"], &["acc", "accs"], vec![loop_body]);
    let bytes = model(
        16,
        vec![scan, lp],
        vec![vi("s0", &["3"]), vi("x", &["3", "5"])],
        vec![vi("s_final", &["3"]), vi("ys", &["5", "3"]), vi("acc", &["3"]), vi("accs", &["4", "3"])],
        vec![trips, cond],
    );
    let inputs = tensors(vec![("s0", Tensor::f32(vec![w], s0.clone()).unwrap()), ("x", Tensor::f32(vec![w, t], x.clone()).unwrap())]);
    let mut s = s0.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let mut ys = vec![];
    for k in 0..t {
        for j in 0..w {
            s[j] += x[j * t + k] as f64;
        }
        ys.push(s.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }
    ys.reverse();
    let ys: Vec<f64> = ys.concat();
    let mut acc: Vec<f64> = s0.iter().map(|&v| v as f64).collect();
    let mut accs = vec![];
    for i in 0..4 {
        acc.iter_mut().for_each(|a| *a += i as f64);
        accs.extend(acc.clone());
    }
    for (b, out) in on_every_backend(&bytes, &inputs) {
        close(&format!("{b:?} scan state"), &out["s_final"].to_f32(), &s, 1e-6, 1.0);
        close(&format!("{b:?} scan outputs"), &out["ys"].to_f32(), &ys, 1e-6, 1.0);
        close(&format!("{b:?} loop state"), &out["acc"].to_f32(), &acc, 1e-6, 1.0);
        close(&format!("{b:?} loop outputs"), &out["accs"].to_f32(), &accs, 1e-6, 1.0);
    }
}

/// RotaryEmbedding (4-d input with position ids, halves and interleaved pairs,
/// a partial rotary dim; 3-d input with per-position caches) on every backend
/// against the definition computed here.
#[test]
fn rotary_embedding_matches_its_definition_on_every_backend() {
    let (b, h, s, d, rot, max_pos) = (2usize, 3usize, 5usize, 8usize, 6usize, 11usize);
    let half = rot / 2;
    let x: Vec<f32> = (0..b * h * s * d).map(|i| wobble(i, 12)).collect();
    let cos: Vec<f32> = (0..max_pos * half).map(|i| (i as f32 * 0.37).cos()).collect();
    let sin: Vec<f32> = (0..max_pos * half).map(|i| (i as f32 * 0.37).sin()).collect();
    let pos: Vec<i64> = (0..b * s).map(|i| ((i * 7 + 1) % max_pos) as i64).collect();
    let mut nodes = vec![];
    for inter in [0, 1] {
        let attrs = vec![int_attr("interleaved", inter), int_attr("rotary_embedding_dim", rot as i64)];
        nodes.push(node_with("RotaryEmbedding", &format!("r{inter}"), &["x", "cos", "sin", "pos"], &[&format!("r{inter}")], attrs));
    }
    // 3-d: [b, s, h·d], the caches per position.
    nodes.push(node_with("RotaryEmbedding", "flat", &["x3", "cos3", "sin3"], &["flat"], vec![int_attr("num_heads", h as i64)]));
    let c3: Vec<f32> = (0..b * s * d / 2).map(|i| (i as f32 * 0.21).cos()).collect();
    let s3: Vec<f32> = (0..b * s * d / 2).map(|i| (i as f32 * 0.21).sin()).collect();
    let bytes = model(
        23,
        nodes,
        vec![
            vi("x", &["2", "3", "5", "8"]),
            vi("cos", &["11", "3"]),
            vi("sin", &["11", "3"]),
            vi_i64("pos", &["2", "5"]),
            vi("x3", &["2", "5", "24"]),
            vi("cos3", &["2", "5", "4"]),
            vi("sin3", &["2", "5", "4"]),
        ],
        vec![vi("r0", &["2", "3", "5", "8"]), vi("r1", &["2", "3", "5", "8"]), vi("flat", &["2", "5", "24"])],
        vec![],
    );
    let inputs = tensors(vec![
        ("x", Tensor::f32(vec![b, h, s, d], x.clone()).unwrap()),
        ("cos", Tensor::f32(vec![max_pos, half], cos.clone()).unwrap()),
        ("sin", Tensor::f32(vec![max_pos, half], sin.clone()).unwrap()),
        ("pos", Tensor::i64(vec![b, s], pos.clone()).unwrap()),
        ("x3", Tensor::f32(vec![b, s, h * d], x.clone()).unwrap()),
        ("cos3", Tensor::f32(vec![b, s, d / 2], c3.clone()).unwrap()),
        ("sin3", Tensor::f32(vec![b, s, d / 2], s3.clone()).unwrap()),
    ]);
    // The definition: pairs (i, i + half) or (2i, 2i + 1) of each head rotated.
    let rotate = |x: &[f32], c: &dyn Fn(usize, usize, usize) -> (f64, f64), heads_first: bool, rot: usize, inter: bool| -> Vec<f64> {
        let mut y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let half = rot / 2;
        for bi in 0..b {
            for hi in 0..h {
                for si in 0..s {
                    let base = if heads_first { ((bi * h + hi) * s + si) * d } else { ((bi * s + si) * h + hi) * d };
                    for i in 0..half {
                        let (p, q) = if inter { (2 * i, 2 * i + 1) } else { (i, i + half) };
                        let (cv, sv) = c(bi, si, i);
                        let (x1, x2) = (x[base + p] as f64, x[base + q] as f64);
                        y[base + p] = cv * x1 - sv * x2;
                        y[base + q] = sv * x1 + cv * x2;
                    }
                }
            }
        }
        y
    };
    let by_pos = |bi: usize, si: usize, i: usize| {
        let p = pos[bi * s + si] as usize;
        (cos[p * half + i] as f64, sin[p * half + i] as f64)
    };
    let per_pos = |bi: usize, si: usize, i: usize| ((c3[(bi * s + si) * d / 2 + i]) as f64, s3[(bi * s + si) * d / 2 + i] as f64);
    let r0 = rotate(&x, &by_pos, true, rot, false);
    let r1 = rotate(&x, &by_pos, true, rot, true);
    let flat = rotate(&x, &per_pos, false, d, false);
    for (bk, out) in on_every_backend(&bytes, &inputs) {
        close(&format!("{bk:?} halves"), &out["r0"].to_f32(), &r0, 1e-6, 1.0);
        close(&format!("{bk:?} interleaved"), &out["r1"].to_f32(), &r1, 1e-6, 1.0);
        close(&format!("{bk:?} 3-d"), &out["flat"].to_f32(), &flat, 1e-6, 1.0);
    }
}

/// An `If` decided at run time (both branches computed, one selected), with a
/// branch reading the enclosing graph's values, on every backend for either
/// condition.
#[test]
fn run_time_if_selects_its_branch_on_every_backend() {
    use onnx_support::graph_attr;
    let x: Vec<f32> = (0..6).map(|i| wobble(i, 13)).collect();
    let two = to_proto(&Tensor::f32(vec![], vec![2.0]).unwrap(), "two");
    let then = graph_attr("then_branch", vec![node("Mul", "double", &["x", "two"], &["t"])], vec![], vec![vi("t", &["2", "3"])]);
    let other = graph_attr("else_branch", vec![node("Neg", "negate", &["x"], &["e"])], vec![], vec![vi("e", &["2", "3"])]);
    let bytes = model(
        13,
        vec![node_with("If", "branch", &["c"], &["y"], vec![then, other])],
        vec![vi("x", &["2", "3"]), onnx_support::vi_typed("c", &[], 9)],
        vec![vi("y", &["2", "3"])],
        vec![two],
    );
    for c in [true, false] {
        let inputs = tensors(vec![
            ("x", Tensor::f32(vec![2, 3], x.clone()).unwrap()),
            ("c", Tensor::new(vec![], smelt::ir::Data::Bool(vec![c])).unwrap()),
        ]);
        let want: Vec<f32> = x.iter().map(|&v| if c { 2.0 * v } else { -v }).collect();
        for (b, out) in on_every_backend(&bytes, &inputs) {
            assert_eq!(out["y"].to_f32(), want, "{b:?}, condition {c}");
        }
    }
}

/// LinearAttention (gated delta rule, grouped queries, a past state; the plain
/// linear rule without one) and FlexAttention (a score_mod graph soft-capping
/// the scores, grouped queries) on every backend against the interpreter
/// (which the ONNX conformance cases check): within 1e-5.
#[test]
fn linear_and_flex_attention_match_the_interpreter_on_every_backend() {
    use onnx_support::{graph_attr, vi_typed};
    let (b, t, hq, hkv, dk, dv) = (2usize, 5usize, 4usize, 2usize, 3usize, 4usize);
    let f = |len: usize, seed: usize, s: f32| -> Vec<f32> { (0..len).map(|i| s * wobble(i, seed)).collect() };
    let la = node_with(
        "LinearAttention",
        "gd",
        &["q", "k", "v", "past", "decay", "beta"],
        &["gd", "gd_state"],
        vec![int_attr("q_num_heads", hq as i64), int_attr("kv_num_heads", hkv as i64)],
    );
    let lin = node_with(
        "LinearAttention",
        "lin",
        &["q", "k", "v"],
        &["lin", "lin_state"],
        vec![int_attr("q_num_heads", hq as i64), int_attr("kv_num_heads", hkv as i64), string_attr("update_rule", "linear")],
    );
    // score_mod: 5·tanh(s / 5).
    let cap = graph_attr(
        "score_mod",
        vec![
            node("Div", "d", &["s", "five"], &["s5"]),
            node("Tanh", "th", &["s5"], &["ts"]),
            node("Mul", "m", &["ts", "five"], &["capped"]),
        ],
        vec![vi("s", &[])],
        vec![vi("capped", &[])],
    );
    let mut flex = node_with("FlexAttention", "flex", &["fq", "fk", "fv"], &["flex"], vec![cap]);
    flex.domain = Some("ai.onnx.preview".into());
    let five = to_proto(&Tensor::f32(vec![], vec![5.0]).unwrap(), "five");
    let mut m = smelt::frontends::onnx::decode_model(&model(
        27,
        vec![la, lin, flex],
        vec![
            vi("q", &["2", "5", "12"]),
            vi("k", &["2", "5", "6"]),
            vi("v", &["2", "5", "8"]),
            vi("past", &["2", "2", "3", "4"]),
            vi("decay", &["2", "5", "6"]),
            vi("beta", &["2", "5", "2"]),
            vi("fq", &["2", "4", "5", "3"]),
            vi("fk", &["2", "2", "6", "3"]),
            vi("fv", &["2", "2", "6", "4"]),
        ],
        vec![vi("gd", &["2", "5", "16"]), vi_typed("gd_state", &["2", "2", "3", "4"], 1), vi("lin", &["2", "5", "16"]), vi("flex", &["2", "4", "5", "4"])],
        vec![five],
    ))
    .unwrap();
    m.opset_import.push(smelt::frontends::onnx::proto::OperatorSetIdProto { domain: Some("ai.onnx.preview".into()), version: Some(1) });
    let bytes = smelt::frontends::onnx::encode_model(&m);
    let inputs = tensors(vec![
        ("q", Tensor::f32(vec![b, t, hq * dk], f(b * t * hq * dk, 20, 1.0)).unwrap()),
        ("k", Tensor::f32(vec![b, t, hkv * dk], f(b * t * hkv * dk, 21, 1.0)).unwrap()),
        ("v", Tensor::f32(vec![b, t, hkv * dv], f(b * t * hkv * dv, 22, 1.0)).unwrap()),
        ("past", Tensor::f32(vec![b, hkv, dk, dv], f(b * hkv * dk * dv, 23, 0.5)).unwrap()),
        ("decay", Tensor::f32(vec![b, t, hkv * dk], f(b * t * hkv * dk, 24, 0.3).iter().map(|v| v - 0.3).collect()).unwrap()),
        ("beta", Tensor::f32(vec![b, t, hkv], f(b * t * hkv, 25, 0.5).iter().map(|v| v + 0.5).collect()).unwrap()),
        ("fq", Tensor::f32(vec![b, 4, 5, 3], f(b * 4 * 5 * 3, 26, 2.0)).unwrap()),
        ("fk", Tensor::f32(vec![b, 2, 6, 3], f(b * 2 * 6 * 3, 27, 2.0)).unwrap()),
        ("fv", Tensor::f32(vec![b, 2, 6, 4], f(b * 2 * 6 * 4, 28, 1.0)).unwrap()),
    ]);
    let mut runs = on_every_backend(&bytes, &inputs).into_iter();
    let (_, want) = runs.next().expect("the interpreter");
    for (bk, got) in runs {
        for o in ["gd", "gd_state", "lin", "flex"] {
            let w: Vec<f64> = want[o].to_f32().iter().map(|&v| v as f64).collect();
            close(&format!("{bk:?} {o}"), &got[o].to_f32(), &w, 1e-5, 1.0);
        }
    }
}

/// BatchNormalization in training mode: normalized with the batch's statistics,
/// the running ones updated with the momentum; on every backend against f64.
#[test]
fn batch_norm_training_mode_on_every_backend() {
    let (n, c, l) = (3usize, 4usize, 5usize);
    let x: Vec<f32> = (0..n * c * l).map(|i| 2.0 * wobble(i, 30) + 0.3).collect();
    let p = |name: &str, v: Vec<f32>| to_proto(&Tensor::f32(vec![c], v).unwrap(), name);
    let (scale, bias, mean, var) = (vec![1.0, 0.5, 2.0, -1.0], vec![0.1, 0.2, -0.3, 0.0], vec![0.5, -0.5, 0.0, 1.0], vec![1.0, 2.0, 0.5, 1.5]);
    let bn = node_with(
        "BatchNormalization",
        "bn",
        &["x", "s", "b", "m", "v"],
        &["y", "rm", "rv"],
        vec![int_attr("training_mode", 1), onnx_support::float_attr("momentum", 0.8)],
    );
    let bytes = model(
        15,
        vec![bn],
        vec![vi("x", &["3", "4", "5"])],
        vec![vi("y", &["3", "4", "5"]), vi("rm", &["4"]), vi("rv", &["4"])],
        vec![p("s", scale.clone()), p("b", bias.clone()), p("m", mean.clone()), p("v", var.clone())],
    );
    let inputs = tensors(vec![("x", Tensor::f32(vec![n, c, l], x.clone()).unwrap())]);
    let at = |i: usize, ch: usize, j: usize| x[(i * c + ch) * l + j] as f64;
    let mut y = vec![0f64; n * c * l];
    let (mut rm, mut rv) = (vec![], vec![]);
    for ch in 0..c {
        let vals: Vec<f64> = (0..n).flat_map(|i| (0..l).map(move |j| (i, j))).map(|(i, j)| at(i, ch, j)).collect();
        let mu = vals.iter().sum::<f64>() / vals.len() as f64;
        let var_b = vals.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / vals.len() as f64;
        for i in 0..n {
            for j in 0..l {
                y[(i * c + ch) * l + j] = (at(i, ch, j) - mu) / (var_b + 1e-5).sqrt() * scale[ch] as f64 + bias[ch] as f64;
            }
        }
        rm.push(mean[ch] as f64 * 0.8 + mu * 0.2);
        rv.push(var[ch] as f64 * 0.8 + var_b * 0.2);
    }
    for (b, out) in on_every_backend(&bytes, &inputs) {
        close(&format!("{b:?} y"), &out["y"].to_f32(), &y, 1e-5, 1.0);
        close(&format!("{b:?} running mean"), &out["rm"].to_f32(), &rm, 1e-6, 1.0);
        close(&format!("{b:?} running var"), &out["rv"].to_f32(), &rv, 1e-6, 1.0);
    }
}

/// CumProd (f32, and i32 exclusive and reversed), Compress (a known condition,
/// with and without an axis) and TensorScatter (linear and circular writes of
/// a key/value-cache update) on every backend against values computed here.
#[test]
fn cumprod_compress_and_tensor_scatter_on_every_backend() {
    use onnx_support::vi_typed;
    let x: Vec<f32> = (0..3 * 4).map(|i| 1.0 + 0.5 * wobble(i, 40)).collect();
    let xi: Vec<i32> = vec![2, -1, 3, 1, 2, 2, -3, 1];
    let axis1 = to_proto(&Tensor::i64(vec![], vec![1]).unwrap(), "axis1");
    let axis0 = to_proto(&Tensor::i64(vec![], vec![0]).unwrap(), "axis0");
    let cond = to_proto(&Tensor::new(vec![3], smelt::ir::Data::Bool(vec![true, false, true])).unwrap(), "cond");
    let (b, m, s, d) = (2usize, 5usize, 2usize, 3usize);
    let past: Vec<f32> = (0..b * m * d).map(|i| i as f32).collect();
    let upd: Vec<f32> = (0..b * s * d).map(|i| -1.0 - i as f32).collect();
    let w = Tensor::i64(vec![b], vec![1, 4]).unwrap();
    let nodes = vec![
        node("CumProd", "cp", &["x", "axis1"], &["cp"]),
        node_with("CumProd", "cpi", &["xi", "axis0"], &["cpi"], vec![int_attr("exclusive", 1), int_attr("reverse", 1)]),
        node_with("Compress", "c1", &["x", "cond"], &["c1"], vec![int_attr("axis", 0)]),
        node("Compress", "c0", &["x", "cond"], &["c0"]),
        node_with("TensorScatter", "lin", &["past", "upd", "w_lin"], &["lin"], vec![]),
        node_with("TensorScatter", "circ", &["past", "upd", "w"], &["circ"], vec![string_attr("mode", "circular")]),
    ];
    let w_lin = to_proto(&Tensor::i64(vec![b], vec![0, 3]).unwrap(), "w_lin");
    let bytes = model(
        24,
        nodes,
        vec![vi("x", &["3", "4"]), vi_typed("xi", &["8"], 6), vi("past", &["2", "5", "3"]), vi("upd", &["2", "2", "3"]), vi_i64("w", &["2"])],
        vec![vi("cp", &["3", "4"]), vi_typed("cpi", &["8"], 6), vi("c1", &["2", "4"]), vi("c0", &["2"]), vi("lin", &["2", "5", "3"]), vi("circ", &["2", "5", "3"])],
        vec![axis1, axis0, cond, w_lin],
    );
    let inputs = tensors(vec![
        ("x", Tensor::f32(vec![3, 4], x.clone()).unwrap()),
        ("xi", Tensor::new(vec![8], smelt::ir::Data::I32(xi.clone())).unwrap()),
        ("past", Tensor::f32(vec![b, m, d], past.clone()).unwrap()),
        ("upd", Tensor::f32(vec![b, s, d], upd.clone()).unwrap()),
        ("w", w),
    ]);
    let cp: Vec<f64> = (0..12).map(|e| (0..=e % 4).map(|j| x[e / 4 * 4 + j] as f64).product()).collect();
    let cpi: Vec<f32> = (0..8).map(|e| (e + 1..8).map(|j| xi[j] as i64).product::<i64>() as f32).collect();
    let c1: Vec<f32> = [&x[0..4], &x[8..12]].concat();
    let c0 = vec![x[0], x[2]];
    let scatter = |starts: [usize; 2], circular: bool| -> Vec<f32> {
        let mut y = past.clone();
        for (bi, &st) in starts.iter().enumerate() {
            for si in 0..s {
                let p = if circular { (st + si) % m } else { st + si };
                for di in 0..d {
                    y[(bi * m + p) * d + di] = upd[(bi * s + si) * d + di];
                }
            }
        }
        y
    };
    for (bk, out) in on_every_backend(&bytes, &inputs) {
        close(&format!("{bk:?} cumprod"), &out["cp"].to_f32(), &cp, 1e-6, 1.0);
        assert_eq!(out["cpi"].to_f32(), cpi, "{bk:?} cumprod i32");
        assert_eq!(out["c1"].to_f32(), c1, "{bk:?} compress axis 0");
        assert_eq!(out["c0"].to_f32(), c0, "{bk:?} compress flat");
        assert_eq!(out["lin"].to_f32(), scatter([0, 3], false), "{bk:?} linear scatter");
        assert_eq!(out["circ"].to_f32(), scatter([1, 4], true), "{bk:?} circular scatter");
    }
}

/// Bad attributes and sizes of the ops above are import errors naming the
/// node and what is wrong — never a panic or a huge allocation.
#[test]
fn bad_attributes_are_import_errors() {
    use smelt::frontends::onnx::proto::{NodeProto, TensorProto};
    let k = |name: &str, shape: Vec<usize>, v: Vec<i64>| to_proto(&Tensor::i64(shape, v).unwrap(), name);
    let f = |name: &str, shape: Vec<usize>| to_proto(&Tensor::f32(shape.clone(), vec![0.5; shape.iter().product()]).unwrap(), name);
    let dq_lstm = || {
        let mut nd = node_with("DynamicQuantizeLSTM", "q", &["x", "w", "r", "", "", "", "", "", "ws", "wz", "rs", "rz"], &["y"], vec![int_attr("hidden_size", 1)]);
        nd.domain = Some("com.microsoft".into());
        nd
    };
    // (what, node, initializers, dims of input x, words the error must hold)
    type Case<'a> = (&'a str, NodeProto, Vec<TensorProto>, &'a [&'a str], &'a str);
    let cases: Vec<Case> = vec![
        ("huge dft_length", node("DFT", "dft", &["x", "len"], &["y"]), vec![k("len", vec![], vec![1 << 40])], &["2", "4", "2"], "2^26"),
        ("zero dft_length", node("DFT", "dft", &["x", "len"], &["y"]), vec![k("len", vec![], vec![0])], &["2", "4", "2"], "at least 1"),
        ("huge window", node("HannWindow", "w", &["len"], &["y"]), vec![k("len", vec![], vec![1 << 40])], &["2"], "out of range"),
        ("zero blocksize", node_with("DepthToSpace", "d2s", &["x"], &["y"], vec![int_attr("blocksize", 0)]), vec![], &["1", "4", "2", "2"], "blocksize"),
        (
            "huge col2im pads",
            node_with("Col2Im", "c", &["x", "img", "blk"], &["y"], vec![ints_attr("pads", &[1 << 62, 0, 0, 0])]),
            vec![k("img", vec![2], vec![4, 4]), k("blk", vec![2], vec![2, 2])],
            &["1", "4", "9"],
            "2^26",
        ),
        (
            "huge col2im image",
            node("Col2Im", "c", &["x", "img", "blk"], &["y"]),
            vec![k("img", vec![2], vec![1 << 40, 1 << 40]), k("blk", vec![2], vec![1, 1])],
            &["1", "4", "9"],
            "2^26",
        ),
        ("grid mode", node_with("GridSample", "g", &["x", "grid"], &["y"], vec![string_attr("mode", "quintic")]), vec![], &["1", "1", "4", "4"], "quintic"),
        ("loss reduction", node_with("NegativeLogLikelihoodLoss", "l", &["x", "t"], &["y"], vec![string_attr("reduction", "max")]), vec![], &["2", "3"], "max"),
        ("scan inputs", node_with("Scan", "s", &["x"], &["y"], vec![int_attr("num_scan_inputs", 5)]), vec![], &["2"], "body"),
        (
            "odd rotary dim",
            node_with("RotaryEmbedding", "r", &["x", "x", "x"], &["y"], vec![int_attr("rotary_embedding_dim", 3)]),
            vec![],
            &["1", "1", "2", "4"],
            "even",
        ),
        ("dq-lstm scales", dq_lstm(), vec![k("w", vec![1, 2, 4], vec![1; 8]), k("r", vec![1, 1, 4], vec![1; 4]), f("ws", vec![3]), k("wz", vec![], vec![0]), f("rs", vec![]), k("rz", vec![], vec![0])], &["2", "1", "2"], "expected 1 (per direction) or 4 (per row)"),
    ];
    for (what, nd, inits, dims, says) in cases {
        let name = format!("`{}`", nd.name.clone().unwrap_or_default());
        let inputs = vec![vi("x", dims), vi("grid", &["1", "2", "2", "2"]), vi_i64("t", &["2"])];
        let bytes = model(24, vec![nd], inputs, vec![vi("y", &["2"])], inits);
        let opts = smelt::frontends::onnx::Options::default();
        match smelt::frontends::onnx::import(&bytes, &opts) {
            Ok(_) => panic!("{what}: imported"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains(&name) && e.contains(says), "{what}: {e}");
            }
        }
    }
}

/// DeformConv (groups, offset groups, a mask, a bias, strides, dilations and
/// padding; offsets moving taps outside the image) on every backend against
/// the interpreter (which the ONNX conformance cases check): within 1e-5.
#[test]
fn deform_conv_matches_the_interpreter_on_every_backend() {
    let (n, c, h, w, oc, k) = (2usize, 4usize, 7usize, 6usize, 6usize, 3usize);
    let (oh, ow) = (4usize, 2usize);
    let x: Vec<f32> = (0..n * c * h * w).map(|i| wobble(i, 50)).collect();
    let wt: Vec<f32> = (0..oc * (c / 2) * k * k).map(|i| wobble(i, 51)).collect();
    let off: Vec<f32> = (0..n * 2 * 2 * k * k * oh * ow).map(|i| 2.5 * wobble(i, 52)).collect();
    let mask: Vec<f32> = (0..n * 2 * k * k * oh * ow).map(|i| 0.5 + 0.5 * wobble(i, 53)).collect();
    let b = to_proto(&Tensor::f32(vec![oc], (0..oc).map(|i| i as f32 * 0.1).collect()).unwrap(), "b");
    let attrs = vec![
        int_attr("group", 2),
        int_attr("offset_group", 2),
        ints_attr("strides", &[2, 2]),
        ints_attr("dilations", &[1, 2]),
        ints_attr("pads", &[1, 1, 1, 1]),
        ints_attr("kernel_shape", &[3, 3]),
    ];
    let bytes = model(
        19,
        vec![node_with("DeformConv", "dc", &["x", "w", "off", "b", "mask"], &["y"], attrs)],
        vec![vi("x", &["2", "4", "7", "6"]), vi("w", &["6", "2", "3", "3"]), vi("off", &["2", "36", "4", "2"]), vi("mask", &["2", "18", "4", "2"])],
        vec![vi("y", &["2", "6", "4", "2"])],
        vec![b],
    );
    let inputs = tensors(vec![
        ("x", Tensor::f32(vec![n, c, h, w], x).unwrap()),
        ("w", Tensor::f32(vec![oc, c / 2, k, k], wt).unwrap()),
        ("off", Tensor::f32(vec![n, 2 * 2 * k * k, oh, ow], off).unwrap()),
        ("mask", Tensor::f32(vec![n, 2 * k * k, oh, ow], mask).unwrap()),
    ]);
    let mut runs = on_every_backend(&bytes, &inputs).into_iter();
    let (_, want) = runs.next().expect("the interpreter");
    let w64: Vec<f64> = want["y"].to_f32().iter().map(|&v| v as f64).collect();
    assert!(w64.iter().any(|v| v.abs() > 0.5), "a vacuous comparison");
    for (bk, got) in runs {
        close(&format!("{bk:?} deform conv"), &got["y"].to_f32(), &w64, 1e-5, 1.0);
    }
}

/// RoiAlign (avg and max, both coordinate modes, rois reaching outside the
/// image, run-time batch indices) on every backend against the interpreter
/// (which the ONNX conformance cases check): within 1e-5.
#[test]
fn roi_align_matches_the_interpreter_on_every_backend() {
    let (n, c, h, w) = (2usize, 3usize, 9usize, 8usize);
    let x: Vec<f32> = (0..n * c * h * w).map(|i| wobble(i, 60)).collect();
    let rois: Vec<f32> = vec![0.0, 0.0, 7.0, 8.0, 2.5, 1.0, 6.0, 4.5, -3.0, 5.0, 4.0, 12.0, 1.0, 1.0, 1.2, 1.4];
    let idx = Tensor::i64(vec![4], vec![1, 0, 1, 0]).unwrap();
    let nodes = vec![
        node_with("RoiAlign", "avg", &["x", "rois", "idx"], &["avg"], vec![int_attr("output_height", 3), int_attr("output_width", 2), int_attr("sampling_ratio", 2)]),
        node_with(
            "RoiAlign",
            "max",
            &["x", "rois", "idx"],
            &["max"],
            vec![
                int_attr("output_height", 2),
                int_attr("output_width", 3),
                int_attr("sampling_ratio", 3),
                string_attr("mode", "max"),
                string_attr("coordinate_transformation_mode", "output_half_pixel"),
                onnx_support::float_attr("spatial_scale", 0.5),
            ],
        ),
    ];
    let bytes = model(
        16,
        nodes,
        vec![vi("x", &["2", "3", "9", "8"]), vi("rois", &["4", "4"]), vi_i64("idx", &["4"])],
        vec![vi("avg", &["4", "3", "3", "2"]), vi("max", &["4", "3", "2", "3"])],
        vec![],
    );
    let inputs = tensors(vec![("x", Tensor::f32(vec![n, c, h, w], x).unwrap()), ("rois", Tensor::f32(vec![4, 4], rois).unwrap()), ("idx", idx)]);
    let mut runs = on_every_backend(&bytes, &inputs).into_iter();
    let (_, want) = runs.next().expect("the interpreter");
    for (bk, got) in runs {
        for o in ["avg", "max"] {
            let w64: Vec<f64> = want[o].to_f32().iter().map(|&v| v as f64).collect();
            close(&format!("{bk:?} {o}"), &got[o].to_f32(), &w64, 1e-5, 1.0);
        }
    }
}

/// TfIdfVectorizer (unigrams and bigrams, skips up to 2, TFIDF weights) on
/// every backend against counts computed here from the definition.
#[test]
fn tfidf_vectorizer_counts_on_every_backend() {
    use onnx_support::{floats_attr, vi_typed};
    let x: Vec<i32> = vec![1, 2, 3, 2, 1, 2, 3, 3, 1, 1, 2, 4, 2, 3, 1, 2];
    // Unigrams 2, 3; bigrams (1, 2), (2, 3), (3, 1).
    let pool = [2i64, 3, 1, 2, 2, 3, 3, 1];
    let idx = [4i64, 0, 1, 3, 2];
    let weights = [0.5f32, 1.0, 1.5, 2.0, 2.5];
    let nd = node_with(
        "TfIdfVectorizer",
        "tfidf",
        &["x"],
        &["y"],
        vec![
            string_attr("mode", "TFIDF"),
            int_attr("min_gram_length", 1),
            int_attr("max_gram_length", 2),
            int_attr("max_skip_count", 1),
            ints_attr("ngram_counts", &[0, 2]),
            ints_attr("ngram_indexes", &idx),
            ints_attr("pool_int64s", &pool),
            floats_attr("weights", &weights),
        ],
    );
    let bytes = model(9, vec![nd], vec![vi_typed("x", &["2", "8"], 6)], vec![vi("y", &["2", "5"])], vec![]);
    let inputs = tensors(vec![("x", Tensor::new(vec![2, 8], smelt::ir::Data::I32(x.clone())).unwrap())]);
    let grams: Vec<Vec<i32>> = vec![vec![2], vec![3], vec![1, 2], vec![2, 3], vec![3, 1]];
    let mut want = vec![0f64; 10];
    for r in 0..2 {
        let row = &x[r * 8..r * 8 + 8];
        for (g, gram) in grams.iter().enumerate() {
            let dists = if gram.len() == 1 { 1 } else { 2 };
            let mut count = 0;
            for d in 1..=dists {
                for s in 0..8 {
                    if s + (gram.len() - 1) * d < 8 && gram.iter().enumerate().all(|(j, &t)| row[s + j * d] == t) {
                        count += 1;
                    }
                }
            }
            let col = idx[g] as usize;
            want[r * 5 + col] = count as f64 * weights[col] as f64;
        }
    }
    for (b, out) in on_every_backend(&bytes, &inputs) {
        close(&format!("{b:?} tfidf"), &out["y"].to_f32(), &want, 1e-6, 1.0);
    }
}

/// ai.onnx.ml Binarizer and ArrayFeatureExtractor (a 1-d input gives one row)
/// on every backend against values computed here.
#[test]
fn ml_binarizer_and_array_feature_extractor_on_every_backend() {
    let x: Vec<f32> = (0..12).map(|i| wobble(i, 70)).collect();
    let mut bin = node_with("Binarizer", "bin", &["x"], &["b"], vec![onnx_support::float_attr("threshold", 0.1)]);
    let mut afe = node("ArrayFeatureExtractor", "afe", &["x", "idx"], &["f"]);
    let mut afe1 = node("ArrayFeatureExtractor", "afe1", &["v", "idx"], &["f1"]);
    for nd in [&mut bin, &mut afe, &mut afe1] {
        nd.domain = Some("ai.onnx.ml".into());
    }
    let idx = to_proto(&Tensor::i64(vec![3], vec![3, 0, 2]).unwrap(), "idx");
    let mut m = smelt::frontends::onnx::decode_model(&model(
        13,
        vec![bin, afe, afe1],
        vec![vi("x", &["3", "4"]), vi("v", &["4"])],
        vec![vi("b", &["3", "4"]), vi("f", &["3", "3"]), vi("f1", &["1", "3"])],
        vec![idx],
    ))
    .unwrap();
    m.opset_import.push(smelt::frontends::onnx::proto::OperatorSetIdProto { domain: Some("ai.onnx.ml".into()), version: Some(1) });
    let bytes = smelt::frontends::onnx::encode_model(&m);
    let inputs = tensors(vec![("x", Tensor::f32(vec![3, 4], x.clone()).unwrap()), ("v", Tensor::f32(vec![4], x[..4].to_vec()).unwrap())]);
    let b: Vec<f32> = x.iter().map(|&v| f32::from(v > 0.1)).collect();
    let f: Vec<f32> = (0..3).flat_map(|r| [3usize, 0, 2].map(|c| x[r * 4 + c])).collect();
    for (bk, out) in on_every_backend(&bytes, &inputs) {
        assert_eq!(out["b"].to_f32(), b, "{bk:?} binarizer");
        assert_eq!(out["f"].to_f32(), f, "{bk:?} array feature extractor");
        assert_eq!(out["f1"].to_f32(), f[..3], "{bk:?} array feature extractor of a vector");
        assert_eq!(out["f1"].shape(), [1, 3]);
    }
}

/// scikit-learn models trained on the digits and exported with skl2onnx
/// (`scripts/models/sklearn_models.py`: ai.onnx.ml Scaler, Normalizer,
/// LinearClassifier, LinearRegressor, a random forest's TreeEnsembleClassifier
/// and boosted trees' TreeEnsembleRegressor) on every backend against ONNX
/// Runtime's outputs on the 360 held-out images: the same labels (so the same
/// accuracy), probabilities within 1e-5, the regressions within 1e-5 of their
/// largest value.
#[test]
fn sklearn_pipelines_match_onnx_runtime_on_every_backend() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sklearn");
    let data = smelt::ir::weights::read_safetensors(&dir.join("data.safetensors")).expect("data");
    let inputs = tensors(vec![("X", data["x"].clone())]);
    let truth = data["labels"].to_i64();
    let models = [
        ("logreg", &["label", "probabilities"][..]),
        ("norm_logreg", &["label", "probabilities"]),
        ("ridge", &["variable"]),
        ("forest", &["label", "probabilities"]),
        ("boosted", &["variable"]),
    ];
    for (name, outs) in models {
        let bytes = std::fs::read(dir.join(format!("{name}.onnx"))).expect("model");
        for (b, got) in on_every_backend(&bytes, &inputs) {
            for &o in outs {
                let want = &data[&format!("{name}.{o}")];
                if o == "label" {
                    assert_eq!(got[o].to_i64(), want.to_i64(), "{b:?} {name}: labels");
                    let right = truth.iter().zip(got[o].to_i64()).filter(|(t, g)| *t == g).count();
                    assert!(right as f64 / truth.len() as f64 > 0.93, "{b:?} {name}: accuracy {right}/{}", truth.len());
                } else {
                    let w: Vec<f64> = want.to_f32().iter().map(|&v| v as f64).collect();
                    let scale = if o == "variable" { w.iter().fold(0f64, |m, v| m.max(v.abs())) } else { 1.0 };
                    close(&format!("{b:?} {name}.{o}"), &got[o].to_f32(), &w, 1e-5, scale);
                }
            }
        }
    }
}

/// Output sizes the data decides: NonZero, Compress with a condition computed
/// at run time and GatherND at NonZero's indices (boolean-mask indexing as
/// PyTorch exports it), then compiled work on the result — on every backend
/// (stages cut at `nonzero`), against values computed here, for inputs that
/// keep some, none and all of the elements.
#[test]
fn data_dependent_sizes_on_every_backend() {
    let nodes = vec![
        node("Greater", "pos", &["x", "zero"], &["m"]),
        node("NonZero", "nz", &["m"], &["idx"]),
        node("Transpose", "t", &["idx"], &["idx_t"]),
        node("GatherND", "picked", &["x", "idx_t"], &["p"]),
        node("Mul", "sq", &["p", "p"], &["y"]),
        node_with("ReduceSum", "rowsum", &["x", "ax1"], &["rs"], vec![int_attr("keepdims", 0)]),
        node("Greater", "rowpos", &["rs", "zero"], &["keep"]),
        node_with("Compress", "rows", &["x", "keep"], &["c"], vec![int_attr("axis", 0)]),
    ];
    let zero = to_proto(&Tensor::f32(vec![], vec![0.0]).unwrap(), "zero");
    let ax1 = to_proto(&Tensor::i64(vec![1], vec![1]).unwrap(), "ax1");
    // GatherND computes flat offsets from the data's sizes: they are fixed (as
    // `smelt run --inputs` fixes them from the tensors).
    let bytes = |n: usize| {
        model(
            17,
            nodes.clone(),
            vec![vi("x", &[&n.to_string(), "3"])],
            vec![vi("y", &["K"]), vi("c", &["R", "3"]), onnx_support::vi_typed("idx", &["2", "K"], 7)],
            vec![zero.clone(), ax1.clone()],
        )
    };
    for (what, n, x) in [
        ("some", 5usize, (0..15).map(|i| wobble(i, 3)).collect::<Vec<f32>>()),
        ("none", 4, vec![-1.0; 12]),
        ("all", 2, vec![0.5; 6]),
    ] {
        let inputs = tensors(vec![("x", Tensor::f32(vec![n, 3], x.clone()).unwrap())]);
        let pos: Vec<usize> = (0..x.len()).filter(|&i| x[i] > 0.0).collect();
        let want_y: Vec<f32> = pos.iter().map(|&i| x[i] * x[i]).collect();
        let mut want_idx: Vec<i64> = pos.iter().map(|&i| (i / 3) as i64).collect();
        want_idx.extend(pos.iter().map(|&i| (i % 3) as i64));
        let rows: Vec<usize> = (0..n).filter(|&r| x[3 * r..3 * r + 3].iter().sum::<f32>() > 0.0).collect();
        let want_c: Vec<f32> = rows.iter().flat_map(|&r| x[3 * r..3 * r + 3].to_vec()).collect();
        for (b, out) in on_every_backend(&bytes(n), &inputs) {
            assert_eq!(out["y"].shape(), [pos.len()], "{b:?} {what}");
            assert_eq!(out["y"].to_f32(), want_y, "{b:?} {what}");
            assert_eq!(out["idx"].to_i64(), want_idx, "{b:?} {what}");
            assert_eq!(out["c"].shape(), [rows.len(), 3], "{b:?} {what}");
            assert_eq!(out["c"].to_f32(), want_c, "{b:?} {what}");
        }
    }
}

/// NonMaxSuppression after compiled work (the scores a sigmoid of the input)
/// and before it (the kept boxes gathered and scaled): the boxes are laid out
/// so that the selection is plain — two clusters of overlapping boxes and one
/// apart, one box under the score threshold — on every backend.
#[test]
fn non_max_suppression_between_compiled_stages_on_every_backend() {
    use onnx_support::vi_typed;
    let nodes = vec![
        node("Sigmoid", "prob", &["logits"], &["scores"]),
        node_with("NonMaxSuppression", "nms", &["boxes", "scores", "max", "iou", "thr"], &["sel"], vec![]),
        node_with("Gather", "box_col", &["sel", "two"], &["which"], vec![int_attr("axis", 1)]),
        node_with("Gather", "first_batch", &["boxes", "zero_i"], &["b0"], vec![int_attr("axis", 0)]),
        node_with("Gather", "kept", &["b0", "which"], &["k"], vec![int_attr("axis", 0)]),
        node("Mul", "scaled", &["k", "two_f"], &["y"]),
    ];
    let inits = vec![
        to_proto(&Tensor::i64(vec![1], vec![10]).unwrap(), "max"),
        to_proto(&Tensor::f32(vec![1], vec![0.5]).unwrap(), "iou"),
        to_proto(&Tensor::f32(vec![1], vec![0.3]).unwrap(), "thr"),
        to_proto(&Tensor::i64(vec![], vec![2]).unwrap(), "two"),
        to_proto(&Tensor::i64(vec![], vec![0]).unwrap(), "zero_i"),
        to_proto(&Tensor::f32(vec![], vec![2.0]).unwrap(), "two_f"),
    ];
    let bytes = model(
        13,
        nodes,
        vec![vi("boxes", &["1", "6", "4"]), vi("logits", &["1", "1", "6"])],
        vec![vi_typed("sel", &["K", "3"], 7), vi("y", &["K", "4"])],
        inits,
    );
    // [y1, x1, y2, x2]: boxes 0–2 overlap heavily (IoU > 0.5 with box 1), 3–4
    // overlap, 5 stands apart but scores under the threshold.
    let boxes = vec![
        0.0, 0.0, 1.0, 1.0, 0.05, 0.0, 1.05, 1.0, 0.1, 0.05, 1.0, 1.0, 5.0, 5.0, 6.0, 6.0, 5.0, 5.1, 6.0, 6.1, 9.0, 9.0, 9.5, 9.5,
    ];
    let logits = vec![1.0, 2.0, 0.5, -0.2, 0.3, -3.0];
    let inputs = tensors(vec![("boxes", Tensor::f32(vec![1, 6, 4], boxes.clone()).unwrap()), ("logits", Tensor::f32(vec![1, 1, 6], logits).unwrap())]);
    // Best first: 1 (keeps), 0 and 2 (suppressed by 1), 4 then 3 (3 suppressed by 4); 5 under 0.3.
    let kept = [1usize, 4];
    let want_sel: Vec<i64> = kept.iter().flat_map(|&b| [0, 0, b as i64]).collect();
    let want_y: Vec<f32> = kept.iter().flat_map(|&b| boxes[4 * b..4 * b + 4].iter().map(|v| 2.0 * v).collect::<Vec<_>>()).collect();
    for (b, out) in on_every_backend(&bytes, &inputs) {
        assert_eq!(out["sel"].to_i64(), want_sel, "{b:?}");
        assert_eq!(out["y"].to_f32(), want_y, "{b:?}");
    }
}

/// Det (the Leibniz sum) of batches of 1×1 to 5×5 matrices on every backend,
/// against determinants computed here in f64 by elimination; a 6×6 is refused
/// with the reason.
#[test]
fn det_on_every_backend() {
    fn det64(a: &[f64], n: usize) -> f64 {
        let mut m = a.to_vec();
        let mut d = 1.0;
        for c in 0..n {
            let p = (c..n).max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs())).expect("rows");
            if m[p * n + c] == 0.0 {
                return 0.0;
            }
            if p != c {
                for k in 0..n {
                    m.swap(p * n + k, c * n + k);
                }
                d = -d;
            }
            d *= m[c * n + c];
            for r in c + 1..n {
                let f = m[r * n + c] / m[c * n + c];
                for k in c..n {
                    m[r * n + k] -= f * m[c * n + k];
                }
            }
        }
        d
    }
    for side in 1..=5usize {
        let b = 3usize;
        let s = side.to_string();
        let bytes = model(13, vec![node("Det", "det", &["x"], &["y"])], vec![vi("x", &["3", &s, &s])], vec![vi("y", &["3"])], vec![]);
        let x: Vec<f32> = (0..b * side * side).map(|i| wobble(i, 7 + side)).collect();
        let want: Vec<f64> = (0..b).map(|k| det64(&x[k * side * side..(k + 1) * side * side].iter().map(|&v| v as f64).collect::<Vec<_>>(), side)).collect();
        let scale = want.iter().fold(1e-3f64, |a, v| a.max(v.abs()));
        let inputs = tensors(vec![("x", Tensor::f32(vec![b, side, side], x).unwrap())]);
        for (be, out) in on_every_backend(&bytes, &inputs) {
            let got = out["y"].to_f32();
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() <= 1e-5 * scale, "{be:?} {side}×{side}: {g} against {w}");
            }
        }
    }
    let bytes = model(13, vec![node("Det", "det", &["x"], &["y"])], vec![vi("x", &["6", "6"])], vec![vi("y", &[])], vec![]);
    let e = smelt::frontends::onnx::import(&bytes, &smelt::frontends::onnx::Options::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("Det of 6×6 matrices"), "{e}");
}
