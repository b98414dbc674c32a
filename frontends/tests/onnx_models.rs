//! Whole models through the ONNX importer: the small ResNet-style,
//! transformer-style and U-Net-style (Resize) models of `scripts/onnx/make_models.py` (written to the data
//! cache by `test.sh`) are imported with their symbolic batch dims, printed as smelt
//! text and parsed back, and run on the reference interpreter; the outputs must match
//! onnx's reference evaluator within 1e-4 relative.

#[path = "onnx/common/mod.rs"]
mod common;

use common::{compare_tol, data_dir, missing_data};
use smelt_frontends::onnx::{self, Options};
use smelt_ir::text;
use std::collections::BTreeMap;

fn check_model(name: &str) {
    let dir = data_dir().join("models").join(name);
    if !dir.join("model.onnx").exists() {
        missing_data(&format!("onnx model `{name}`"), &dir);
        return;
    }
    let m = onnx::import_file(&dir.join("model.onnx"), &Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let g = m.graph;
    // The batch stays symbolic.
    let input_ty = g.value_type(g.find(&m.inputs[0].1).expect("input")).expect("typed").clone();
    assert!(!input_ty.shape.is_fixed(), "{name}: the input {input_ty} should keep its symbolic batch");

    // The imported graph is valid smelt text: print, parse, print again.
    let printed = text::print(&g);
    let parsed =
        text::parse(&printed).unwrap_or_else(|d| panic!("{name}: the printed import does not parse:\n{d}\n{printed}"));
    assert_eq!(text::print(&parsed), printed, "{name}: print ∘ parse is not the identity");

    let read = |f: &str| onnx::decode_tensor(&std::fs::read(dir.join(f)).expect("read")).expect("decode").1;
    let (x, want) = (read("input_0.pb"), read("output_0.pb"));
    let inputs = BTreeMap::from([(m.inputs[0].1.clone(), x)]);
    let out = smelt_interp::run(&g, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let got = &out[&m.outputs[0].1];
    compare_tol(got, &want, 1e-4, 1e-6).unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn resnet_matches_the_onnx_reference() {
    check_model("resnet");
}

#[test]
fn transformer_matches_the_onnx_reference() {
    check_model("transformer");
}

#[test]
fn unet_with_resizes_matches_the_onnx_reference() {
    check_model("unet");
}
