//! Helpers shared by the optimizer's tests: running a graph and its optimized form
//! on the reference interpreter and comparing the outputs.

#![allow(dead_code)]

pub mod models;

use smelt_ir::{Bindings, Graph, Tensor};
use smelt_interp::init::{random_inputs, random_weights};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("passes/ is in the workspace").to_path_buf()
}

/// Gives every param without a weight a seeded random one.
pub fn fill_weights(g: &mut Graph, seed: u64) {
    let w = random_weights(g, seed).expect("random weights");
    for (k, v) in w {
        if g.weight(&k).is_none() {
            g.set_weight(k, v);
        }
    }
}

/// Bindings of every symbol of the inputs to small sizes (2, 3, 4, … in order of
/// appearance).
pub fn small_dims(g: &Graph) -> Bindings {
    let mut b = Bindings::new();
    for &i in g.inputs() {
        for s in g.node(i).types[0].shape.symbols() {
            let n = b.len() as u64 + 2;
            b.entry(s.to_string()).or_insert(n);
        }
    }
    b
}

/// Asserts that the optimized output `a` is the original's `b` at the suites'
/// shared tolerance (`smelt_interp::compare`).
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    let tol = smelt_interp::compare::Tolerance::for_dtype(b.dtype());
    if let Err(e) = smelt_interp::compare::compare(what, a, b, tol) {
        panic!("optimized vs original: {e}");
    }
}

/// Runs both graphs on the same seeded random inputs and compares every output.
pub fn assert_same_values(what: &str, original: &Graph, optimized: &Graph, seed: u64) {
    let dims = small_dims(original);
    let inputs: BTreeMap<String, Tensor> = random_inputs(original, seed, &dims).expect("random inputs");
    let want = smelt_interp::run(original, &inputs).unwrap_or_else(|e| panic!("{what}: original fails: {e}"));
    let got = smelt_interp::run(optimized, &inputs).unwrap_or_else(|e| panic!("{what}: optimized fails: {e}"));
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>(), "{what}: output names");
    for (k, w) in &want {
        assert_close(&format!("{what}: output {k}"), &got[k], w);
    }
}
