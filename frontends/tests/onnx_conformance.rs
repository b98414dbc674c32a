//! ONNX backend conformance: every case of the onnx 1.22.0 backend test data
//! (`node`, `pytorch-converted`, `pytorch-operator`, `simple`) is imported and run on
//! the reference interpreter, and its outputs compared with ONNX's tolerances.
//!
//! Prints a table per op (passed / failed / unsupported / skipped) and writes every
//! case's outcome to `onnx-conformance.txt` in the data folder. Fails when a case of
//! the committed pass list (`tests/onnx/pass-list.txt`, which must exist) stops
//! passing, or passes only with frozen inputs where it passed without.
//! `SMELT_ONNX_UPDATE_PASS_LIST=1` rewrites the pass list from this run.
//!
//! The data is not in git: `scripts/onnx/fetch-test-data.sh` (run by `test.sh`) puts
//! it in `target/onnx-test-data` (or `$SMELT_ONNX_DATA`). Without it the test fails.
//! A case with no expected outputs fails (it would pass vacuously), and so does
//! test data the decoder cannot read (unless its dtype is one smelt lacks).
//!
//! Parameter inputs that smelt needs static (a Reshape target, Slice bounds, TopK's
//! k, …) but that a case feeds as graph inputs are frozen to the case's data at
//! import time; such passes are counted apart ("frozen") and listed as
//! `CASE frozen` in the pass list.

#[path = "onnx/common/mod.rs"]
mod common;

use common::{Outcome, data_dir, missing_data, run_case};
use smelt_frontends::onnx::decode_model;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const SUITES: &[&str] = &["node", "pytorch-converted", "pytorch-operator", "simple"];

fn pass_list_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/pass-list.txt")
}

