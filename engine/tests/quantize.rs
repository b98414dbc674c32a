//! Post-training quantization, measured: the trained digits classifiers
//! (tests/fixtures/digits, made by scripts/models/digits.py) quantized by
//! `smelt_engine::quantize` keep their test accuracy; the quantized model runs on
//! every backend as on the interpreter; ONNX Runtime's own QDQ model of the same
//! CNN is folded into integer kernels and agrees with ONNX Runtime; dynamic
//! quantization (run-time activation ranges) keeps the accuracy of the matmul
//! layers it quantizes, on every backend; bad requests fail with clear errors.

use smelt_engine::quantize::{Mode, QuantizeOptions, split_samples};
use smelt_engine::{BackendKind, Graph, Options, Tensors, compile, load};
use smelt_ir::{Op, Tensor, weights};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/digits").join(name)
}

fn model(name: &str) -> Graph {
    load(fixture(name).as_path().into()).expect("fixture loads")
}

fn calibration(g: &Graph) -> Vec<Tensors> {
    let t = weights::read_safetensors(&fixture("calibration.safetensors")).unwrap();
    split_samples(g, t).unwrap()
}

fn test_set() -> (Tensors, Vec<i64>) {
    let mut t = weights::read_safetensors(&fixture("test.safetensors")).unwrap();
    let labels = t.remove("labels").unwrap().to_i64();
    (t, labels)
}

fn cranelift() -> Options {
    Options::backend(BackendKind::Cranelift)
}

fn logits(g: &Graph, o: &Options, x: &Tensors) -> Tensor {
    let m = compile(g.clone(), o).unwrap();
    m.run(x).unwrap().remove("logits").unwrap()
}

