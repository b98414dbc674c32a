//! The inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) found crashing,
//! kept as regression tests: each file under `tests/fuzz/<target>/` replays
//! through the same checks (`tests/support/fuzz_checks.rs`), which must not panic.

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let bytes = std::fs::read(e.path()).expect("readable");
        let r = std::panic::catch_unwind(|| check(&bytes));
        assert!(r.is_ok(), "{} panics again", e.path().display());
        n += 1;
    }
    n
}

#[test]
fn fuzzed_inputs_stay_fixed() {
    let n = replay("text_parser", fuzz_checks::text) + replay("onnx_import", fuzz_checks::onnx) + replay("safetensors_weights", fuzz_checks::safetensors);
    assert!(n >= 3, "the regression inputs are there ({n})");
}
