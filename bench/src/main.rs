//! `smelt-bench`: the peer benchmark's Rust half (`scripts/bench/run.sh` drives it).
//!
//! - `smelt-bench measure --models DIR --ort-python PY --out run.json`: ONNX Runtime
//!   (through `scripts/bench/ort_bench.py serve`), tract and smelt's backends on each
//!   model, checked against ONNX Runtime's outputs (`DIR/MODEL.io.safetensors`), and
//!   timed side by side at each thread count (one run of each per round).
//! - `smelt-bench report --native run.json [--ort ort.json] ...`: prints the table,
//!   the targets and where smelt loses time, and writes the results JSON, the SVG
//!   plot and README.md's Performance section. `--ort` merges ONNX Runtime's times
//!   from `ort_bench.py time` when `measure` ran without the worker.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use smelt_bench::measure::{self, Settings};
use smelt_bench::report::{OrtDoc, Run};
use smelt_bench::{machine, ort, readme, report, svg};
use smelt_engine::{BackendKind as Backend, OptLevel};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(name = "smelt-bench")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Measure smelt's backends and tract on the models.
    Measure {
        /// The folder of MODEL.onnx and MODEL.io.safetensors.
        #[arg(long)]
        models: PathBuf,
        /// The models, in table order (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        names: Vec<String>,
        /// Thread counts (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// smelt backends to try; one that cannot compile a model is reported n/a.
        #[arg(long, value_delimiter = ',', default_value = "cranelift,llvm")]
        backends: Vec<String>,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// The largest accepted max |Δ| / max |expected| against ONNX Runtime.
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f64,
        /// Skip tract.
        #[arg(long)]
        no_tract: bool,
        /// The Python that runs the ONNX Runtime worker (none: ONNX Runtime is not
        /// timed here; merge `ort_bench.py time`'s JSON in `report`).
        #[arg(long)]
        ort_python: Option<PathBuf>,
        /// The worker's script.
        #[arg(long, default_value = "scripts/bench/ort_bench.py")]
        ort_script: PathBuf,
        /// Where to write the measurements (JSON).
        #[arg(long)]
        out: PathBuf,
        /// A tuning database (`smelt tune`): smelt's backends run with its entry
        /// for this CPU, backend and thread count.
        #[arg(long)]
        tuning: Option<PathBuf>,
    },
    /// Merge with ONNX Runtime's results and write the report.
    Report {
        /// ONNX Runtime's JSON from `ort_bench.py time`, when `measure` had no worker.
        #[arg(long)]
        ort: Option<PathBuf>,
        #[arg(long)]
        native: PathBuf,
        /// The run's date and time (the results file is RESULTS/DATE.json).
        #[arg(long)]
        date: String,
        /// smelt's commit.
        #[arg(long)]
        commit: String,
        /// The history folder (bench/results): DATE.json and latest.svg go there.
        #[arg(long)]
        results: PathBuf,
        /// README.md to update (its Performance section); none: leave it.
        #[arg(long)]
        readme: Option<PathBuf>,
    },
}

fn backend(name: &str) -> anyhow::Result<Backend> {
    match name {
        "cranelift" => Ok(Backend::Cranelift),
        "llvm" => Ok(Backend::Llvm),
        "wgsl" => Ok(Backend::Wgsl),
        _ => anyhow::bail!("unknown backend `{name}` (cranelift, llvm, wgsl)"),
    }
}

fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn progress(e: &report::Entry) {
    let what = match (e.status, e.median_ms, e.min_ms) {
        (report::Status::Ok, Some(m), Some(n)) => format!("median {m:9.3} ms  min {n:9.3} ms"),
        _ => format!("{:?}: {}", e.status, e.note.as_deref().unwrap_or("")),
    };
    let compile = e.compile_ms.map(|c| format!("  (compile {c:.0} ms)")).unwrap_or_default();
    eprintln!("{:>15} {:>14} {} thread(s): {what}{compile}", e.system, e.model, e.threads);
}

/// What `measure` runs.
struct Plan<'a> {
    models: &'a Path,
    names: &'a [String],
    threads: &'a [usize],
    backends: Vec<Backend>,
    settings: Settings,
    tract: bool,
    tuning: Option<smelt_engine::TuningDb>,
}

/// The output check's tolerance for models named `*_int8` (quantized by ONNX
/// Runtime's tool).
const INT8_TOLERANCE: f64 = 0.1;

