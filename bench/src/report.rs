//! The results of a benchmark run and what is made of them: one entry per model ×
//! system × thread count, merged from ONNX Runtime's JSON (scripts/bench/ort_bench.py)
//! and this crate's measurements; the table (median and min per system, smelt's ratio
//! to the best peer, compile times) and the check of the performance targets.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The peers smelt is compared with, in table order.
pub const PEERS: [&str; 2] = ["onnxruntime", "tract"];
/// The smelt backends tried, in table order (`smelt-<backend>`).
pub const SMELT: [&str; 2] = ["smelt-cranelift", "smelt-llvm"];

/// How a system fared on a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Outputs agree with ONNX Runtime's; timed.
    Ok,
    /// Outputs disagree with ONNX Runtime's: reported, not timed.
    Mismatch,
    /// The system cannot run the model (an unsupported op, a backend not built).
    #[serde(rename = "n/a")]
    NotAvailable,
    /// It failed while running.
    Error,
}

/// A kernel call of smelt's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelCost {
    pub kernel: String,
    pub node: String,
    /// The op of the node in the optimized graph, and the kernel's part of it when
    /// the op takes several kernels (`fused_conv2d/gemm`, `lstm/steps`).
    #[serde(default)]
    pub kind: String,
    pub ms: f64,
}

/// Profile time summed by kind, largest first: (kind, ms, calls).
pub fn by_kind(profile: &[KernelCost]) -> Vec<(String, f64, usize)> {
    let mut v: Vec<(String, f64, usize)> = Vec::new();
    for k in profile {
        match v.iter_mut().find(|(kind, ..)| *kind == k.kind) {
            Some(e) => {
                e.1 += k.ms;
                e.2 += 1;
            }
            None => v.push((k.kind.clone(), k.ms, 1)),
        }
    }
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// One model × system × thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub model: String,
    pub system: String,
    pub threads: usize,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_ms: Option<f64>,
    /// Model load + compilation (for ONNX Runtime: session creation; for tract:
    /// load, optimize, plan; for smelt: the backend's compile and plan of the
    /// already optimized graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_ms: Option<f64>,
    /// smelt only: the `-O2` pipeline on the imported graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize_ms: Option<f64>,
    /// max |output − ONNX Runtime's| / max |ONNX Runtime's|, over all outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rel_err: Option<f64>,
    /// Why it is n/a, an error, or what mismatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// smelt only: the slowest kernel calls of one profiled run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<KernelCost>,
}

impl Entry {
    /// An entry with a status and nothing measured yet.
    pub fn new(model: &str, system: &str, threads: usize, status: Status) -> Entry {
        Entry {
            model: model.to_string(),
            system: system.to_string(),
            threads,
            status,
            median_ms: None,
            min_ms: None,
            mean_ms: None,
            compile_ms: None,
            optimize_ms: None,
            max_rel_err: None,
            note: None,
            profile: Vec::new(),
        }
    }

    /// The median when the entry was timed.
    pub fn timed(&self) -> Option<f64> {
        if self.status == Status::Ok { self.median_ms } else { None }
    }
}

/// The machine a run was made on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
    /// /proc/loadavg's 1-minute load when the measurements started.
    #[serde(default)]
    pub load: Option<f64>,
    /// One core's f32 FMA peak, GFLOP/s (smelt's probe: independent FMA chains).
    #[serde(default)]
    pub peak_gflops: Option<f64>,
    /// One core's int8 peak with AVX512-VNNI `vpdpbusd`, GOP/s.
    #[serde(default)]
    pub int8_gops: Option<f64>,
    /// One core's read bandwidth, GB/s.
    #[serde(default)]
    pub bandwidth_gbs: Option<f64>,
}

