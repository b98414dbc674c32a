//! `smelt zoo` end to end: every zoo model, written at a small configuration into a
//! temporary directory, checks and runs on the interpreter; `--list` shows every
//! model with its settings; the same seed gives the same weights; and a bad
//! request (unknown model or key, bad value, inconsistent config) fails with the
//! valid choices named, exit status 1 and nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a run of the binary left behind.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn smelt_in(dir: &Path, args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(dir).output().expect("run smelt");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

/// Asserts success; returns stdout.
fn ok(what: &str, o: Out) -> String {
    assert_eq!(o.code, Some(0), "{what}: expected success\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    o.stdout
}

/// Asserts a clean failure (status 1, no panic, nothing on stdout); returns stderr.
fn fails(o: Out) -> String {
    assert_eq!(o.code, Some(1), "expected exit status 1\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("panicked"), "panic:\n{}", o.stderr);
    assert!(o.stderr.starts_with("error: "), "not an error message:\n{}", o.stderr);
    assert!(o.stdout.is_empty(), "a failing command printed to stdout:\n{}", o.stdout);
    o.stderr
}

/// A fresh, empty directory of its own for one test.
fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smelt-zoo-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

mod support;
use support::small_zoo::SMALL;

#[test]
fn every_model_is_written_and_runs() {
    let dir = temp_dir("all");
    let listed = ok("--list", smelt_in(&dir, &["zoo", "--list"]));
    let names: Vec<&str> = listed.lines().filter(|l| !l.starts_with(' ')).filter_map(|l| l.split(':').next()).collect();
    assert_eq!(names, SMALL.iter().map(|s| s.0).collect::<Vec<_>>(), "every zoo model is tested here");

    for &(name, settings, dims) in SMALL {
        let mut args = vec!["zoo", name, "--seed", "3", "-o", "out"];
        for s in settings.split_whitespace() {
            args.extend(["--set", s]);
        }
        let wrote = ok(name, smelt_in(&dir, &args));
        assert!(wrote.starts_with(&format!("wrote out/{name}.smelt (")), "{wrote}");
        let model = format!("out/{name}.smelt");
        let text = std::fs::read_to_string(dir.join(&model)).unwrap();
        assert!(text.starts_with(&format!("# {name}: ")), "{text}");
        assert!(text.contains("# settings: ") && text.contains("(seed 3)"), "{text}");
        ok(name, smelt_in(&dir, &["fmt", "--check", &model]));
        ok(name, smelt_in(&dir, &["check", &model]));

        let mut run = vec!["run", model.as_str()];
        for d in dims.split_whitespace() {
            run.extend(["--dim", d]);
        }
        let out = ok(name, smelt_in(&dir, &run));
        let outputs = text.lines().find(|l| l.starts_with("graph ")).and_then(|l| l.split("-> (").nth(1)).unwrap();
        let count = outputs.split(')').next().unwrap().split(", ").count();
        assert_eq!(out.lines().count(), count, "{name}: one line per output\n{out}");
        assert!(!out.contains("NaN") && !out.contains("inf"), "{name}:\n{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_shows_settings_and_defaults() {
    let dir = temp_dir("list");
    let all = ok("--list", smelt_in(&dir, &["zoo", "--list"]));
    assert!(all.contains("resnet50: ResNet-50"), "{all}");
    assert!(all.contains("    width = 64"), "{all}");
    assert!(all.contains("    dueling = false"), "{all}");
    assert!(all.contains("    activation = gelu"), "{all}");
    let one = ok("--list wavenet", smelt_in(&dir, &["zoo", "--list", "wavenet"]));
    assert!(one.starts_with("wavenet: ") && one.contains("    layers = 10") && !one.contains("resnet"), "{one}");
    let e = fails(smelt_in(&dir, &["zoo", "--list", "wavenut"]));
    assert!(e.contains("unknown model `wavenut`; the zoo has: resnet18"), "{e}");
    assert!(files(&dir).is_empty());
}

#[test]
fn the_seed_decides_the_weights() {
    let dir = temp_dir("seed");
    let write = |seed: &str, out: &str| ok("zoo", smelt_in(&dir, &["zoo", "dqn_head", "--seed", seed, "-o", out]));
    write("5", "a");
    write("5", "b");
    write("6", "c");
    let read = |d: &str| std::fs::read(dir.join(d).join("dqn_head.safetensors")).unwrap();
    assert_eq!(read("a"), read("b"));
    assert_ne!(read("a"), read("c"));
    // The defaults check (type inference and the weights' types), without running.
    ok("check", smelt_in(&dir, &["check", "a/dqn_head.smelt"]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_fail_and_write_nothing() {
    let dir = temp_dir("bad");
    let e = fails(smelt_in(&dir, &["zoo", "resnet19", "-o", "out"]));
    assert!(e.starts_with("error: unknown model `resnet19`; the zoo has: resnet18, resnet34, resnet50"), "{e}");

    let e = fails(smelt_in(&dir, &["zoo", "resnet18", "--set", "widht=8", "-o", "out"]));
    assert_eq!(e, "error: model `resnet18` has no key `widht`; its keys are: width, image, channels, classes\n");

    let e = fails(smelt_in(&dir, &["zoo", "lstm", "--set", "layers=two", "-o", "out"]));
    assert_eq!(e, "error: model `lstm`: bad value `two` for `layers`: invalid digit found in string\n");

    let e = fails(smelt_in(&dir, &["zoo", "lstm", "--set", "layers", "-o", "out"]));
    assert_eq!(e, "error: --set `layers` is not KEY=VALUE\n");

    let e =
        fails(smelt_in(&dir, &["zoo", "transformer_encoder", "--set", "heads=3", "--set", "layers=0", "-o", "out"]));
    assert_eq!(
        e,
        "error: transformer_encoder: `layers` must be between 1 and 1000, found 0\n\
         error: transformer_encoder: `heads` (3) must divide `d_model` (512)\n2 errors\n"
    );

    let e =
        fails(smelt_in(&dir, &["zoo", "dqn_head", "--set", "features=16777216", "--set", "hidden=4096", "-o", "out"]));
    assert!(
        e.contains(
            "error: dqn_head with these settings has 68719554578 parameters; the zoo draws at most 268435456"
        ),
        "{e}"
    );

    let e = fails(smelt_in(&dir, &["zoo"]));
    assert!(e.starts_with("error: name a model: resnet18, "), "{e}");
    assert!(files(&dir).is_empty(), "a failed command wrote {:?}", files(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}
