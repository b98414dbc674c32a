//! The safetensors reader and the weights loader on arbitrary bytes: never a
//! panic or an abort; tensors that load fit the params they load into.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/fuzz_checks.rs"]
mod smelt_fuzz_checks;

fuzz_target!(|data: &[u8]| {
    smelt_fuzz_checks::safetensors(data);
});