/// A whole run: what `bench/results/<date>.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub date: String,
    pub smelt_commit: String,
    pub machine: Machine,
    /// System → version.
    pub versions: BTreeMap<String, String>,
    pub opt_level: String,
    pub runs: usize,
    pub warmup: usize,
    pub tolerance: f64,
    /// FLOPs of one run of each model (two per multiply-add of its products).
    #[serde(default)]
    pub flops: BTreeMap<String, f64>,
    /// The tuning file smelt's backends ran with (`smelt tune`), if any.
    #[serde(default)]
    pub tuning: Option<String>,
    pub entries: Vec<Entry>,
}

/// ONNX Runtime's JSON as ort_bench.py writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct OrtDoc {
    pub version: String,
    pub results: Vec<OrtResult>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrtResult {
    pub model: String,
    pub threads: usize,
    pub compile_ms: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    pub mean_ms: f64,
}

impl Run {
    /// Adds ONNX Runtime's results (the reference: always `ok`).
    pub fn add_ort(&mut self, doc: &OrtDoc) {
        self.versions.insert("onnxruntime".into(), doc.version.clone());
        for r in &doc.results {
            let mut e = Entry::new(&r.model, "onnxruntime", r.threads, Status::Ok);
            e.median_ms = Some(r.median_ms);
            e.min_ms = Some(r.min_ms);
            e.mean_ms = Some(r.mean_ms);
            e.compile_ms = Some(r.compile_ms);
            self.entries.push(e);
        }
    }

    pub fn get(&self, model: &str, system: &str, threads: usize) -> Option<&Entry> {
        self.entries.iter().find(|e| e.model == model && e.system == system && e.threads == threads)
    }

