//! Magnitude pruning, measured: the trained digits MLP (tests/fixtures/digits,
//! made by scripts/models/digits_mlp.py) pruned by `smelt_engine::prune` in
//! each pattern, its test accuracy reported with and without a budget; pruned
//! weights compile to sparse kernels that agree with the dense model on the
//! interpreter on every backend; a model that already holds zeros needs no
//! pruning step; bad requests fail with clear errors.

use smelt_engine::prune::PruneOptions;
use smelt_engine::{BackendKind, Graph, OptLevel, Options, Tensors, compile, load};
use smelt_ir::{Op, Tensor, weights};
use smelt_passes::prune::Pattern;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/digits").join(name)
}

fn mlp() -> Graph {
    load(fixture("digits_mlp.onnx").as_path().into()).expect("fixture loads")
}

/// The held-out test images (as one batch) and their labels.
fn test_set() -> (Tensors, Vec<i64>) {
    let mut t = weights::read_safetensors(&fixture("test.safetensors")).unwrap();
    let labels = t.remove("labels").unwrap().to_i64();
    (t, labels)
}

/// Check inputs: 4 batches of 16 training images.
fn samples() -> Vec<Tensors> {
    let t = weights::read_safetensors(&fixture("calibration.safetensors")).unwrap();
    smelt_engine::quantize::split_samples(&mlp(), t).unwrap().into_iter().take(4).collect()
}

fn llvm() -> Options {
    Options::backend(if BackendKind::Llvm.built() { BackendKind::Llvm } else { BackendKind::Cranelift })
}

fn logits(g: &Graph, o: &Options, x: &Tensors) -> Tensor {
    compile(g.clone(), o).unwrap().run(x).unwrap().remove("logits").unwrap()
}

fn accuracy(l: &Tensor, labels: &[i64]) -> f64 {
    let v = l.to_f32();
    let hits = v
        .chunks(10)
        .zip(labels)
        .filter(|(row, y)| row.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as i64 == **y)
        .count();
    hits as f64 / labels.len() as f64
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_f32(), b.to_f32());
    let num: f64 = a.iter().zip(&b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    (num / den).sqrt()
}

fn sparse_nodes(g: &Graph, o: &Options) -> usize {
    let mut g = g.clone();
    smelt_engine::optimize(&mut g, o.opt_level, o.backend).unwrap();
    g.node_ids().filter(|&i| matches!(g.node(i).op, Op::SparseMatMul(_))).count()
}

#[test]
fn the_trained_mlp_pruned_in_each_pattern_reports_its_accuracy() {
    let g = mlp();
    let (x, labels) = test_set();
    let dense = accuracy(&logits(&g, &llvm(), &x), &labels);
    eprintln!("digits MLP dense: test accuracy {:.2}%", dense * 100.0);
    assert!(dense > 0.95, "the trained model: {dense}");
    let s = samples();
    for (pattern, budget) in [("unstructured", None), ("unstructured", Some(0.05)), ("block:4x1", None), ("block:4x1", Some(0.05)), ("nm:2:4", None)] {
        let mut o = PruneOptions::new(0.8, llvm());
        o.pattern = pattern.parse().unwrap();
        o.budget = budget;
        // 10 output features do not split into blocks of 4.
        if pattern.starts_with("block") {
            o.exclude = vec!["logits".into()];
        }
        let p = smelt_engine::prune(&g, &s, &o, &mut |_, _, _| {}).unwrap();
        let r = &p.report;
        let acc = accuracy(&logits(&p.graph, &llvm(), &x), &labels);
        eprintln!(
            "{pattern} budget {budget:?}: weights {:.1}% zero, {} sparse layers, error {:.2}% on {} inputs, test accuracy {:.2}% (dense {:.2}%); per layer {:?}",
            r.sparsity * 100.0,
            r.sparse_layers,
            r.error * 100.0,
            r.inputs,
            acc * 100.0,
            dense * 100.0,
            r.layers.iter().map(|l| (l.name.as_str(), (l.after * 100.0).round(), l.reason.as_str())).collect::<Vec<_>>()
        );
        match budget {
            Some(b) => assert!(r.error <= b, "{pattern}: error {} over the budget {b}", r.error),
            None => {
                let want = if pattern == "nm:2:4" { 0.5 } else { 0.8 };
                for l in r.layers.iter().filter(|l| l.reason == "pruned") {
                    assert!((l.after - want).abs() < 0.01, "{pattern}: {} is {:.3} sparse", l.name, l.after);
                }
            }
        }
        // A one-shot 80% prune of a network this small costs accuracy; the
        // budget buys it back. What must hold is that it is still a classifier.
        assert!(acc > 0.5, "{pattern}: accuracy {acc}");
    }
}

