//! `smelt quantize` end to end: on the trained digits CNN (tests/fixtures/digits)
//! it writes OUT.smelt and OUT.safetensors (int8 weights, a quarter of the float
//! ones) that `smelt run` runs, prints the per-layer report and writes it as
//! JSON; `--mode dynamic` needs no calibration inputs; bad requests fail with
//! status 1, one clear message and nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn digits(name: &str) -> String {
    root().join("tests/fixtures/digits").join(name).display().to_string()
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn smelt(dir: &Path, args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(dir).output().expect("run smelt");
    Out { code: o.status.code(), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() }
}

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-quantize-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn quantizes_runs_and_reports() {
    let dir = temp_dir("ok");
    let (model, calib) = (digits("digits_cnn.onnx"), digits("calibration.safetensors"));
    let o = smelt(&dir, &["quantize", &model, "--calibrate", &calib, "-o", "out/cnn_int8", "--report", "out/report.json"]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("4/4 layers int8") && o.stdout.contains("held-out"), "{}", o.stdout);
    assert!(o.stdout.contains("time on cranelift: f32 "), "{}", o.stdout);
    let w = std::fs::metadata(dir.join("out/cnn_int8.safetensors")).unwrap().len();
    let f = std::fs::metadata(&model).unwrap().len();
    assert!((w as f64) < 0.27 * f as f64, "int8 weights {w} bytes against the float model's {f}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("out/report.json")).unwrap()).unwrap();
    assert_eq!(report["layers"].as_array().unwrap().len(), 4);
    assert!(report["error"].as_f64().unwrap() < 0.02);
    assert!(report["f32_ms"].as_f64().unwrap() > 0.0 && report["quantized_ms"].as_f64().unwrap() > 0.0, "{report}");
    let text = std::fs::read_to_string(dir.join("out/cnn_int8.smelt")).unwrap();
    assert!(text.contains("qconv2d") && text.contains("qmatmul") && !text.contains(" conv2d("), "{text}");
    // The quantized model runs from its file.
    let x = smelt(&dir, &["run", "out/cnn_int8.smelt", "--random", "1", "--dim", "N=5"]);
    assert_eq!(x.code, Some(0), "{}", x.stderr);
    assert!(x.stdout.contains("f32[5, 10]"), "{}", x.stdout);
}

#[test]
fn dynamic_mode_needs_no_calibration() {
    let dir = temp_dir("dynamic");
    let model = digits("digits_lstm.onnx");
    let o = smelt(&dir, &["quantize", &model, "--mode", "dynamic", "-o", "lstm_dyn", "--report", "r.json"]);
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("int8-dynamic") && o.stdout.contains("run time") && o.stdout.contains("1/1 layers int8"), "{}", o.stdout);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(report["mode"], "dynamic");
    assert_eq!((&report["calibration_inputs"], &report["held_out_inputs"]), (&0.into(), &8.into()), "8 random inputs by default: {report}");
    let text = std::fs::read_to_string(dir.join("lstm_dyn.smelt")).unwrap();
    assert!(text.contains("qmatmul") && text.contains("reduce_max"), "{text}");
    let x = smelt(&dir, &["run", "lstm_dyn.smelt", "--random", "1", "--dim", "N=3"]);
    assert_eq!(x.code, Some(0), "{}", x.stderr);
}

#[test]
fn a_budget_and_exclusions_keep_layers_in_float() {
    let dir = temp_dir("budget");
    let (model, calib) = (digits("digits_cnn.onnx"), digits("calibration.safetensors"));
    let o = smelt(&dir, &["quantize", &model, "--calibrate", &calib, "-o", "a", "--exclude", "logits"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("3/4 layers int8") && o.stdout.contains("excluded"), "{}", o.stdout);
    let o = smelt(&dir, &["quantize", &model, "--calibrate", &calib, "-o", "b", "--budget", "0.3%", "--method", "percentile:99.99"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("kept in f32 for the budget") && o.stdout.contains("budget 0.300%"), "{}", o.stdout);
}

#[test]
fn bad_requests_fail_cleanly_and_write_nothing() {
    let dir = temp_dir("bad");
    let (model, calib) = (digits("digits_cnn.onnx"), digits("calibration.safetensors"));
    let ort = digits("ort_qdq.safetensors");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["quantize", &model, "-o", "q"], "give calibration inputs"),
        (vec!["quantize", &model, "-o", "q", "--calibrate", &calib, "--method", "best"], "unknown calibration method `best`"),
        (vec!["quantize", &model, "-o", "q", "--calibrate", &calib, "--activations", "u4"], "--activations must be u8 or i8"),
        (vec!["quantize", &model, "-o", "q", "--calibrate", &calib, "--budget", "lots"], "--budget `lots`"),
        (vec!["quantize", &model, "-o", "q", "--calibrate", &calib, "--exclude", "nope"], "--exclude `nope` names no quantizable layer"),
        (vec!["quantize", &model, "-o", "q", "--calibrate", &calib, "--budget", "0.000001%"], "cannot be met"),
        (vec!["quantize", &model, "-o", "q", "--calibrate", &model], "error"),
        (vec!["quantize", &model, "-o", "q", "--calibrate", &ort], "calibration input 1"),
    ];
    for (args, want) in cases {
        let o = smelt(&dir, &args);
        assert_eq!(o.code, Some(1), "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(o.stderr.contains(want), "{args:?}: want `{want}` in:\n{}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "{args:?} wrote {left:?}");
    }
}