    /// Models in the order they first appear.
    pub fn models(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !v.contains(&e.model.as_str()) {
                v.push(&e.model);
            }
        }
        v
    }

    /// Thread counts, ascending.
    pub fn threads(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.entries.iter().map(|e| e.threads).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The smelt backends present in the entries, in table order.
    pub fn smelt_systems(&self) -> Vec<&'static str> {
        SMELT.iter().copied().filter(|s| self.entries.iter().any(|e| e.system == *s)).collect()
    }

    /// The fastest timed peer on a model at a thread count: (system, median).
    pub fn best_peer(&self, model: &str, threads: usize) -> Option<(&'static str, f64)> {
        PEERS
            .iter()
            .filter_map(|p| self.get(model, p, threads).and_then(Entry::timed).map(|t| (*p, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// A system's median over a peer's (lower is better); `None` unless both were timed.
    pub fn ratio_to(&self, model: &str, system: &str, peer: &str, threads: usize) -> Option<f64> {
        let s = self.get(model, system, threads)?.timed()?;
        let p = self.get(model, peer, threads)?.timed()?;
        Some(s / p)
    }

    /// A system's minimum over the smallest minimum of the timed peers: on a busy
    /// machine the minima are the better estimate of what each system can do.
    pub fn min_ratio_to_best(&self, model: &str, system: &str, threads: usize) -> Option<f64> {
        let min = |e: &Entry| if e.status == Status::Ok { e.min_ms } else { None };
        let s = min(self.get(model, system, threads)?)?;
        let p = PEERS.iter().filter_map(|p| self.get(model, p, threads).and_then(min)).min_by(f64::total_cmp)?;
        Some(s / p)
    }

    /// A system's median over the best peer's.
    pub fn ratio_to_best(&self, model: &str, system: &str, threads: usize) -> Option<f64> {
        let s = self.get(model, system, threads)?.timed()?;
        let (_, p) = self.best_peer(model, threads)?;
        Some(s / p)
    }
}

/// A time in ms with precision that suits its size.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// A table cell for an entry: `median (min)`, or why there is no time.
fn cell(e: Option<&Entry>) -> String {
    let Some(e) = e else { return "–".into() };
    match (e.status, e.median_ms, e.min_ms) {
        (Status::Ok, Some(m), Some(n)) => format!("{} ({})", fmt_ms(m), fmt_ms(n)),
        (Status::Ok, Some(m), None) => fmt_ms(m),
        (Status::Mismatch, ..) => match e.max_rel_err {
            Some(r) => format!("mismatch {r:.1e}"),
            None => "mismatch".into(),
        },
        (Status::NotAvailable, ..) => "n/a".into(),
        _ => "error".into(),
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "–".into())
}

/// Short column names for systems.
fn short(system: &str) -> &str {
    match system {
        "onnxruntime" => "ORT",
        s => s.strip_prefix("smelt-").unwrap_or(s),
    }
}

/// The table in Markdown, columns padded so that it also reads as plain text:
/// one row per model × thread count; each system's `median (min)` ms; each smelt
/// backend's ratio to the best peer, of medians (of minima); each smelt backend's
/// compile time.
pub fn table(run: &Run) -> String {
    let smelt = run.smelt_systems();
    let mut header: Vec<String> = vec!["model".into(), "threads".into()];
    header.extend(PEERS.iter().map(|p| format!("{} ms", short(p))));
    header.extend(smelt.iter().map(|s| format!("{} ms", short(s))));
    header.extend(smelt.iter().map(|s| format!("{} / best peer", short(s))));
    header.extend(smelt.iter().map(|s| format!("{} compile ms", short(s))));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for model in run.models() {
        for t in run.threads() {
            if run.entries.iter().all(|e| e.model != model || e.threads != t) {
                continue;
            }
            let mut row = vec![model.to_string(), t.to_string()];
            row.extend(PEERS.iter().map(|p| cell(run.get(model, p, t))));
            row.extend(smelt.iter().map(|s| cell(run.get(model, s, t))));
            row.extend(smelt.iter().map(|s| {
                match (run.ratio_to_best(model, s, t), run.min_ratio_to_best(model, s, t)) {
                    (Some(r), Some(m)) => format!("{r:.2}× ({m:.2}×)"),
                    (r, _) => ratio(r),
                }
            }));
            row.extend(smelt.iter().map(|s| match run.get(model, s, t) {
                Some(e) if e.status != Status::NotAvailable => e.compile_ms.map(fmt_ms).unwrap_or("–".into()),
                _ => "–".into(),
            }));
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(&widths) {
            // Names left, numbers right.
            let pad = w - c.chars().count();
            if s.len() == 1 {
                let _ = write!(s, " {c}{} |", " ".repeat(pad));
            } else {
                let _ = write!(s, " {}{c} |", " ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, " {} |", "-".repeat(*w));
        } else {
            let _ = write!(out, " {}: |", "-".repeat(w.saturating_sub(1)));
        }
    }
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

/// The performance targets and how this run fared, one line each, and the notes
/// (mismatches, n/a, errors) of every entry.
/// The machine's probed peaks in words (empty when none were measured).
pub fn peaks(m: &Machine) -> String {
    let mut parts = Vec::new();
    if let Some(p) = m.peak_gflops {
        parts.push(format!("f32 FMA peak {p:.0} GFLOP/s per core"));
    }
    if let Some(q) = m.int8_gops {
        parts.push(format!("int8 VNNI peak {q:.0} GOP/s per core"));
    }
    if let Some(b) = m.bandwidth_gbs {
        parts.push(format!("read bandwidth {b:.1} GB/s per core"));
    }
    parts.join(", ")
}

/// Each model's arithmetic rate with each system at each thread count, and its
/// share of the cores' peak (`run.flops`: two per multiply-add of the model's
/// products): the f32 FMA peak, or for `*_int8` models the int8 VNNI peak where
/// it was probed. A Markdown table, empty without FLOP counts.
pub fn rates(run: &Run) -> String {
    let mut systems: Vec<&str> = vec!["onnxruntime"];
    systems.extend(run.smelt_systems());
    let mut out = String::new();
    let cols: Vec<(String, &str, usize)> =
        run.threads().into_iter().flat_map(|t| systems.iter().map(move |s| (format!("{} {t}T", short(s)), *s, t))).collect();
    let _ = writeln!(out, "| model | GFLOP | {} |", cols.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(cols.len()));
    let mut any = false;
    for m in run.models() {
        let Some(&f) = run.flops.get(m).filter(|f| **f > 0.0) else { continue };
        any = true;
        let int8 = m.ends_with("_int8") && run.machine.int8_gops.is_some();
        let peak = if int8 { run.machine.int8_gops.unwrap_or(0.0) } else { run.machine.peak_gflops.unwrap_or(0.0) };
        let cells: Vec<String> = cols
            .iter()
            .map(|(_, s, t)| match run.get(m, s, *t).and_then(Entry::timed) {
                Some(ms) => {
                    let rate = f / (ms * 1e-3) * 1e-9;
                    if peak > 0.0 { format!("{rate:.0} ({:.0}%)", 100.0 * rate / (peak * *t as f64)) } else { format!("{rate:.0}") }
                }
                None => "–".into(),
            })
            .collect();
        let name = if int8 { format!("{m} (of the int8 peak)") } else { m.to_string() };
        let _ = writeln!(out, "| {name} | {:.2} | {} |", f * 1e-9, cells.join(" | "));
    }
    if any { out } else { String::new() }
}

pub fn targets(run: &Run) -> String {
    let mut out = String::new();
    let check = |system: &str, limit: f64| -> (usize, usize, Vec<String>) {
        let (mut met, mut total, mut misses) = (0, 0, Vec::new());
        for m in run.models() {
            let Some(r) = run.ratio_to(m, system, "onnxruntime", 1) else { continue };
            total += 1;
            if r <= limit {
                met += 1;
            } else {
                misses.push(format!("{m} {r:.2}×"));
            }
        }
        (met, total, misses)
    };
    for (system, limit) in [("smelt-llvm", 1.0), ("smelt-cranelift", 1.5)] {
        let (met, total, misses) = check(system, limit);
        let _ = write!(out, "- {} ≤ {limit:.1}× ONNX Runtime at 1 thread: ", short(system));
        if total == 0 {
            out.push_str("not measured (no timed runs)\n");
        } else if misses.is_empty() {
            let _ = writeln!(out, "met on all {total} timed models");
        } else {
            let _ = writeln!(out, "met on {met} of {total}; missed: {}", misses.join(", "));
        }
    }
    // Faster than tract on every model (any smelt backend, each thread count).
    let (mut met, mut total, mut misses) = (0, 0, Vec::new());
    for m in run.models() {
        for t in run.threads() {
            let best = run
                .smelt_systems()
                .into_iter()
                .filter_map(|s| run.ratio_to(m, s, "tract", t).map(|r| (s, r)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let Some((s, r)) = best else { continue };
            total += 1;
            if r < 1.0 {
                met += 1;
            } else {
                misses.push(format!("{m} at {t} thread{} ({} {r:.2}×)", if t == 1 { "" } else { "s" }, short(s)));
            }
        }
    }
    if total == 0 {
        out.push_str("- smelt faster than tract: not measured\n");
    } else if misses.is_empty() {
        let _ = writeln!(out, "- smelt faster than tract: on all {total} model × thread rows");
    } else {
        let _ = writeln!(out, "- smelt faster than tract: on {met} of {total} rows; slower on {}", misses.join(", "));
    }
    // The same reason for every thread count is said once.
    let mut seen: Vec<String> = Vec::new();
    for e in run.entries.iter().filter(|e| e.status != Status::Ok) {
        let Some(n) = &e.note else { continue };
        let key = format!("{} on {}: {n}", e.system, e.model);
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    if !seen.is_empty() {
        out.push_str("\nNot timed:\n");
        for k in seen {
            let _ = writeln!(out, "- {k}");
        }
    }
    out
}

/// The slowest kernels of smelt's profile per model (1 thread, the first smelt
/// backend that has a profile), for the models where smelt is slower than the best peer.
pub fn profiles(run: &Run, top: usize) -> String {
    let mut out = String::new();
    for m in run.models() {
        for s in run.smelt_systems() {
            let Some(e) = run.get(m, s, 1) else { continue };
            if e.profile.is_empty() {
                continue;
            }
            let r = run.ratio_to_best(m, s, 1);
            if r.is_some_and(|r| r <= 1.0) {
                continue;
            }
            let total: f64 = e.profile.iter().map(|k| k.ms).sum();
            let share = |ms: f64| if total > 0.0 { 100.0 * ms / total } else { 0.0 };
            let _ = writeln!(
                out,
                "{m}, {} ({} vs best peer), {} kernel calls, {} ms in one profiled run:",
                short(s),
                ratio(r),
                e.profile.len(),
                fmt_ms(total)
            );
            let kinds: Vec<String> = by_kind(&e.profile)
                .into_iter()
                .take(top)
                .map(|(kind, ms, n)| format!("{kind} {:.0}% ({n})", share(ms)))
                .collect();
            let _ = writeln!(out, "  by kind: {}", kinds.join(", "));
            let mut slowest: Vec<&KernelCost> = e.profile.iter().collect();
            slowest.sort_by(|a, b| b.ms.total_cmp(&a.ms));
            for k in slowest.into_iter().take(top) {
                let _ = writeln!(out, "  {:>9} ms  {:>5.1}%  {} ({})", fmt_ms(k.ms), share(k.ms), k.kernel, k.kind);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(model: &str, system: &str, threads: usize, ms: f64) -> Entry {
        let mut e = Entry::new(model, system, threads, Status::Ok);
        e.median_ms = Some(ms);
        e.min_ms = Some(ms * 0.9);
        e.compile_ms = Some(5.0);
        e
    }

    fn sample() -> Run {
        let mut run = Run { tolerance: 1e-4, ..Run::default() };
        run.add_ort(&OrtDoc {
            version: "1.0".into(),
            results: vec![
                OrtResult {
                    model: "a".into(),
                    threads: 1,
                    compile_ms: 3.0,
                    median_ms: 10.0,
                    min_ms: 9.0,
                    mean_ms: 10.0,
                },
                OrtResult { model: "b".into(), threads: 1, compile_ms: 3.0, median_ms: 4.0, min_ms: 3.5, mean_ms: 4.0 },
            ],
        });
        run.entries.push(timed("a", "tract", 1, 8.0));
        run.entries.push(timed("a", "smelt-cranelift", 1, 12.0));
        let mut na = Entry::new("a", "smelt-llvm", 1, Status::NotAvailable);
        na.note = Some("not supported on llvm: conv2d at node c1".into());
        run.entries.push(na);
        run.entries.push(timed("b", "tract", 1, 6.0));
        let mut mm = Entry::new("b", "smelt-cranelift", 1, Status::Mismatch);
        mm.max_rel_err = Some(0.03);
        mm.note = Some("output y: max relative error 3.0e-2".into());
        run.entries.push(mm);
        run
    }

    #[test]
    fn ratios_use_the_fastest_timed_peer() {
        let run = sample();
        assert_eq!(run.best_peer("a", 1), Some(("tract", 8.0)));
        assert_eq!(run.ratio_to_best("a", "smelt-cranelift", 1), Some(1.5));
        assert_eq!(run.ratio_to("a", "smelt-cranelift", "onnxruntime", 1), Some(1.2));
        // Not timed: no ratio.
        assert_eq!(run.ratio_to_best("a", "smelt-llvm", 1), None);
        // Minima: cranelift 10.8 over tract's 7.2.
        assert_eq!(run.min_ratio_to_best("a", "smelt-cranelift", 1), Some(1.5));
        let mut run2 = run.clone();
        run2.entries.iter_mut().find(|e| e.model == "a" && e.system == "onnxruntime").unwrap().min_ms = Some(5.4);
        assert_eq!(run2.min_ratio_to_best("a", "smelt-cranelift", 1), Some(2.0));
        assert_eq!(run2.ratio_to_best("a", "smelt-cranelift", 1), Some(1.5));
        assert_eq!(run.ratio_to_best("b", "smelt-cranelift", 1), None);
        assert_eq!(run.best_peer("b", 1), Some(("onnxruntime", 4.0)));
        assert_eq!(run.best_peer("c", 1), None);
    }

    #[test]
    fn table_rows_cells_and_ratios() {
        let t = table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("| model | threads |      ORT ms |    tract ms |"), "{t}");
        assert!(lines[0].contains("cranelift / best peer") && lines[0].contains("llvm compile ms"), "{t}");
        assert!(lines[1].starts_with("| ----- |"), "{t}");
        let a: Vec<&str> = lines[2].split('|').map(str::trim).collect();
        assert_eq!(
            a[1..a.len() - 1],
            ["a", "1", "10.0 (9.00)", "8.00 (7.20)", "12.0 (10.8)", "n/a", "1.50× (1.50×)", "–", "5.00", "–"]
        );
        let b: Vec<&str> = lines[3].split('|').map(str::trim).collect();
        assert_eq!(b[5], "mismatch 3.0e-2");
        assert_eq!(b[7], "–");
        // Every line has the same width (padded columns).
        assert!(lines.iter().all(|l| l.chars().count() == lines[0].chars().count()), "{t}");
    }

    #[test]
    fn targets_name_the_misses() {
        let t = targets(&sample());
        assert!(t.contains("- cranelift ≤ 1.5× ONNX Runtime at 1 thread: met on all 1 timed models"), "{t}");
        assert!(t.contains("- llvm ≤ 1.0× ONNX Runtime at 1 thread: not measured"), "{t}");
        assert!(t.contains("slower on a at 1 thread (cranelift 1.50×)"), "{t}");
        assert!(t.contains("- smelt-llvm on a: not supported on llvm: conv2d at node c1"), "{t}");
        assert!(t.contains("- smelt-cranelift on b: output y: max relative error 3.0e-2"), "{t}");
    }

    #[test]
    fn entries_round_trip_through_json() {
        let run = sample();
        let text = serde_json::to_string(&run).unwrap();
        assert!(text.contains("\"status\":\"n/a\""), "{text}");
        let back: Run = serde_json::from_str(&text).unwrap();
        assert_eq!(back, run);
    }

    #[test]
    fn profiles_group_by_kind_for_slow_models_only() {
        let mut run = sample();
        let k = |kernel: &str, kind: &str, ms: f64| KernelCost {
            kernel: kernel.into(),
            node: "n".into(),
            kind: kind.into(),
            ms,
        };
        let prof = vec![
            k("c1_gemm", "fused_conv2d/gemm", 3.0),
            k("r", "reshape", 4.0),
            k("c2_gemm", "fused_conv2d/gemm", 2.0),
        ];
        assert_eq!(by_kind(&prof), vec![("fused_conv2d/gemm".to_string(), 5.0, 2), ("reshape".to_string(), 4.0, 1)]);
        run.entries.iter_mut().find(|e| e.model == "a" && e.system == "smelt-cranelift").unwrap().profile = prof;
        let p = profiles(&run, 2);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "a, cranelift (1.50× vs best peer), 3 kernel calls, 9.00 ms in one profiled run:", "{p}");
        assert_eq!(lines[1], "  by kind: fused_conv2d/gemm 56% (2), reshape 44% (1)", "{p}");
        assert!(lines[2].contains("4.00 ms   44.4%  r (reshape)"), "{p}");
        assert_eq!(lines.len(), 4, "{p}");
        // Faster than the best peer: no profile shown.
        run.entries.iter_mut().find(|e| e.model == "a" && e.system == "smelt-cranelift").unwrap().median_ms = Some(7.0);
        assert_eq!(profiles(&run, 2), "");
    }

    #[test]
    fn ms_formatting() {
        assert_eq!(fmt_ms(123.4), "123");
        assert_eq!(fmt_ms(12.34), "12.3");
        assert_eq!(fmt_ms(1.234), "1.23");
        assert_eq!(fmt_ms(0.1234), "0.123");
    }
}
