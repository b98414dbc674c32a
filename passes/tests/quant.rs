//! `fold-qdq` against the interpreter: layers of awkward shapes (1-, 2- and 3-d
//! convs with stride, padding, dilation and groups; batched matmuls; gemms with
//! `trans_b`, α, β and biases of each shape) wrapped in quantize/dequantize pairs
//! by `quant::insert`, evaluated as float QDQ (`-O0`) and folded into integer
//! kernels (`-O1`). The fold is exact up to f32 rounding; where it fuses the
//! requantization (bias rounded to i32, as the QDQ convention) an integer output
//! may move by one step, on a few elements at most.

mod common;

use common::fill_weights;
use smelt_interp::init::random_inputs;
use smelt_ir::{Bindings, DType, Graph, Op, Tensor, Value, text};
use smelt_passes::quant::calib::{self, Observer};
use smelt_passes::quant::insert::{self, ActParams, WeightScheme};
use smelt_passes::{OptLevel, PassManager};
use std::collections::{BTreeMap, HashMap};

fn graph(src: &str, seed: u64) -> Graph {
    let mut g = text::parse(src).unwrap_or_else(|e| panic!("{e:?}"));
    fill_weights(&mut g, seed);
    g
}

fn inputs(g: &Graph, seed: u64) -> BTreeMap<String, Tensor> {
    let mut b = Bindings::new();
    for &i in g.inputs() {
        for s in g.node(i).types[0].shape.symbols() {
            b.entry(s.to_string()).or_insert(3);
        }
    }
    random_inputs(g, seed, &b).unwrap()
}

/// Calibrates every layer's activation on `x` (min/max) and wraps every layer.
fn quantized(g: &Graph, x: &BTreeMap<String, Tensor>, act: DType, per_channel: bool) -> Graph {
    let layers = insert::layers(g);
    assert!(!layers.is_empty());
    let mut inst = g.clone();
    let mut outs = inst.outputs().to_vec();
    outs.extend(layers.iter().map(|l| l.act).filter(|v| !g.inputs().contains(&v.node)));
    inst.set_outputs(outs);
    let vals = smelt_interp::run(&inst, x).unwrap();
    let mut params: HashMap<Value, ActParams> = HashMap::new();
    for l in &layers {
        let name = g.value_name(l.act);
        let t = vals.get(name).or_else(|| x.get(name)).unwrap();
        let mut o = Observer::default();
        o.observe_range(&t.to_f32());
        let (lo, hi) = o.range();
        let (scale, zero_point) = calib::params(lo, hi, act, false);
        params.insert(l.act, ActParams { dtype: act, scale, zero_point });
    }
    let mut q = g.clone();
    insert::insert_qdq(&mut q, &layers, &params, WeightScheme { per_channel, reduce_range: false });
    PassManager::pipeline(OptLevel::O0).run(&mut q).unwrap();
    q
}

fn int_layers(g: &Graph) -> (usize, usize) {
    let count = |f: fn(&Op) -> bool| g.node_ids().filter(|&i| f(&g.node(i).op)).count();
    (count(|o| matches!(o, Op::QConv(..) | Op::QMatMul(_))), count(|o| matches!(o, Op::Conv(_) | Op::MatMul | Op::Gemm(_))))
}

/// Float outputs: relative L2 error under `tol`. Integers: at most one step
/// apart, on at most 1% of the elements.
fn compare_tol(what: &str, want: &Tensor, got: &Tensor, tol: f64) {
    assert_eq!(want.shape(), got.shape(), "{what}");
    if want.dtype().is_float() {
        let (a, b) = (want.to_f32(), got.to_f32());
        let num: f64 = a.iter().zip(&b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().max(1e-30);
        assert!((num / den).sqrt() < tol, "{what}: relative error {}", (num / den).sqrt());
    } else {
        let (a, b) = (want.to_i64(), got.to_i64());
        let diff = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1), "{what}: an integer moved by more than one step");
        assert!(diff * 100 <= a.len().max(100), "{what}: {diff} of {} integers differ", a.len());
    }
}

/// Exact up to f32 rounding.
fn compare(what: &str, want: &Tensor, got: &Tensor) {
    compare_tol(what, want, got, 2e-5)
}

/// Whether the fold fused a requantization (downstream values may then move by
/// an activation step where a rounding tie flipped).
fn fused(g: &Graph) -> bool {
    g.node_ids().any(|i| matches!(&g.node(i).op, Op::QConv(_, r) | Op::QMatMul(r) if r.dtype != DType::I32))
}