/// The op types of a model's nodes.
fn ops_of(dir: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(dir.join("model.onnx")) else { return vec![] };
    let Ok(m) = decode_model(&bytes) else { return vec![] };
    m.graph
        .map(|g| {
            g.node
                .iter()
                .map(|n| match n.domain() {
                    "" | "ai.onnx" => n.op_type().to_string(),
                    d => format!("{d}:{}", n.op_type()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The op a node case tests: its single node's, the one of the case it expands, or
/// the op whose name best prefixes the case name.
fn primary_ops(cases: &[(String, PathBuf)]) -> BTreeMap<String, String> {
    let ops: BTreeMap<&String, Vec<String>> = cases.iter().map(|(n, d)| (n, ops_of(d))).collect();
    let single: BTreeMap<&str, &str> =
        ops.iter().filter(|(_, o)| o.len() == 1).map(|(n, o)| (n.as_str(), o[0].as_str())).collect();
    let known: BTreeSet<&str> = single.values().copied().collect();
    let squash = |s: &str| s.to_lowercase().replace('_', "");
    let mut out = BTreeMap::new();
    for (name, _) in cases {
        let n = name.as_str();
        let base = n.find("_expanded").map(|i| &n[..i]).unwrap_or(n);
        let op = single.get(n).or_else(|| single.get(base)).map(|s| s.to_string()).or_else(|| {
            let key = squash(n.trim_start_matches("test_"));
            known
                .iter()
                .filter(|op| key.starts_with(&squash(op.rsplit(':').next().unwrap_or(op))))
                .max_by_key(|op| op.len())
                .map(|s| s.to_string())
        });
        out.insert(name.clone(), op.unwrap_or_else(|| "(other)".into()));
    }
    out
}

/// The pass list: each case, and whether it passes only with frozen inputs.
fn read_pass_list() -> BTreeMap<String, bool> {
    let p = pass_list_path();
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e} (the pass list is part of the repository)", p.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(' ') {
            Some((n, "frozen")) => (n.to_string(), true),
            Some((n, rest)) => panic!("{}: `{n} {rest}`: only `frozen` may follow a case", p.display()),
            None => (l.to_string(), false),
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Row {
    cases: usize,
    passed: usize,
    frozen: usize,
    failed: usize,
    unsupported: usize,
    skipped: usize,
}

impl Row {
    fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        match o {
            Outcome::Passed { frozen } => {
                self.passed += 1;
                self.frozen += *frozen as usize;
            }
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Unsupported(_) => self.unsupported += 1,
            Outcome::Skipped(_) => self.skipped += 1,
        }
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<42} {:>5} {:>6} {:>6} {:>6} {:>11} {:>7}",
            self.cases, self.passed, self.frozen, self.failed, self.unsupported, self.skipped
        )
    }
}

/// A case that runs longer than this is reported as failed (and its thread left
/// behind), so that one hang cannot stall the suite.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs every case on a few worker threads, with a watchdog.
fn run_all(cases: &[(String, PathBuf)]) -> BTreeMap<String, Outcome> {
    let queue: Arc<Mutex<VecDeque<(String, PathBuf)>>> = Arc::new(Mutex::new(cases.iter().cloned().collect()));
    // Per worker: the case it is on and since when.
    let (tx, rx) = mpsc::channel::<(usize, String, Option<Outcome>)>();
    let spawn = |id: usize| {
        let (queue, tx) = (queue.clone(), tx.clone());
        std::thread::spawn(move || {
            loop {
                let next = queue.lock().expect("lock").pop_front();
                let Some((name, dir)) = next else { break };
                if tx.send((id, name.clone(), None)).is_err() {
                    break;
                }
                let t0 = Instant::now();
                let o = std::panic::catch_unwind(|| run_case(&dir))
                    .unwrap_or_else(|_| Outcome::Failed("panic in the importer or harness".into()));
                let dt = t0.elapsed().as_secs_f64();
                if dt > 5.0 || std::env::var_os("SMELT_ONNX_VERBOSE").is_some() {
                    eprintln!("{name}: {dt:.1} s");
                }
                if tx.send((id, name, Some(o))).is_err() {
                    break;
                }
            }
        });
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
    let mut running: BTreeMap<usize, (String, Instant)> = BTreeMap::new();
    let mut next_id = 0;
    for _ in 0..threads {
        spawn(next_id);
        next_id += 1;
    }
    let mut results = BTreeMap::new();
    while results.len() < cases.len() {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok((id, name, None)) => {
                running.insert(id, (name, Instant::now()));
            }
            Ok((id, name, Some(o))) => {
                running.remove(&id);
                results.insert(name, o);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let stuck: Vec<usize> =
            running.iter().filter(|(_, (_, t))| t.elapsed() > CASE_TIMEOUT).map(|(i, _)| *i).collect();
        for id in stuck {
            let (name, _) = running.remove(&id).expect("running");
            eprintln!("{name}: timed out after {} s", CASE_TIMEOUT.as_secs());
            results.insert(name, Outcome::Failed(format!("timed out after {} s", CASE_TIMEOUT.as_secs())));
            spawn(next_id);
            next_id += 1;
        }
    }
    results
}

#[test]
fn onnx_backend_conformance() {
    let root = data_dir();
    if !root.join("node").is_dir() {
        missing_data("onnx_backend_conformance", &root);
        return;
    }
    // (suite/case, folder)
    let mut cases: Vec<(String, PathBuf)> = Vec::new();
    for s in SUITES {
        let Ok(rd) = std::fs::read_dir(root.join(s)) else { continue };
        let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        cases.extend(names.into_iter().map(|n| (format!("{s}/{n}"), root.join(s).join(&n))));
    }
    let node_cases: Vec<(String, PathBuf)> = cases
        .iter()
        .filter(|(n, _)| n.starts_with("node/"))
        .map(|(n, d)| (n["node/".len()..].to_string(), d.clone()))
        .collect();
    let primary = primary_ops(&node_cases);

    let results = run_all(&cases);

    // Table: one row per op of the node suite, one per other suite, totals.
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut suites: BTreeMap<&str, Row> = BTreeMap::new();
    let mut total = Row::default();
    for (name, o) in &results {
        let (suite, case) = name.split_once('/').expect("suite/case");
        let key = if suite == "node" { primary.get(case).cloned().unwrap_or_default() } else { format!("[{suite}]") };
        rows.entry(key).or_default().add(o);
        suites.entry(SUITES.iter().find(|s| **s == suite).copied().unwrap_or("?")).or_default().add(o);
        total.add(o);
    }
    let head = format!(
        "{:<42} {:>5} {:>6} {:>6} {:>6} {:>11} {:>7}",
        "op", "cases", "passed", "frozen", "failed", "unsupported", "skipped"
    );
    let mut report = vec![head.clone(), "-".repeat(head.len())];
    report.extend(rows.iter().map(|(k, r)| r.line(k)));
    report.push("-".repeat(head.len()));
    report.extend(suites.iter().map(|(k, r)| r.line(&format!("suite {k}"))));
    report.push(total.line("total"));
    println!("{}", report.join("\n"));

    let mut detail: Vec<String> = Vec::new();
    for (name, o) in &results {
        detail.push(match o {
            Outcome::Passed { frozen: false } => format!("{name}: passed"),
            Outcome::Passed { frozen: true } => format!("{name}: passed (frozen inputs)"),
            Outcome::Failed(m) => format!("{name}: FAILED: {m}"),
            Outcome::Unsupported(m) => format!("{name}: unsupported: {m}"),
            Outcome::Skipped(m) => format!("{name}: skipped: {m}"),
        });
    }
    let report_path = root.join("onnx-conformance.txt");
    let _ = std::fs::write(&report_path, format!("{}\n\n{}\n", report.join("\n"), detail.join("\n")));
    println!("every case's outcome: {}", report_path.display());

    // Each passing case, and whether it needed frozen inputs.
    let passing: BTreeMap<String, bool> = results
        .iter()
        .filter_map(|(n, o)| match o {
            Outcome::Passed { frozen } => Some((n.clone(), *frozen)),
            _ => None,
        })
        .collect();
    if std::env::var("SMELT_ONNX_UPDATE_PASS_LIST").is_ok_and(|v| v == "1") {
        let body: Vec<String> = passing.iter().map(|(n, f)| if *f { format!("{n} frozen") } else { n.clone() }).collect();
        let text = format!(
            "# ONNX backend test cases (onnx 1.22.0 data) that must pass on the reference interpreter.\n\
             # Written by SMELT_ONNX_UPDATE_PASS_LIST=1 cargo test -p smelt-frontends --test onnx_conformance\n{}\n",
            body.join("\n")
        );
        std::fs::write(pass_list_path(), text).expect("write the pass list");
        println!("wrote {} cases to {}", passing.len(), pass_list_path().display());
        return;
    }
    let listed = read_pass_list();
    let newly: Vec<&String> = passing.keys().filter(|n| !listed.contains_key(*n)).collect();
    if !newly.is_empty() {
        println!("{} passing cases are not in the pass list (SMELT_ONNX_UPDATE_PASS_LIST=1 adds them)", newly.len());
    }
    let regressed: Vec<String> = listed
        .iter()
        .filter(|(n, frozen)| match passing.get(*n) {
            None => true,
            // Passing with frozen inputs where it passed without is a regression.
            Some(f) => *f && !**frozen,
        })
        .map(|(n, _)| match results.get(n) {
            Some(Outcome::Passed { .. }) => format!("{n}: passes only with frozen inputs now"),
            Some(Outcome::Failed(m)) => format!("{n}: failed: {m}"),
            Some(Outcome::Unsupported(m)) => format!("{n}: unsupported: {m}"),
            Some(Outcome::Skipped(m)) => format!("{n}: skipped: {m}"),
            _ => format!("{n}: missing from the data"),
        })
        .collect();
    assert!(
        regressed.is_empty(),
        "{} cases of the pass list no longer pass:\n{}",
        regressed.len(),
        regressed.join("\n")
    );
}
