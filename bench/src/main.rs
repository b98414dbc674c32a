//! `smelt-bench`: the peer benchmark's Rust half (`scripts/bench/run.sh` drives it).
//!
//! - `smelt-bench measure --models DIR --out native.json`: smelt's backends and
//!   tract on each model, checked against ONNX Runtime's outputs
//!   (`DIR/MODEL.io.safetensors`), timed at each thread count.
//! - `smelt-bench report --ort ort.json --native native.json ...`: merges them with
//!   ONNX Runtime's times, prints the table, the targets and where smelt loses time,
//!   and writes the results JSON, the SVG plot and README.md's Performance section.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use smelt_bench::measure::{self, Settings};
use smelt_bench::report::{OrtDoc, Run};
use smelt_bench::{machine, readme, report, svg};
use smelt_codegen::Backend;
use smelt_passes::OptLevel;
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
        /// Where to write the measurements (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Merge with ONNX Runtime's results and write the report.
    Report {
        #[arg(long)]
        ort: PathBuf,
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

fn measure_all(
    models: &Path,
    names: &[String],
    threads: &[usize],
    backends: &[String],
    settings: Settings,
    tract: bool,
) -> anyhow::Result<Run> {
    let backends: Vec<Backend> = backends.iter().map(|b| backend(b)).collect::<anyhow::Result<_>>()?;
    let mut run = Run {
        machine: machine::describe(),
        opt_level: "O2".into(),
        runs: settings.runs,
        warmup: settings.warmup,
        tolerance: settings.tolerance,
        ..Run::default()
    };
    #[cfg(feature = "tract")]
    if tract {
        run.versions.insert("tract".into(), smelt_bench::tract::VERSION.into());
    }
    #[cfg(not(feature = "tract"))]
    if tract {
        anyhow::bail!("built without the `tract` feature: pass --no-tract");
    }
    for name in names {
        let case = measure::load_case(models, name).with_context(|| format!("model {name}"))?;
        let prepared = measure::prepare(&case, OptLevel::O2);
        for &b in &backends {
            for &t in threads {
                let e = match &prepared {
                    Ok(p) => measure::smelt_entry(&case, p, b, t, &settings),
                    Err(err) => {
                        let mut e = report::Entry::new(name, &measure::system_name(b), t, report::Status::NotAvailable);
                        e.note = Some(format!("{err:#}").replace('\n', " "));
                        e
                    }
                };
                progress(&e);
                run.entries.push(e);
            }
        }
        #[cfg(feature = "tract")]
        if tract {
            for &t in threads {
                let e = smelt_bench::tract::entry(&case, t, &settings);
                progress(&e);
                run.entries.push(e);
            }
        }
    }
    Ok(run)
}

fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Measure { models, names, threads, backends, runs, warmup, tolerance, no_tract, out } => {
            anyhow::ensure!(runs >= 1, "--runs must be at least 1");
            anyhow::ensure!(threads.iter().all(|&t| t >= 1), "thread counts must be at least 1");
            let settings = Settings { warmup, runs, tolerance };
            let run = measure_all(&models, &names, &threads, &backends, settings, !no_tract)?;
            write_atomic(&out, &serde_json::to_string_pretty(&run)?)
        }
        Cmd::Report { ort, native, date, commit, results, readme: readme_path } => {
            let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
            let ort: OrtDoc = serde_json::from_str(&read(&ort)?).context("ONNX Runtime's results")?;
            let native: Run = serde_json::from_str(&read(&native)?).context("smelt's and tract's results")?;
            let mut run = Run { date: date.clone(), smelt_commit: commit, entries: Vec::new(), ..native.clone() };
            run.add_ort(&ort);
            run.entries.extend(native.entries);
            let json_path = results.join(format!("{date}.json"));
            let svg_path = results.join("latest.svg");
            write_atomic(&json_path, &(serde_json::to_string_pretty(&run)? + "\n"))?;
            write_atomic(&svg_path, &svg::plot(&run))?;
            println!("{}", report::table(&run));
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
