//! The text parser on arbitrary bytes: never a panic or a hang; what parses
//! prints, and the printed text parses back to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/fuzz_checks.rs"]
mod smelt_fuzz_checks;

fuzz_target!(|data: &[u8]| {
    smelt_fuzz_checks::text(data);
});
