//! What the fuzz targets (`fuzz/`) check on each input, shared with the
//! regression test that replays the inputs they found (`tests/fuzz_regressions.rs`):
//! no panic, and the properties below. A failed property panics, which is how
//! libFuzzer learns of it.

#![allow(dead_code)]

use smelt_ir::{Graph, Weights, text};

/// The text format: what parses prints, and the printed text parses back to the
/// same text; verifying never panics.
pub fn text(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let Ok(g) = text::parse(src) else { return };
    round_trips(&g);
    let _ = smelt_ir::verify(&g, Weights::IfPresent);
}

fn round_trips(g: &Graph) {
    let printed = text::print(g);
    let again = text::parse(&printed).unwrap_or_else(|e| panic!("printed text does not parse: {e}\n{printed}"));
    assert_eq!(text::print(&again), printed, "print ∘ parse is not the identity");
}

/// The ONNX importer: an import never panics; what imports verifies and
/// round-trips through the text format.
pub fn onnx(data: &[u8]) {
    let opts = smelt_frontends::onnx::Options { name: Some("fuzzed".into()), ..Default::default() };
    let Ok(m) = smelt_frontends::onnx::import(data, &opts) else { return };
    let g = m.graph;
    if let Err(d) = smelt_ir::verify(&g, Weights::Required) {
        panic!("an imported graph does not verify: {d}");
    }
    round_trips(&g);
}

/// The safetensors reader and the weights loader: reading never panics; tensors
/// that load into a graph's params fit them.
pub fn safetensors(data: &[u8]) {
    let Ok(tensors) = smelt_ir::weights::parse_safetensors(data, "fuzzed.safetensors") else { return };
    for t in tensors.values() {
        assert_eq!(t.numel(), t.shape().iter().product::<usize>(), "a tensor's element count and shape disagree");
    }
    let mut g = text::parse("graph g(x: f32[2, 3]) -> (y) {\n  w = param f32[2, 3]\n  b = param i32[3]\n  y = add(x, w)\n}\n")
        .expect("the fixed graph parses");
    if smelt_ir::weights::load_weights(&mut g, tensors, "fuzzed.safetensors").is_ok() {
        smelt_ir::verify(&g, Weights::Required).unwrap_or_else(|d| panic!("loaded weights do not verify: {d}"));
    }
}
