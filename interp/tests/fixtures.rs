//! The interpreter against values computed independently with numpy
//! (`scripts/gen_interp_fixtures.py` → `tests/fixtures/interp/`). Each case is a
//! model, its weights, and `NAME.io.safetensors` with the inputs and the expected
//! outputs (`expected.<output>`); `MANIFEST.txt` gives each case's rtol and atol.
//! Set `SMELT_FIXTURE=text` to run only the cases whose names contain it.

use smelt_ir::{Tensor, load_model, weights::read_safetensors};
use std::collections::BTreeMap;
use std::path::Path;

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interp")
}

/// `|a − e| ≤ atol + rtol·|e|` elementwise; exact for integers and bools.
fn compare(name: &str, got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("{name}: shape {:?}, expected {:?}", got.shape(), want.shape()));
    }
    let exact = !want.dtype().is_float();
    if exact && got.dtype() != want.dtype() {
        return Err(format!("{name}: dtype {}, expected {}", got.dtype(), want.dtype()));
    }
    if exact {
        let (g, w) = (got.to_i64(), want.to_i64());
        if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
            return Err(format!("{name}: element {i} is {}, expected {} (first mismatch)", g[i], w[i]));
        }
        return Ok(());
    }
    let (g, w) = (got.to_f32(), want.to_f32());
    let mut worst: Option<(usize, f64)> = None;
    for i in 0..g.len() {
        let (a, e) = (g[i] as f64, w[i] as f64);
        let ok = (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= atol + rtol * e.abs();
        if !ok {
            let err = (a - e).abs();
            if worst.is_none_or(|(_, w)| err > w) {
                worst = Some((i, err));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, err)) => Err(format!("{name}: element {i} is {}, expected {} (|err| {err:e}, the worst)", g[i], w[i])),
    }
}

#[test]
fn interpreter_matches_numpy_fixtures() {
    let filter = std::env::var("SMELT_FIXTURE").unwrap_or_default();
    let manifest = std::fs::read_to_string(dir().join("MANIFEST.txt")).expect("MANIFEST.txt");
    let mut failures = Vec::new();
    let mut ran = 0;
    for line in manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (case, rtol, atol): (&str, f64, f64) = (parts[0], parts[1].parse().unwrap(), parts[2].parse().unwrap());
        if !case.contains(filter.as_str()) {
            continue;
        }
        ran += 1;
        let g = match load_model(&dir().join(format!("{case}.smelt"))) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{case}: load: {e}"));
                continue;
            }
        };
        let io = read_safetensors(&dir().join(format!("{case}.io.safetensors"))).expect("io file");
        let mut inputs = BTreeMap::new();
        let mut expected = BTreeMap::new();
        for (k, v) in io {
            match k.strip_prefix("expected.") {
                Some(out) => expected.insert(out.to_string(), v),
                None => inputs.insert(k, v),
            };
        }
        let got = match smelt_interp::run(&g, &inputs) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{case}: run: {e}"));
                continue;
            }
        };
        for (name, want) in &expected {
            match got.get(name) {
                None => failures.push(format!("{case}: no output `{name}`")),
                Some(t) => {
                    if let Err(e) = compare(&format!("{case}.{name}"), t, want, rtol, atol) {
                        failures.push(e);
                    }
                }
            }
        }
    }
    assert!(ran > 0, "no fixture matched SMELT_FIXTURE={filter:?}");
    if filter.is_empty() {
        let listed = manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
        assert_eq!(ran, listed, "every case of MANIFEST.txt ran");
    }
    assert!(failures.is_empty(), "{} failures in {ran} cases:\n{}", failures.len(), failures.join("\n"));
}