fn measure_all(plan: &Plan<'_>, mut ort: Option<ort::Worker>) -> anyhow::Result<Run> {
    let s = &plan.settings;
    let mut run = Run {
        machine: machine::describe(),
        opt_level: "O2".into(),
        runs: s.runs,
        warmup: s.warmup,
        tolerance: s.tolerance,
        ..Run::default()
    };
    if let Some(w) = &ort {
        run.versions.insert("onnxruntime".into(), w.version.clone());
    }
    #[cfg(feature = "tract")]
    if plan.tract {
        run.versions.insert("tract".into(), smelt_bench::tract::VERSION.into());
    }
    #[cfg(not(feature = "tract"))]
    if plan.tract {
        anyhow::bail!("built without the `tract` feature: pass --no-tract");
    }
    for name in plan.names {
        let case = measure::load_case(plan.models, name).with_context(|| format!("model {name}"))?;
        let prepared = measure::prepare(&case, OptLevel::O2);
        if let Some(f) = prepared.as_ref().ok().and_then(|p| smelt_engine::flops::model_flops(&p.graph)) {
            run.flops.insert(name.clone(), f);
        }
        // Quantized models: each system rounds its requantization its own way
        // (smelt in f64, ONNX Runtime in f32), so outputs may move by a step.
        let tolerance = if name.ends_with("_int8") { s.tolerance.max(INT8_TOLERANCE) } else { s.tolerance };
        for &t in plan.threads {
            eprintln!("{name}, {t} thread{}:", if t == 1 { "" } else { "s" });
            let mut subjects: Vec<measure::Prepped<'_>> = Vec::new();
            if let Some(w) = ort.as_mut() {
                subjects.push(w.subject(name, t));
            }
            #[cfg(feature = "tract")]
            if plan.tract {
                subjects.push(smelt_bench::tract::subject(&case, t, tolerance));
            }
            for &b in &plan.backends {
                subjects.push(match &prepared {
                    Ok(p) => measure::smelt_subject(&case, p, b, t, tolerance, plan.tuning.as_ref()),
                    Err(err) => {
                        let mut e = report::Entry::new(name, &measure::system_name(b), t, report::Status::NotAvailable);
                        e.note = Some(format!("{err:#}").replace('\n', " "));
                        (e, None)
                    }
                });
            }
            measure::interleave(&mut subjects, s);
            for (e, _) in subjects {
                progress(&e);
                run.entries.push(e);
            }
        }
    }
    Ok(run)
}

fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Measure {
            models,
            names,
            threads,
            backends,
            runs,
            warmup,
            tolerance,
            no_tract,
            ort_python,
            ort_script,
            out,
            tuning,
        } => {
            anyhow::ensure!(runs >= 1, "--runs must be at least 1");
            anyhow::ensure!(threads.iter().all(|&t| t >= 1), "thread counts must be at least 1");
            let backends: Vec<Backend> = backends.iter().map(|b| backend(b)).collect::<anyhow::Result<_>>()?;
            let worker = match &ort_python {
                Some(py) => Some(ort::Worker::spawn(py, &ort_script, &models).map_err(anyhow::Error::msg)?),
                None => None,
            };
            let plan = Plan {
                models: &models,
                names: &names,
                threads: &threads,
                backends,
                settings: Settings { warmup, runs, tolerance },
                tract: !no_tract,
                tuning: None,
            };
            let plan = match &tuning {
                Some(f) => {
                    let loaded = smelt_engine::TuningDb::load(f);
                    if let Some(w) = &loaded.warning {
                        eprintln!("warning: {w}");
                    }
                    Plan { tuning: Some(loaded.db), ..plan }
                }
                None => plan,
            };
            let mut run = measure_all(&plan, worker)?;
            run.tuning = tuning.map(|f| f.display().to_string());
            write_atomic(&out, &serde_json::to_string_pretty(&run)?)
        }
        Cmd::Report { ort, native, date, commit, results, readme: readme_path } => {
            let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
            let native: Run = serde_json::from_str(&read(&native)?).context("the measurements")?;
            let mut run = Run { date: date.clone(), smelt_commit: commit, entries: Vec::new(), ..native.clone() };
            if let Some(ort) = ort {
                anyhow::ensure!(
                    native.entries.iter().all(|e| e.system != "onnxruntime"),
                    "the measurements already hold ONNX Runtime's times: drop --ort"
                );
                let ort: OrtDoc = serde_json::from_str(&read(&ort)?).context("ONNX Runtime's results")?;
                run.add_ort(&ort);
            }
            run.entries.extend(native.entries);
            let json_path = results.join(format!("{date}.json"));
            let svg_path = results.join("latest.svg");
            write_atomic(&json_path, &(serde_json::to_string_pretty(&run)? + "\n"))?;
            write_atomic(&svg_path, &svg::plot(&run))?;
            println!("{}", report::table(&run));
            let peaks = report::peaks(&run.machine);
            if !peaks.is_empty() {
                println!("{peaks}\n");
            }
            println!("{}", report::rates(&run));
            println!("{}", report::targets(&run));
            let p = report::profiles(&run, 8);
            if !p.is_empty() {
                println!("Where smelt loses time (1 thread):\n{p}");
            }
            println!("wrote {} and {}", json_path.display(), svg_path.display());
            if let Some(path) = readme_path {
                let text = read(&path)?;
                let base = path.parent().unwrap_or(Path::new(""));
                let rel = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
                let body = readme::section(&run, &rel(&svg_path), &rel(&json_path));
                let updated = readme::update(&text, &body).map_err(anyhow::Error::msg)?;
                write_atomic(&path, &updated)?;
                println!("updated {}", path.display());
            }
            Ok(())
        }
    }
}
