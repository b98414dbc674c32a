//! Every model of `smelt_frontends::zoo`, at the small configuration the CLI's zoo
//! test uses (`tests/support/small_zoo.rs`, shared by path so that a new model
//! enters both), with random weights and inputs, on each backend against the
//! interpreter.

#[path = "../../../tests/support/small_zoo.rs"]
mod small_zoo;

use smelt_ir::{Bindings, Graph, Tensor};
use std::collections::BTreeMap;

pub use small_zoo::SMALL;

/// A few models again at sizes where the parallel loops, the packed GEMM and
/// the vector bodies with tails all run (odd channel counts and lengths).
pub const MEDIUM: &[(&str, &str, &str)] = &[
    ("resnet18", "width=6 image=37 classes=11", "N=3"),
    ("transformer_encoder", "layers=2 d_model=36 heads=4 ffn=71 pre_norm=true activation=gelu", "N=2 T=13"),
    ("lstm", "input=13 hidden=27 layers=2 bidirectional=true initial_state=true", "T=9 N=3"),
    ("wavenet", "layers=5 stacks=1 residual=12 gate=10 skip=9 end=11 input_channels=7 quantization=13", "N=2 T=29"),
];

/// A zoo model built with its small settings, with seeded random weights, and
/// random inputs for its symbol sizes.
pub fn model(name: &str, settings: &str, dims: &str) -> (Graph, BTreeMap<String, Tensor>) {
    let kv: Vec<(String, String)> = settings
        .split_whitespace()
        .map(|s| {
            let (k, v) = s.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut g = smelt_frontends::zoo::build(name, &kv).unwrap_or_else(|e| panic!("{name}: {e}")).graph;
    for (k, w) in smelt_interp::init::random_weights(&g, 3).unwrap_or_else(|e| panic!("{name}: {e}")) {
        g.set_weight(k, w);
    }
    let b: Bindings = dims
        .split_whitespace()
        .map(|s| {
            let (k, v) = s.split_once('=').expect("SYM=size");
            (k.to_string(), v.parse().expect("a size"))
        })
        .collect();
    let inputs = smelt_interp::init::random_inputs(&g, 5, &b).unwrap_or_else(|e| panic!("{name}: {e}"));
    (g, inputs)
}
