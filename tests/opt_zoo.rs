//! The optimizer on every zoo model: at -O2 and -O3 the optimized graph computes
//! what the original computes on the reference interpreter (random weights and
//! inputs), and the ResNet and transformer come out fused.

mod support;

use smelt::frontends::zoo;
use smelt::passes::{OptLevel, PassManager};
use smelt::runtime::init::{random_inputs, random_weights};
use smelt::ir::Bindings;
use smelt::{Graph, Tensor};
use std::collections::BTreeMap;
use support::small_zoo::SMALL;

fn build(name: &str, settings: &str) -> Graph {
    let pairs: Vec<(String, String)> = settings
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut g = zoo::build(name, &pairs).unwrap_or_else(|e| panic!("{name}: {e}")).graph;
    for (k, t) in random_weights(&g, 7).unwrap() {
        g.set_weight(k, t);
    }
    g
}

fn bindings(dims: &str) -> Bindings {
    dims.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn close(name: &str, a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{name}: outputs differ");
    // `a` is the original's, `b` the optimized graph's outputs.
    if let Err(e) = smelt::interp::compare::compare_all(&format!("{name}, optimized"), b, a) {
        panic!("{e}");
    }
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.node_ids().map(|i| g.node(i).op.name()).collect()
}

#[test]
fn optimized_zoo_models_compute_the_same() {
    for &(name, settings, dims) in SMALL {
        let g = build(name, settings);
        let inputs = random_inputs(&g, 11, &bindings(dims)).unwrap();
        let want = smelt::run(&g, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        for level in [OptLevel::O2, OptLevel::O3] {
            let mut o = g.clone();
            PassManager::pipeline(level).run(&mut o).unwrap_or_else(|e| panic!("{name} {level:?}: {e}"));
            assert!(o.len() <= g.len(), "{name} {level:?}: the optimizer grew the graph");
            let got = smelt::run(&o, &inputs).unwrap_or_else(|e| panic!("{name} {level:?}: {e}"));
            close(&format!("{name} {level:?}"), &want, &got);
        }
    }
}

#[test]
fn resnet_and_transformer_come_out_fused() {
    let mut r = build("resnet18", "width=2 image=16 classes=3");
    PassManager::pipeline(OptLevel::O2).run(&mut r).unwrap();
    let ops_r = ops(&r);
    assert!(ops_r.contains(&"fused_conv2d"), "{ops_r:?}");
    assert!(!ops_r.contains(&"batch_norm"), "batch norm should fold: {ops_r:?}");

    let mut t = build("transformer_encoder", "layers=1 d_model=8 heads=2 ffn=16 pre_norm=true activation=gelu");
    PassManager::pipeline(OptLevel::O2).run(&mut t).unwrap();
    let ops_t = ops(&t);
    for want in ["fused_matmul", "layer_norm", "attention"] {
        assert!(ops_t.contains(&want), "{want} missing: {ops_t:?}");
    }
}
