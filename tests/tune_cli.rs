//! `smelt tune` and the tuning database end to end: a tuned model's file entry
//! (this CPU, backend, threads, peak), runs that read it and agree with untuned
//! runs, `--tune` on bench, the default file location, and files that must be
//! ignored with one warning line (corrupt, another CPU, an older smelt) without
//! changing a result. Other CLI tests run with `SMELT_TUNING=off`, so a tuning
//! file on the developer's machine cannot change them.

use serde_json::Value;
use smelt::ir::weights::read_safetensors;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `smelt ARGS` with `env` set (and SMELT_TUNING unset unless given).
fn smelt_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smelt"));
    c.env_remove("SMELT_TUNING").args(args).current_dir(root());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run smelt")
}

fn smelt(args: &[&str]) -> Output {
    smelt_env(args, &[])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed:\n{}\n{}", text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-tune-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The largest difference between two runs' outputs, relative to the largest |output|.
fn rel_diff(a: &Path, b: &Path) -> f64 {
    let (a, b) = (read_safetensors(a).unwrap(), read_safetensors(b).unwrap());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let (mut d, mut s) = (0f64, 0f64);
    for (k, x) in &a {
        for (p, q) in x.to_f32().iter().zip(b[k].to_f32()) {
            d = d.max((p - q).abs() as f64);
            s = s.max(q.abs() as f64);
        }
    }
    d / s.max(1e-12)
}

const MODEL: &str = "examples/resblock.smelt";

fn tune(file: &Path) -> Value {
    let f = file.to_str().unwrap();
    let out = ok(&smelt(&["tune", MODEL, "--dim", "N=3", "--runs", "1", "--tuning", f, "--json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

#[test]
fn tune_writes_an_entry_that_runs_read() {
    let d = temp_dir("entry");
    let file = d.join("t.json");
    let r = tune(&file);
    assert_eq!(r["backend"], "llvm");
    assert_eq!(r["threads"], 1);
    assert!(r["max_error"].as_f64().unwrap() < 1e-3, "{r}");
    let classes = r["classes"].as_array().unwrap();
    // resblock: two 3×3 convs of one class, and the classifier's matmul.
    assert_eq!(classes.len(), 2, "{r}");
    assert!(classes[0]["key"].as_str().unwrap().starts_with("conv f32[3,8,16,16] const f32[8,8,3,3]"), "{r}");
    assert_eq!(classes[0]["nodes"].as_array().unwrap().len(), 2);
    let db: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(db["format"], 1);
    let e = &db["entries"][0];
    assert_eq!(e["cpu"], r["cpu"]);
    assert_eq!((e["backend"].as_str(), e["threads"].as_u64()), (Some("llvm"), Some(1)));
    if smelt::codegen::schedule::host_vector_bits() >= 256 {
        assert!(e["peak_gflops"].as_f64().unwrap() > 1.0, "{e}");
    }
    // The backend's rates, which calibrate the cost models.
    for k in ["gemm_gflops", "stream_gbs", "launch_us"] {
        assert!(e[k].as_f64().unwrap() > 0.0, "{k}: {e}");
        assert_eq!(e[k], r[k]);
    }
    // Tuning again updates the entry; a 2-thread tuning is another one.
    tune(&file);
    let f = file.to_str().unwrap();
    ok(&smelt(&["tune", MODEL, "--dim", "N=3", "--runs", "1", "--threads", "2", "--tuning", f]));
    let db: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(db["entries"].as_array().unwrap().len(), 2, "{db}");
    // Another model's tuning joins the entry without dropping this one's classes.
    let before: Vec<String> = db["entries"][0]["classes"].as_object().unwrap().keys().cloned().collect();
    ok(&smelt(&["tune", "examples/mlp.smelt", "--dim", "N=5", "--runs", "1", "--tuning", f]));
    let db: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let one = db["entries"].as_array().unwrap().iter().find(|e| e["threads"] == 1).expect("the 1-thread entry");
    let after = one["classes"].as_object().unwrap();
    assert!(before.iter().all(|k| after.contains_key(k)), "{before:?} lost from {one}");
    // Runs with the file agree with runs without it.
    let (a, b) = (d.join("a.safetensors"), d.join("b.safetensors"));
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec!["run", MODEL, "--backend", "llvm", "--dim", "N=3", "--random", "4", "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = smelt(&args);
        ok(&o);
        text(&o.stderr)
    };
    let stderr = run(&["--tuning", f], &a);
    assert!(!stderr.contains("warning"), "{stderr}");
    run(&["--no-tuning"], &b);
    assert!(rel_diff(&a, &b) < 1e-4, "tuned and untuned runs differ by {}", rel_diff(&a, &b));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_files_are_ignored_with_one_warning() {
    let d = temp_dir("bad");
    let good = d.join("good.json");
    tune(&good);
    let db: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    let mut other_cpu = db.clone();
    other_cpu["entries"][0]["cpu"] = "Another CPU 1".into();
    let mut older = db.clone();
    older["schedule"] = 0.into();
    let mut bad_value = db.clone();
    bad_value["entries"][0]["classes"] = serde_json::json!({"conv x": {"kc": 0}});
    let cases: [(&str, String, &str); 4] = [
        ("corrupt", "{\"format\": 1, \"entries\": [".into(), "not a smelt tuning file"),
        ("other-cpu", other_cpu.to_string(), "no entry for this CPU"),
        ("older", older.to_string(), "run `smelt tune` again"),
        ("bad-value", bad_value.to_string(), "kc = 0 is out of range"),
    ];
    let want = d.join("want.safetensors");
    ok(&smelt(&["run", MODEL, "--backend", "llvm", "--random", "2", "--no-tuning", "-o", want.to_str().unwrap()]));
    for (name, body, warning) in cases {
        let file = d.join(format!("{name}.json"));
        std::fs::write(&file, body).unwrap();
        let got = d.join(format!("{name}.safetensors"));
        let o = smelt(&["run", MODEL, "--backend", "llvm", "--random", "2", "--tuning", file.to_str().unwrap(), "-o", got.to_str().unwrap()]);
        ok(&o);
        let err = text(&o.stderr);
        let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
        assert_eq!(warnings.len(), 1, "{name}: {err}");
        assert!(warnings[0].contains(warning), "{name}: {err}");
        assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&want).unwrap(), "{name}: an ignored file changed the result");
    }
    // A missing file named with --tuning is an error; smelt tune creates it.
    let o = smelt(&["run", MODEL, "--tuning", d.join("none.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("error: --tuning ") && text(&o.stderr).contains("no such file"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn default_location_tune_flag_and_errors() {
    let d = temp_dir("default");
    let cache = d.join("cache");
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
    let o = smelt_env(&["bench", MODEL, "--backend", "llvm", "--runs", "2", "--tune", "--dim", "N=2"], &env);
    ok(&o);
    assert!(text(&o.stderr).contains("tuned 2 classes"), "{}", text(&o.stderr));
    let file = cache.join("smelt").join("tuning.json");
    assert!(file.exists(), "no tuning file at the default place");
    // SMELT_TUNING names another file, or none.
    let other = d.join("other.json");
    ok(&smelt_env(&["tune", MODEL, "--runs", "1"], &[("SMELT_TUNING", other.to_str().unwrap())]));
    assert!(other.exists());
    let o = smelt_env(&["tune", MODEL, "--runs", "1"], &[("SMELT_TUNING", "off")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("give one with --tuning FILE"), "{}", text(&o.stderr));
    // Only the CPU backends are tuned.
    let o = smelt(&["tune", MODEL, "--backend", "interp", "--tuning", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("tunes the CPU backends"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}