/// The pruned weights run as sparse kernels on every backend, equal to the
/// dense interpreter on the same (pruned) weights.
#[test]
fn pruned_models_compile_to_sparse_kernels_that_agree_with_the_interpreter() {
    let g = mlp();
    let (x, _) = test_set();
    // 37 images: an awkward batch.
    let xs: Tensors = x
        .iter()
        .map(|(k, t)| {
            let inner: usize = t.shape()[1..].iter().product();
            let mut shape = t.shape().to_vec();
            shape[0] = 37;
            (k.clone(), Tensor::new(shape, t.data().take(&(0..37 * inner).collect::<Vec<_>>())).unwrap())
        })
        .collect();
    let reference = Options { opt_level: OptLevel::O0, ..Options::backend(BackendKind::Interp) };
    for pattern in ["unstructured", "block:16x1"] {
        let mut o = PruneOptions::new(0.92, llvm());
        o.pattern = pattern.parse().unwrap();
        o.exclude = vec!["logits".into()];
        let p = smelt_engine::prune(&g, &samples(), &o, &mut |_, _, _| {}).unwrap().graph;
        let want = logits(&p, &reference, &xs);
        let mut backends = vec![Options::backend(BackendKind::Interp), Options::backend(BackendKind::Cranelift)];
        if BackendKind::Llvm.built() {
            backends.push(Options::backend(BackendKind::Llvm));
            backends.push(Options { threads: 2, ..Options::backend(BackendKind::Llvm) });
        }
        if BackendKind::Wgsl.built() {
            backends.push(Options::backend(BackendKind::Wgsl));
        }
        for b in backends {
            let n = sparse_nodes(&p, &b);
            let e = rel_err(&want, &logits(&p, &b, &xs));
            eprintln!("{pattern} 92% on {} ({} threads): {n} sparse layers, error {e:.2e} against the dense interpreter", b.backend, b.threads);
            assert!(e < 1e-5, "{pattern} on {}: {e}", b.backend);
            if b.backend != BackendKind::Wgsl {
                assert_eq!(n, 2, "{pattern} on {}: the two pruned hidden layers go sparse", b.backend);
            }
        }
        // The dense model stays dense.
        assert_eq!(sparse_nodes(&g, &llvm()), 0);
    }
}

#[test]
fn weights_that_already_hold_zeros_need_no_pruning_step() {
    let mut g = mlp();
    // Zero 95% of fc2 by hand, as a model trained sparse would come.
    let name = smelt_passes::prune::layers(&g)[1].weight.clone();
    let t = g.weight(&name).unwrap().clone();
    let v: Vec<f32> = t.to_f32().iter().enumerate().map(|(i, &x)| if i % 20 == 0 { x } else { 0.0 }).collect();
    g.set_weight(name, Tensor::new(t.shape().to_vec(), smelt_ir::Data::F32(v)).unwrap());
    assert_eq!(sparse_nodes(&g, &llvm()), 1);
    let o = PruneOptions::new(0.0, llvm());
    let r = smelt_engine::prune(&g, &samples(), &o, &mut |_, _, _| {}).unwrap().report;
    assert!((r.layers[1].before - 0.95).abs() < 1e-3, "{:?}", r.layers[1]);
    assert_eq!(r.error, 0.0, "sparsity 0 prunes nothing");
}

#[test]
fn bad_requests_are_clear_errors() {
    let g = mlp();
    let s = samples();
    let msg = |o: PruneOptions| smelt_engine::prune(&g, &s, &o, &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(msg(PruneOptions::new(1.0, llvm())).contains("--sparsity must be in [0, 1)"));
    assert!(msg(PruneOptions::new(-0.1, llvm())).contains("--sparsity must be in [0, 1)"));
    let mut o = PruneOptions::new(0.5, llvm());
    o.pattern = Pattern::Block { out: 16, inp: 1 };
    let e = msg(o);
    assert!(e.contains("does not divide") && e.contains("`logits`"), "{e}");
    let mut o = PruneOptions::new(0.5, llvm());
    o.exclude = vec!["nope".into()];
    assert!(msg(o).contains("--exclude `nope` names no prunable layer"));
    // A budget no pruning meets leaves every layer dense.
    let mut o = PruneOptions::new(0.5, llvm());
    o.budget = Some(1e-9);
    let r = smelt_engine::prune(&g, &s, &o, &mut |_, _, _| {}).unwrap().report;
    assert!(r.layers.iter().all(|l| l.reason == "kept dense for the budget" && l.sensitivity.is_some()), "{:?}", r.layers);
    assert_eq!(r.error, 0.0);
    let e = smelt_engine::prune(&g, &[], &PruneOptions::new(0.5, llvm()), &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(e.contains("no inputs were given"), "{e}");
}