fn accuracy(l: &Tensor, labels: &[i64]) -> f64 {
    let v = l.to_f32();
    let hits = v
        .chunks(10)
        .zip(labels)
        .filter(|(row, y)| {
            let am = row.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0;
            am as i64 == **y
        })
        .count();
    hits as f64 / labels.len() as f64
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_f32(), b.to_f32());
    let num: f64 = a.iter().zip(&b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// Float convs, matmuls and gemms left in the optimized graph.
fn float_layers(g: &Graph) -> Vec<String> {
    g.node_ids()
        .filter(|&i| matches!(g.node(i).op, Op::Conv(_) | Op::MatMul | Op::Gemm(_) | Op::FusedConv { .. } | Op::FusedMatMul { .. }))
        .map(|i| format!("{} {}", g.node(i).op.name(), g.node(i).name()))
        .collect()
}

#[test]
fn trained_digits_models_keep_their_accuracy_in_int8() {
    let (x, labels) = test_set();
    for (name, int8_layers) in [("digits_cnn.onnx", 4), ("digits_lstm.onnx", 1)] {
        let g = model(name);
        let q = smelt_engine::quantize(&g, &calibration(&g), &QuantizeOptions::new(cranelift()), &mut |_, _, _| {}).unwrap();
        let r = &q.report;
        assert_eq!(r.layers.iter().filter(|l| l.precision == "int8").count(), int8_layers, "{name}: {:?}", r.layers);
        let (lf, lq) = (logits(&g, &cranelift(), &x), logits(&q.graph, &cranelift(), &x));
        let (af, aq) = (accuracy(&lf, &labels), accuracy(&lq, &labels));
        let e = rel_err(&lf, &lq);
        eprintln!(
            "{name}: test accuracy f32 {:.2}% int8 {:.2}%; test-set output error {:.3}% ({:.1} dB); report: {:.3}% on {} held-out inputs",
            af * 100.0,
            aq * 100.0,
            e * 100.0,
            -20.0 * e.log10(),
            r.error * 100.0,
            r.held_out_inputs
        );
        assert!(af > 0.95, "{name}: the float model is trained ({af})");
        assert!((af - aq).abs() <= 0.005, "{name}: int8 accuracy {aq} against f32 {af}");
        assert!(-20.0 * e.log10() >= 30.0, "{name}: SQNR {} dB", -20.0 * e.log10());
        // The quantized layers run as integer kernels.
        let compiled = compile(q.graph.clone(), &cranelift()).unwrap();
        let left = float_layers(compiled.graph());
        if name == "digits_cnn.onnx" {
            assert!(left.is_empty(), "float layers remain: {left:?}");
        }
    }
}

#[test]
fn a_budget_keeps_the_most_sensitive_layers_in_float() {
    let g = model("digits_cnn.onnx");
    let samples = calibration(&g);
    let o = QuantizeOptions::new(cranelift());
    let full = smelt_engine::quantize(&g, &samples, &o, &mut |_, _, _| {}).unwrap();
    // A budget under the all-int8 error forces layers back to f32.
    let budget = full.report.error * 0.5;
    let o = QuantizeOptions { budget: Some(budget), ..o };
    let q = smelt_engine::quantize(&g, &samples, &o, &mut |_, _, _| {}).unwrap();
    let r = &q.report;
    let f32_layers: Vec<_> = r.layers.iter().filter(|l| l.precision == "f32").collect();
    assert!(!f32_layers.is_empty() && f32_layers.len() < r.layers.len(), "{:?}", r.layers);
    assert!(r.error <= budget, "measured {} against budget {budget}", r.error);
    assert!(r.layers.iter().all(|l| l.sensitivity.is_some()));
    // The layers kept in float are the most sensitive ones.
    let min_kept = f32_layers.iter().map(|l| l.sensitivity.unwrap()).fold(f64::INFINITY, f64::min);
    let max_int8 = r.layers.iter().filter(|l| l.precision == "int8").map(|l| l.sensitivity.unwrap()).fold(0.0, f64::max);
    assert!(min_kept >= max_int8, "{:?}", r.layers);
    // On the test set (never seen), the error stays near the budget.
    let (x, _) = test_set();
    let e = rel_err(&logits(&g, &cranelift(), &x), &logits(&q.graph, &cranelift(), &x));
    eprintln!("budget {:.3}%: {} of {} layers f32, held-out {:.3}%, test set {:.3}% (all int8: {:.3}%)", budget * 100.0, f32_layers.len(), r.layers.len(), r.error * 100.0, e * 100.0, full.report.error * 100.0);
    assert!(e <= 2.0 * budget, "test-set error {e} against budget {budget}");
}

#[test]
fn every_calibration_method_and_scheme_quantizes_the_cnn() {
    use smelt_passes::quant::calib::Method;
    let g = model("digits_cnn.onnx");
    let samples = calibration(&g);
    let (x, labels) = test_set();
    let af = accuracy(&logits(&g, &cranelift(), &x), &labels);
    for (method, act, sym, per_channel) in [
        (Method::Percentile(99.99), smelt_ir::DType::U8, false, true),
        (Method::Entropy, smelt_ir::DType::U8, false, true),
        (Method::Mse, smelt_ir::DType::I8, false, true),
        (Method::MinMax, smelt_ir::DType::I8, true, false),
    ] {
        let o = QuantizeOptions { method, activations: act, symmetric_activations: sym, per_channel, ..QuantizeOptions::new(cranelift()) };
        let q = smelt_engine::quantize(&g, &samples, &o, &mut |_, _, _| {}).unwrap();
        let aq = accuracy(&logits(&q.graph, &cranelift(), &x), &labels);
        eprintln!("{method} {act} symmetric={sym} per_channel={per_channel}: accuracy {:.2}% (f32 {:.2}%), held-out error {:.3}%", aq * 100.0, af * 100.0, q.report.error * 100.0);
        assert!(aq >= af - 0.01, "{method}: {aq} against {af}");
        // Entropy (KL) calibration clips hardest: its error is large on this
        // model although its accuracy holds.
        if method != Method::Entropy {
            assert!(q.report.sqnr_db > 25.0, "{method}: {} dB", q.report.sqnr_db);
        }
    }
}

/// The backends of this build (WGSL when an adapter opens).
fn backends() -> Vec<Options> {
    let mut v = vec![Options::backend(BackendKind::Cranelift), Options::backend(BackendKind::Llvm), Options { threads: 2, ..Options::backend(BackendKind::Llvm) }];
    if cfg!(feature = "wgsl") {
        v.push(Options::backend(BackendKind::Wgsl));
    }
    v.into_iter().filter(|o| o.backend.built()).collect()
}

#[test]
fn quantized_models_run_on_every_backend_as_on_the_interpreter() {
    let (x, _) = test_set();
    // 37 images: an awkward batch.
    let xs: Tensors = x.iter().map(|(k, t)| {
        let inner: usize = t.shape()[1..].iter().product();
        let mut shape = t.shape().to_vec();
        shape[0] = 37;
        (k.clone(), Tensor::new(shape, t.data().take(&(0..37 * inner).collect::<Vec<_>>())).unwrap())
    }).collect();
    let cnn = model("digits_cnn.onnx");
    let qdq = model("digits_cnn_qdq.onnx");
    let ours = smelt_engine::quantize(&cnn, &calibration(&cnn), &QuantizeOptions::new(cranelift()), &mut |_, _, _| {}).unwrap().graph;
    for (name, g) in [("smelt int8", ours), ("onnx runtime qdq", qdq)] {
        let want = logits(&g, &Options::backend(BackendKind::Interp), &xs);
        for o in backends() {
            let got = logits(&g, &o, &xs);
            let e = rel_err(&want, &got);
            eprintln!("{name} on {}: {e:.2e}", o.backend);
            assert!(e < 1e-5, "{name} on {}: relative error {e}", o.backend);
        }
    }
}

#[test]
fn onnx_runtime_qdq_models_fold_into_integer_kernels_and_agree_with_it() {
    let g = model("digits_cnn_qdq.onnx");
    let m = compile(g.clone(), &cranelift()).unwrap();
    let left = float_layers(m.graph());
    assert!(left.is_empty(), "float layers remain: {left:?}");
    let (x, labels) = test_set();
    let ours = m.run(&x).unwrap().remove("logits").unwrap();
    let ort = weights::read_safetensors(&fixture("ort_qdq.safetensors")).unwrap().remove("logits").unwrap();
    let e = rel_err(&ort, &ours);
    let (a_ours, a_ort) = (accuracy(&ours, &labels), accuracy(&ort, &labels));
    eprintln!("ORT QDQ digits CNN: smelt vs ONNX Runtime output error {:.3}%, accuracy {:.2}% vs {:.2}%", e * 100.0, a_ours * 100.0, a_ort * 100.0);
    // Both round; requantization in f64 (ours) or f32 (ORT) may differ by a step.
    assert!(e < 0.01, "{e}");
    assert!((a_ours - a_ort).abs() <= 0.003);
}

#[test]
fn bad_requests_are_clear_errors() {
    let g = model("digits_cnn.onnx");
    let samples = calibration(&g);
    let o = QuantizeOptions::new(cranelift());
    let msg = |r: smelt_engine::Result<smelt_engine::Quantized>| r.unwrap_err().to_string();
    assert!(msg(smelt_engine::quantize(&g, &[], &o, &mut |_, _, _| {})).contains("no calibration inputs were given"));
    let mut wrong = samples[0].clone();
    let t = wrong.remove("x").unwrap();
    wrong.insert("image".into(), t);
    let m = msg(smelt_engine::quantize(&g, &[wrong], &o, &mut |_, _, _| {}));
    assert!(m.contains("calibration input 1") && m.contains('x'), "{m}");
    let bad = QuantizeOptions { exclude: vec!["nope".into()], ..o.clone() };
    let m = msg(smelt_engine::quantize(&g, &samples, &bad, &mut |_, _, _| {}));
    assert!(m.contains("--exclude `nope` names no quantizable layer"), "{m}");
    let impossible = QuantizeOptions { budget: Some(1e-9), ..o.clone() };
    let m = msg(smelt_engine::quantize(&g, &samples, &impossible, &mut |_, _, _| {}));
    assert!(m.contains("cannot be met"), "{m}");
    let plain = smelt_ir::text::parse("graph g(x: f32[2, 3]) -> (y) {\n  y = relu(x)\n}\n").unwrap();
    let x = Tensor::f32(vec![2, 3], vec![1.0; 6]).unwrap();
    let m = msg(smelt_engine::quantize(&plain, &[Tensors::from([("x".into(), x)])], &o, &mut |_, _, _| {}));
    assert!(m.contains("nothing to quantize"), "{m}");
}

#[test]
fn dynamic_quantization_keeps_the_accuracy_on_every_backend() {
    let (x, labels) = test_set();
    let dynamic = QuantizeOptions { mode: Mode::Dynamic, ..QuantizeOptions::new(cranelift()) };
    // The CNN's convs stay f32 in dynamic mode; its two linear layers and the
    // LSTM classifier's linear layer are quantized.
    for (name, int8_layers) in [("digits_cnn.onnx", 2), ("digits_lstm.onnx", 1)] {
        let g = model(name);
        let q = smelt_engine::quantize(&g, &calibration(&g), &dynamic, &mut |_, _, _| {}).unwrap();
        let r = &q.report;
        let quantized: Vec<_> = r.layers.iter().filter(|l| l.precision == "int8-dynamic").collect();
        assert_eq!(quantized.len(), int8_layers, "{name}: {:?}", r.layers);
        assert!(quantized.iter().all(|l| l.scale.is_none() && l.op != "conv2d"), "{name}: {:?}", r.layers);
        let lf = logits(&g, &cranelift(), &x);
        let lq = logits(&q.graph, &cranelift(), &x);
        let (af, aq) = (accuracy(&lf, &labels), accuracy(&lq, &labels));
        let e = rel_err(&lf, &lq);
        eprintln!("{name} dynamic: test accuracy f32 {:.2}% int8 {:.2}%, output error {:.3}% ({:.1} dB)", af * 100.0, aq * 100.0, e * 100.0, -20.0 * e.log10());
        assert!((af - aq).abs() <= 0.005, "{name}: {aq} against {af}");
        assert!(-20.0 * e.log10() >= 30.0, "{name}: {e}");
        // The quantized matmuls are integer kernels after compilation.
        let m = compile(q.graph.clone(), &cranelift()).unwrap();
        let ints = m.graph().node_ids().filter(|&i| matches!(m.graph().node(i).op, Op::QMatMul(_))).count();
        assert_eq!(ints, int8_layers, "{name}");
        // Every backend computes what the interpreter computes, at an awkward batch.
        let xs: Tensors = x
            .iter()
            .map(|(k, t)| {
                let inner: usize = t.shape()[1..].iter().product();
                let mut shape = t.shape().to_vec();
                shape[0] = 37;
                (k.clone(), Tensor::new(shape, t.data().take(&(0..37 * inner).collect::<Vec<_>>())).unwrap())
            })
            .collect();
        let want = logits(&q.graph, &Options::backend(BackendKind::Interp), &xs);
        for o in backends() {
            let got = logits(&q.graph, &o, &xs);
            let e = rel_err(&want, &got);
            eprintln!("{name} dynamic on {}: {e:.2e}", o.backend);
            assert!(e < 1e-5, "{name} dynamic on {}: relative error {e}", o.backend);
        }
    }
    // Nothing to quantize dynamically in a conv-only model.
    let mut conv = smelt_ir::text::parse("graph g(x: f32[1, 2, 5, 5]) -> (y) {\n  w = param f32[3, 2, 1, 1]\n  y = conv2d(x, w)\n}\n").unwrap();
    conv.set_weight("w".to_string(), Tensor::f32(vec![3, 2, 1, 1], vec![0.5; 6]).unwrap());
    let x = Tensor::f32(vec![1, 2, 5, 5], vec![1.0; 50]).unwrap();
    let e = smelt_engine::quantize(&conv, &[Tensors::from([("x".into(), x)])], &dynamic, &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(e.contains("nothing to quantize (dynamic mode)"), "{e}");
}

/// tests/fixtures/dynamic, made by scripts/models/bert_dynamic.py.
fn bert(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dynamic").join(name)
}

/// The BERT fixture imported at the inputs' shapes (its Range and Slice need them).
fn load_bert(name: &str, io: &Tensors) -> Graph {
    let input_shapes = io.iter().map(|(k, t)| (k.clone(), t.shape().to_vec())).collect();
    load(smelt_engine::Source::PinnedOnnx { path: bert(name), input_shapes, dims: Default::default(), values: Default::default() })
        .unwrap()
}

fn hidden(g: &Graph, o: &Options, x: &Tensors) -> Tensor {
    let m = compile(g.clone(), o).unwrap();
    m.run(x).unwrap().remove("last_hidden_state").unwrap()
}

#[test]
fn onnx_runtime_dynamic_models_import_as_integer_kernels_and_agree_with_it() {
    let mut io = weights::read_safetensors(&bert("io.safetensors")).unwrap();
    let (want8, want32) = (io.remove("expected.int8").unwrap(), io.remove("expected.fp32").unwrap());
    let g = load_bert("bert_tiny_dynamic.onnx", &io);
    // DynamicQuantizeLinear → MatMulInteger (A's zero point from the data) →
    // rescale: six weight matmuls per layer, all integer kernels.
    let m = compile(g.clone(), &cranelift()).unwrap();
    let ints = m.graph().node_ids().filter(|&i| matches!(m.graph().node(i).op, Op::QMatMul(_))).count();
    assert_eq!(ints, 12);
    let mut all = backends();
    all.push(Options::backend(BackendKind::Interp));
    for o in all {
        let got = hidden(&g, &o, &io);
        let e = rel_err(&want8, &got);
        eprintln!("ORT dynamic BERT on {}: {e:.2e} from ONNX Runtime's int8 (its int8 is {:.2e} from its fp32)", o.backend, rel_err(&want32, &want8));
        // ONNX Runtime rounds x·(1/s) where the reference divides: a few
        // activations land one step apart, far under the quantization error.
        assert!(e < 1e-3, "{}: {e}", o.backend);
    }
    // smelt's own dynamic quantization of the float model errs like ONNX Runtime's.
    let f = load_bert("bert_tiny.onnx", &io);
    let dynamic = QuantizeOptions { mode: Mode::Dynamic, ..QuantizeOptions::new(cranelift()) };
    let q = smelt_engine::quantize(&f, std::slice::from_ref(&io), &dynamic, &mut |_, _, _| {}).unwrap();
    assert_eq!(q.report.layers.iter().filter(|l| l.precision == "int8-dynamic").count(), 12, "{:?}", q.report.layers);
    let ours = hidden(&q.graph, &cranelift(), &io);
    let (e_ours, e_ort) = (rel_err(&want32, &ours), rel_err(&want32, &want8));
    eprintln!("BERT dynamic int8 against fp32: smelt {e_ours:.2e}, ONNX Runtime {e_ort:.2e}");
    assert!(e_ours < 2.0 * e_ort, "{e_ours} against ONNX Runtime's {e_ort}");
}

#[test]
fn onnx_runtime_dynamic_lstm_imports_as_an_lstm_over_its_dequantized_weights() {
    // scripts/models/lstm_dynamic.py: a 2-layer bidirectional nn.LSTM and a
    // linear head, quantized by ONNX Runtime's quantize_dynamic into
    // com.microsoft DynamicQuantizeLSTM (int8 W and R) and integer matmuls.
    let mut io = weights::read_safetensors(&bert("lstm_io.safetensors")).unwrap();
    let (want8, want32) = (io.remove("expected.int8").unwrap(), io.remove("expected.fp32").unwrap());
    let g = load_bert("lstm_dynamic.onnx", &io);
    assert_eq!(g.node_ids().filter(|&i| matches!(g.node(i).op, Op::Lstm(_))).count(), 2);
    let e_ort = rel_err(&want32, &want8);
    let mut all = backends();
    all.push(Options::backend(BackendKind::Interp));
    for o in all {
        let m = compile(g.clone(), &o).unwrap();
        let got = m.run(&io).unwrap().remove("y").unwrap();
        let (e8, e32) = (rel_err(&want8, &got), rel_err(&want32, &got));
        eprintln!("ORT dynamic LSTM on {}: {e8:.2e} from ONNX Runtime's int8, {e32:.2e} from its fp32 (its int8: {e_ort:.2e})", o.backend);
        // The weights are ONNX Runtime's int8 ones; the activations are not
        // rounded to 8 bits at each step as ONNX Runtime does, so the outputs
        // are nearer the float model's than ONNX Runtime's int8 outputs are.
        assert!(e32 < e_ort, "{}: {e32} from fp32, ONNX Runtime's int8 {e_ort}", o.backend);
        assert!(e8 < 2.0 * e_ort, "{}: {e8} from ONNX Runtime's int8", o.backend);
    }
}

#[test]
fn seven_bit_weights_keep_the_accuracy() {
    let (x, labels) = test_set();
    for (name, mode) in [("digits_cnn.onnx", Mode::Static), ("digits_cnn.onnx", Mode::Dynamic), ("digits_lstm.onnx", Mode::Dynamic)] {
        let g = model(name);
        let o = QuantizeOptions { mode, reduce_range: true, ..QuantizeOptions::new(cranelift()) };
        let q = smelt_engine::quantize(&g, &calibration(&g), &o, &mut |_, _, _| {}).unwrap();
        // Every i8 weight is within ±63.
        let mut weights = 0;
        for (k, t) in q.graph.weights() {
            if t.dtype() == smelt_ir::DType::I8 {
                weights += 1;
                assert!(t.to_i64().iter().all(|v| v.abs() <= 63), "{name} {mode}: {k}");
            }
        }
        assert!(weights > 0, "{name} {mode}");
        let (af, aq) = (accuracy(&logits(&g, &cranelift(), &x), &labels), accuracy(&logits(&q.graph, &cranelift(), &x), &labels));
        eprintln!("{name} {mode} 7-bit weights: accuracy {:.2}% (f32 {:.2}%), held-out error {:.3}%", aq * 100.0, af * 100.0, q.report.error * 100.0);
        assert!((af - aq).abs() <= 0.01, "{name} {mode}: {aq} against {af}");
        // The same on LLVM (narrow quads where the host has AVX2 but no VNNI).
        let want = logits(&q.graph, &Options::backend(BackendKind::Interp), &x);
        for o in backends() {
            let e = rel_err(&want, &logits(&q.graph, &o, &x));
            assert!(e < 1e-5, "{name} {mode} on {}: {e}", o.backend);
        }
    }
}