const CASES: &[(&str, &str)] = &[
    (
        "conv2d stride 2, pad, groups 2, relu chain",
        "graph g(x: f32[N, 4, 9, 7]) -> (y) {
  w = param f32[6, 2, 3, 2]
  b = param f32[6]
  w2 = param f32[5, 6, 1, 1]
  c = conv2d(x, w, b) {stride = [2, 1], pad = [1, 0, 2, 1], groups = 2}
  r = relu(c)
  y = conv2d(r, w2)
}",
    ),
    (
        "conv1d dilation, conv3d, no bias",
        "graph g(x: f32[N, 3, 11], v: f32[N, 2, 3, 5, 4]) -> (y, z) {
  w = param f32[5, 3, 3]
  u = param f32[3, 2, 2, 3, 2]
  y = conv1d(x, w) {dilation = [2], pad = [2, 1]}
  z = conv3d(v, u) {pad = [1, 0, 1, 1, 0, 1]}
}",
    ),
    (
        "batched matmul, gemm trans_b with alpha, beta and a [M, N] bias, gemm with a [N] bias",
        "graph g(x: f32[2, 3, 13], h: f32[5, 9]) -> (y, z, t) {
  w = param f32[13, 7]
  u = param f32[4, 9]
  c = param f32[5, 4]
  k = param f32[9, 6]
  kb = param f32[6]
  y = matmul(x, w)
  z = gemm(h, u, c) {trans_b = true, alpha = 0.5, beta = 2.0}
  r = relu(z)
  t = gemm(h, k, kb)
}",
    ),
];

#[test]
fn folded_layers_compute_what_their_qdq_form_computes() {
    for (seed, (what, src)) in CASES.iter().enumerate() {
        let g = graph(src, seed as u64);
        let x = inputs(&g, seed as u64 + 10);
        for (act, per_channel) in [(DType::U8, true), (DType::I8, false)] {
            let q = quantized(&g, &x, act, per_channel);
            let mut f = q.clone();
            PassManager::pipeline(OptLevel::O1).run(&mut f).unwrap();
            let (ints, floats) = int_layers(&f);
            assert_eq!(floats, 0, "{what}: float layers remain:\n{}", text::print(&f));
            assert!(ints >= 2, "{what}");
            let (want, got) = (smelt_interp::run(&q, &x).unwrap(), smelt_interp::run(&f, &x).unwrap());
            let tol = if fused(&f) { 5e-3 } else { 2e-5 };
            for (k, w) in &want {
                compare_tol(&format!("{what} ({act}, per channel {per_channel}): {k}"), w, &got[k], tol);
            }
        }
    }
}

#[test]
fn requantization_is_fused_when_a_quantize_follows() {
    // conv → relu → conv: the first conv's accumulators requantize straight to
    // the second's u8 input (the ReLU is the clamp at zero point 0).
    let g = graph(CASES[0].1, 7);
    let x = inputs(&g, 8);
    let q = quantized(&g, &x, DType::U8, true);
    let mut f = q.clone();
    PassManager::pipeline(OptLevel::O1).run(&mut f).unwrap();
    let requant = f.node_ids().filter(|&i| matches!(&f.node(i).op, Op::QConv(_, r) if r.dtype == DType::U8)).count();
    let relu = f.node_ids().filter(|&i| f.node(i).op.name() == "relu").count();
    assert_eq!((requant, relu), (1, 0), "{}", text::print(&f));
    // The u8 activation itself, before and after the fold.
    let name = f.node_ids().find(|&i| matches!(&f.node(i).op, Op::QConv(_, r) if r.dtype == DType::U8)).map(|i| f.node(i).name().to_string()).unwrap();
    let expose = |g: &Graph| {
        let mut g = g.clone();
        let v = g.find(&name).unwrap();
        let mut o = g.outputs().to_vec();
        o.push(v);
        g.set_outputs(o);
        g
    };
    let (want, got) = (smelt_interp::run(&expose(&q), &x).unwrap(), smelt_interp::run(&expose(&f), &x).unwrap());
    compare("requantized activation", &want[&name], &got[&name]);
    compare_tol("output", &want["y"], &got["y"], 5e-3);
}

#[test]
fn onnx_style_qdq_pairs_cancel_and_move_through_shape_ops() {
    let src = "graph g(x: f32[2, 8]) -> (y) {
  w = param f32[12, 5]
  q = quantize(x) {dtype = u8, scale = 0.05, zero_point = 100}
  d = dequantize(q)
  r = reshape(d) {shape = [4, 4]}
  q2 = quantize(r) {dtype = u8, scale = 0.05, zero_point = 100}
  d2 = dequantize(q2)
  t = transpose(d2) {perm = [1, 0]}
  q3 = quantize(t) {dtype = u8, scale = 0.05, zero_point = 100}
  d3 = dequantize(q3)
  s = slice(d3) {starts = [0], ends = [3], axes = [0]}
  q4 = quantize(s) {dtype = u8, scale = 0.05, zero_point = 100}
  d4 = dequantize(q4)
  f = reshape(d4) {shape = [1, 12]}
  y = matmul(f, w)
}";
    let g = graph(src, 3);
    let x = inputs(&g, 4);
    let mut f = g.clone();
    let rec = PassManager::pipeline(OptLevel::O1).run(&mut f).unwrap();
    let notes: Vec<String> = rec.iter().flat_map(|r| r.report.notes.clone()).collect();
    let count = |op: &str| f.node_ids().filter(|&i| f.node(i).op.name() == op).count();
    // One quantize left (of x); the reshape, transpose and slice move the u8 data.
    assert_eq!((count("quantize"), count("dequantize")), (1, 1), "{}\n{notes:?}", text::print(&f));
    let want = smelt_interp::run(&g, &x).unwrap();
    let got = smelt_interp::run(&f, &x).unwrap();
    compare("y", &want["y"], &got["y"]);
}

