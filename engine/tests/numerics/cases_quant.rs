//! Cases for the quantized GEMM (`lower/qgemm.rs`): qmatmul and qconv1d/2d/3d at
//! awkward sizes — odd and prime depths (the last i16 pair half empty), rows and
//! columns that are not multiples of the register tile, batches, depths past one
//! cache block, sizes large enough for the parallel path — with 8-bit values over
//! their whole range, u8 and i8 operands, per-tensor and per-channel zero points,
//! bias or none, i32 or requantized output, constant or run-time weights; and
//! the AMX tile's sizes (`amx` cases).

use super::cases::{Case, Dist, explicit, tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smelt_ir::{DType, Data, Tensor};

fn dims(s: &[usize]) -> String {
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// The whole range of an 8-bit dtype.
fn full(d: DType) -> Dist {
    if d == DType::U8 { Dist::Range(0, 255) } else { Dist::Range(-128, 127) }
}

/// Per-axis quantization over `n` channels with zero points spread over the dtype.
fn per_axis(axis: usize, n: usize, d: DType) -> String {
    let scales: Vec<String> = (0..n).map(|i| format!("{}", 0.01 * (1 + i % 7) as f32)).collect();
    let (lo, hi) = if d == DType::U8 { (0i64, 255i64) } else { (-128, 127) };
    let zps: Vec<String> = (0..n).map(|i| (lo + (i as i64 * 37) % (hi - lo + 1)).to_string()).collect();
    format!("quant(axis = {axis}, scale = [{}], zero_point = [{}])", scales.join(", "), zps.join(", "))
}

/// One quantized op: `x` an input, `w` a param (or an input), an optional bias.
#[allow(clippy::too_many_arguments)]
fn qcase(op: &str, name: &str, rng: &mut ChaCha8Rng, x: (DType, &[usize], &str), w: (DType, &[usize], &str), w_param: bool, bias: Option<usize>, attrs: &str) -> Case {
    let (xd, xs, xq) = x;
    let (wd, ws, wq) = w;
    let wdecl = format!("{wd}[{}] {wq}", dims(ws));
    let (sig_w, mut body) = if w_param { (String::new(), format!("  w = param {wdecl}\n")) } else { (format!(", w: {wdecl}"), String::new()) };
    if let Some(m) = bias {
        body += &format!("  bias = param i32[{m}]\n");
    }
    let args = if bias.is_some() { "x, w, bias" } else { "x, w" };
    let attrs = if attrs.is_empty() { String::new() } else { format!(" {{{attrs}}}") };
    let src = format!("graph {name}(x: {xd}[{}] {xq}{sig_w}) -> (y) {{\n{body}  y = {op}({args}){attrs}\n}}\n", dims(xs));
    let mut inputs = vec![("x", tensor(rng, xd, xs, full(xd)))];
    let wt = tensor(rng, wd, ws, full(wd));
    if !w_param {
        inputs.push(("w", wt.clone()));
    }
    let mut c = explicit(name, src, inputs);
    if w_param {
        c.weights.insert("w".into(), wt);
    }
    if let Some(m) = bias {
        c.weights.insert("bias".into(), tensor(rng, DType::I32, &[m], Dist::Range(-100_000, 100_000)));
    }
    c
}

pub fn quant() -> Vec<Case> {
    use DType::*;
    let mut rng = ChaCha8Rng::seed_from_u64(7100);
    let mut v = vec![];
    let pt = |s: f32, z: i32| format!("quant(scale = {s}, zero_point = {z})");
    // qmatmul: (a, b, b a param, bias, output attributes).
    type QM<'a> = ((DType, &'a [usize], String), (DType, &'a [usize], String), bool, bool, &'a str);
    let qms: Vec<QM> = vec![
        ((U8, &[7, 33], pt(0.05, 128)), (I8, &[33, 19], per_axis(1, 19, I8)), true, true, "dtype = u8, scale = 0.3, zero_point = 11"),
        ((I8, &[2, 5, 17], pt(0.02, -128)), (U8, &[17, 23], pt(0.1, 255)), false, false, ""),
        ((I8, &[1, 1], pt(0.5, 0)), (I8, &[1, 3], pt(0.25, 127)), true, true, ""),
        ((U8, &[13, 64], pt(0.01, 0)), (I8, &[64, 37], pt(0.02, 0)), true, true, "dtype = i8, scale = 2.5, zero_point = -3"),
        ((U8, &[67, 531], pt(0.01, 3)), (I8, &[531, 53], per_axis(1, 53, I8)), true, true, ""),
        ((I8, &[3, 531], pt(0.01, 100)), (U8, &[531, 16], per_axis(1, 16, U8)), false, false, "dtype = u8, scale = 50.0, zero_point = 128"),
        ((I8, &[6, 24], pt(0.03, -7)), (I8, &[24, 16], pt(0.04, 1)), true, false, ""),
        ((U8, &[3, 4, 41], pt(0.03, 77)), (U8, &[41, 29], per_axis(1, 29, U8)), false, true, "dtype = i8, scale = 4.0"),
    ];
    for (i, (a, b, b_param, bias, attrs)) in qms.into_iter().enumerate() {
        let n = b.1[1];
        let name = format!("qmatmul_q{i}_{}x{}x{n}", a.1[..a.1.len() - 1].iter().product::<usize>(), a.1[a.1.len() - 1]);
        v.push(qcase("qmatmul", &name, &mut rng, (a.0, a.1, &a.2), (b.0, b.1, &b.2), b_param, bias.then_some(n), attrs));
    }
    // qconv: (x, w, w a param, bias, attributes).
    type QC<'a> = ((DType, &'a [usize]), (DType, &'a [usize], String), bool, bool, &'a str);
    let qcs: Vec<QC> = vec![
        ((U8, &[2, 3, 5, 6, 7]), (I8, &[4, 3, 2, 3, 3], per_axis(0, 4, I8)), true, true, "stride = [1, 2, 1], pad = [1, 0, 1, 1, 1, 0]"),
        ((I8, &[1, 8, 15, 17]), (I8, &[16, 8, 3, 3], pt(0.02, -3)), true, true, "pad = [1, 1, 1, 1], dtype = u8, scale = 40.0, zero_point = 9"),
        ((U8, &[2, 4, 9, 9]), (U8, &[4, 1, 3, 3], per_axis(0, 4, U8)), true, false, "groups = 4, pad = [2, 1, 0, 2], dilation = [2, 1]"),
        ((I8, &[1, 64, 40]), (I8, &[24, 64, 9], pt(0.01, 0)), true, true, "dilation = [2], pad = [3, 5], dtype = i8, scale = 100.0"),
        ((U8, &[1, 5, 7, 7]), (I8, &[3, 5, 2, 2], pt(0.1, 4)), false, true, "stride = [2, 2]"),
        ((I8, &[3, 6, 11]), (U8, &[10, 3, 1], per_axis(0, 10, U8)), false, false, "groups = 2"),
    ];
    for (i, (x, w, w_param, bias, attrs)) in qcs.into_iter().enumerate() {
        let op = format!("qconv{}d", x.1.len() - 2);
        let name = format!("{op}_q{i}");
        let xq = pt(0.03, if x.0 == U8 { 200 } else { -100 });
        v.push(qcase(&op, &name, &mut rng, (x.0, x.1, &xq), (w.0, w.1, &w.2), w_param, bias.then_some(w.1[0]), attrs));
    }
    // Symmetric i8 weights (zero point 0), as `smelt quantize` and ONNX Runtime
    // write them: the quads path (`vpdpbusd`) on hosts with AVX512-VNNI, with
    // depths that are not multiples of 4, u8 and i8 activations (flipped to u8),
    // their zero point moved into the bias, padding, groups and requantization.
    let sym = |n: usize| format!("quant(axis = 0, scale = [{}])", (0..n).map(|i| format!("{}", 0.01 * (1 + i % 5) as f32)).collect::<Vec<_>>().join(", "));
    let sym1 = |n: usize| sym(n).replace("axis = 0", "axis = 1");
    v.push(qcase("qmatmul", "qmatmul_quads_5x45x21", &mut rng, (U8, &[5, 45], &pt(0.02, 131)), (I8, &[45, 21], &sym1(21)), true, Some(21), "dtype = u8, scale = 0.7, zero_point = 9"));
    v.push(qcase("qmatmul", "qmatmul_quads_6x30x40", &mut rng, (I8, &[2, 3, 30], &pt(0.02, -5)), (I8, &[30, 40], &pt(0.03, 0)), true, None, ""));
    v.push(qcase("qmatmul", "qmatmul_quads_33x259x67", &mut rng, (U8, &[33, 259], &pt(0.02, 0)), (I8, &[259, 67], &sym1(67)), true, Some(67), "dtype = i8, scale = 9.0"));
    let x1 = pt(0.03, 200);
    v.push(qcase("qconv2d", "qconv2d_quads_stride_pad", &mut rng, (U8, &[2, 5, 9, 11], &x1), (I8, &[7, 5, 3, 3], &sym(7)), true, Some(7), "stride = [2, 1], pad = [1, 2, 0, 1], dtype = u8, scale = 30.0, zero_point = 3"));
    let x2 = pt(0.03, -100);
    v.push(qcase("qconv2d", "qconv2d_quads_groups_dilation", &mut rng, (I8, &[1, 6, 8, 8], &x2), (I8, &[6, 3, 3, 3], &sym(6)), true, None, "groups = 2, dilation = [2, 1], pad = [2, 2, 1, 1]"));
    v.push(qcase("qconv1d", "qconv1d_quads_k5", &mut rng, (U8, &[3, 7, 50], &x1), (I8, &[33, 7, 5], &sym(33)), true, Some(33), "pad = [2, 2]"));
    // Weights within ±64 (`smelt quantize --reduce-range`): quads on AVX2 hosts
    // without VNNI too (`pmaddubsw`, whose i16 pair sums cannot saturate then),
    // with the extremes ±64 and 255 present.
    let mut narrow = |c: Case, shape: &[usize], rng: &mut ChaCha8Rng| {
        let mut w = tensor(rng, I8, shape, Dist::Range(-64, 64)).to_f32();
        w[0] = -64.0;
        w[1] = 64.0;
        let mut c = c;
        c.weights.insert("w".into(), Tensor::new(shape.to_vec(), Data::I8(w.iter().map(|&x| x as i8).collect())).unwrap());
        v.push(c);
    };
    let c = qcase("qmatmul", "qmatmul_narrow_9x70x35", &mut rng, (U8, &[9, 70], &pt(0.02, 255)), (I8, &[70, 35], &sym1(35)), true, Some(35), "dtype = u8, scale = 0.5, zero_point = 7");
    narrow(c, &[70, 35], &mut rng);
    let c = qcase("qmatmul", "qmatmul_narrow_i8_2x3x33x16", &mut rng, (I8, &[2, 3, 33], &pt(0.02, -128)), (I8, &[33, 16], &pt(0.03, 0)), true, None, "");
    narrow(c, &[33, 16], &mut rng);
    let c = qcase("qconv2d", "qconv2d_narrow_pad", &mut rng, (U8, &[1, 6, 7, 9], &x1), (I8, &[5, 6, 3, 3], &sym(5)), true, Some(5), "pad = [1, 1, 1, 1]");
    narrow(c, &[5, 6, 3, 3], &mut rng);
    // The AMX tile (32×32, depth blocks of 64) on hosts with AMX-INT8: whole
    // tiles stored in place and edge tiles through the scratch tile, several
    // depth blocks with a padded last one, column and row biases, groups whose
    // channels are not a multiple of 32, both signednesses (qmatmul: u8 A ×
    // s8 B; qconv: s8 weights × u8 im2col), u8 activations read in place
    // (`direct`: rows a multiple of 32, depth of 64).
    v.push(qcase("qmatmul", "qmatmul_amx_70x200x97", &mut rng, (U8, &[70, 200], &pt(0.02, 3)), (I8, &[200, 97], &sym1(97)), true, Some(97), "dtype = u8, scale = 0.9, zero_point = 5"));
    // u8 activations computed into the arena (aligned: read in place by the
    // tile); a graph input is packed.
    {
        let src = format!(
            "graph qmatmul_amx_direct_2x32x192x40(x: f32[2, 32, 192]) -> (y) {{\n  w = param i8[192, 40] {}\n  bias = param i32[40]\n  a = quantize(x) {{dtype = u8, scale = 0.02, zero_point = 120}}\n  y = qmatmul(a, w, bias)\n}}\n",
            sym1(40)
        );
        let mut c = explicit("qmatmul_amx_direct_2x32x192x40", src, vec![("x", tensor(&mut rng, F32, &[2, 32, 192], Dist::Any))]);
        c.weights.insert("w".into(), tensor(&mut rng, I8, &[192, 40], full(I8)));
        c.weights.insert("bias".into(), tensor(&mut rng, I32, &[40], Dist::Range(-100_000, 100_000)));
        v.push(c);
    }
    v.push(qcase("qmatmul", "qmatmul_amx_i8_64x128x64", &mut rng, (I8, &[2, 32, 128], &pt(0.02, -9)), (I8, &[128, 64], &pt(0.03, 0)), true, None, ""));
    v.push(qcase("qconv2d", "qconv2d_amx_64x288", &mut rng, (U8, &[1, 32, 14, 14], &x1), (I8, &[64, 32, 3, 3], &sym(64)), true, Some(64), "pad = [1, 1, 1, 1], dtype = u8, scale = 60.0, zero_point = 2"));
    // A 1×1 conv whose 32-position panels cross output rows: packed as rows
    // (each panel one strided line of the input) since no tap needs a check.
    v.push(qcase("qconv2d", "qconv2d_amx_1x1_rows", &mut rng, (U8, &[1, 64, 9, 9], &x1), (I8, &[40, 64, 1, 1], &sym(40)), true, Some(40), ""));
    v.push(qcase("qconv2d", "qconv2d_amx_groups", &mut rng, (I8, &[2, 16, 9, 9], &x2), (I8, &[48, 8, 3, 3], &sym(48)), true, Some(48), "groups = 2, stride = [2, 2]"));
    v
}
