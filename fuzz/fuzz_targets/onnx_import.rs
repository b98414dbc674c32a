//! The ONNX importer on arbitrary bytes: never a panic, a hang or an abort; an
//! imported graph verifies and round-trips through the text format.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/fuzz_checks.rs"]
mod smelt_fuzz_checks;

fuzz_target!(|data: &[u8]| {
    smelt_fuzz_checks::onnx(data);
});