/// ONNX Runtime's dynamic quantization of `x @ w` (`w` [K, N]) written out:
/// `DynamicQuantizeLinear` (u8 asymmetric, or i8 symmetric over ±127), weights
/// i8 symmetric per column, `MatMulInteger`, then the float rescale.
fn dynamic_reference(x: &[f32], w: &[f32], k: usize, n: usize, act: DType) -> Vec<f32> {
    let lo = x.iter().copied().fold(0f32, f32::min);
    let hi = x.iter().copied().fold(0f32, f32::max);
    let (s, zp, qmin, qmax) = match act {
        DType::U8 => {
            let s = (hi - lo).max(1e-30) / 255.0;
            (s, (-lo / s).round_ties_even().clamp(0.0, 255.0), 0.0, 255.0)
        }
        _ => (hi.max(-lo).max(1e-30) / 127.0, 0.0, -128.0, 127.0),
    };
    let xq: Vec<f32> = x.iter().map(|&v| ((v / s).round_ties_even() + zp).clamp(qmin, qmax) - zp).collect();
    let sw: Vec<f32> = (0..n).map(|j| (0..k).map(|i| w[i * n + j].abs()).fold(0f32, f32::max) / 127.0).collect();
    let wq: Vec<f32> = (0..k * n).map(|i| (w[i] / sw[i % n]).round_ties_even()).collect();
    let m = x.len() / k;
    (0..m * n)
        .map(|o| {
            let (r, j) = (o / n, o % n);
            let acc: f32 = (0..k).map(|i| xq[r * k + i] * wq[i * n + j]).sum();
            acc * s * sw[j]
        })
        .collect()
}

#[test]
fn dynamic_quantization_computes_what_onnx_runtime_computes() {
    use smelt_passes::quant::dynamic::{self, DynamicScheme};
    let src = "graph g(x: f32[2, 3, 37], h: f32[5, 9]) -> (y, y2, z) {
  w = param f32[37, 19]
  w2 = param f32[37, 5]
  u = param f32[4, 9]
  c = param f32[5, 4]
  y = matmul(x, w)
  y2 = matmul(x, w2)
  z = gemm(h, u, c) {trans_b = true, alpha = 0.5, beta = 2.0}
}";
    let g = graph(src, 7);
    let x = inputs(&g, 8);
    let want = smelt_interp::run(&g, &x).unwrap();
    for act in [DType::U8, DType::I8] {
        let layers = insert::layers(&g);
        assert_eq!(layers.len(), 3);
        assert!(layers.iter().all(|l| dynamic::supports(&g, l)));
        let mut q = g.clone();
        let scheme = DynamicScheme { activations: act, symmetric: act == DType::I8, per_channel: true, reduce_range: false };
        assert_eq!(dynamic::insert_dynamic(&mut q, &layers, scheme).len(), 3);
        PassManager::pipeline(OptLevel::O1).run(&mut q).unwrap();
        let (ints, floats) = int_layers(&q);
        assert_eq!((ints, floats), (3, 0), "{act}:\n{}", text::print(&q));
        // One run-time range per activation: x's is shared by y and y2.
        let mins = q.node_ids().filter(|&i| matches!(&q.node(i).op, Op::Reduce { kind: smelt_ir::ops::ReduceKind::Min, .. })).count();
        assert_eq!(mins, 2, "{act}");
        let got = smelt_interp::run(&q, &x).unwrap();
        for (name, wname, k, n) in [("y", "w", 37, 19), ("y2", "w2", 37, 5)] {
            let r = dynamic_reference(&x["x"].to_f32(), &g.weight(wname).unwrap().to_f32(), k, n, act);
            let r = Tensor::new(got[name].shape().to_vec(), smelt_ir::Data::F32(r)).unwrap();
            // x·(1/s) + zp against ONNX's round(x/s) + zp: a tie may round apart.
            compare_tol(&format!("{act} {name} against the reference"), &r, &got[name], 1e-4);
        }
        // z = 0.5·h·uᵀ + 2c, with uᵀ quantized per column.
        let u = g.weight("u").unwrap().to_f32();
        let ut: Vec<f32> = (0..9 * 4).map(|i| u[(i % 4) * 9 + i / 4]).collect();
        let hz = dynamic_reference(&x["h"].to_f32(), &ut, 9, 4, act);
        let c = g.weight("c").unwrap().to_f32();
        let z: Vec<f32> = hz.iter().zip(&c).map(|(a, b)| 0.5 * a + 2.0 * b).collect();
        compare_tol(&format!("{act} z against the reference"), &Tensor::new(vec![5, 4], smelt_ir::Data::F32(z)).unwrap(), &got["z"], 1e-4);
        // And near the float model.
        for (k, w) in &want {
            compare_tol(&format!("{act} {k} against f32"), w, &got[k], 0.03);
        }
    }
}
