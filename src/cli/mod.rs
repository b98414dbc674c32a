//! Pieces the subcommands share: loading a model (text, weights, verification) with
//! every problem rendered for the user, and the error type that carries such text.

pub mod bench;
pub mod check;
pub mod compile;
pub mod fmt;
pub mod import;
pub mod init;
pub mod opt;
pub mod prune;
pub mod quantize;
pub mod run;
pub mod steps;
pub mod tune;
pub mod zoo;

use smelt::engine::{BackendKind, OptLevel, Options, ScheduleOptions};
use smelt::ir::Graph;
use std::fmt as stdfmt;
use std::path::{Path, PathBuf};

/// An error already rendered for the user: one or more `error: …` blocks, printed
/// verbatim by `main`.
#[derive(Debug)]
pub struct Reported(pub String);

impl stdfmt::Display for Reported {
    fn fmt(&self, f: &mut stdfmt::Formatter<'_>) -> stdfmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// `Err(Reported(text))`.
pub fn reported<T>(text: impl Into<String>) -> anyhow::Result<T> {
    Err(Reported(text.into()).into())
}

/// A path as the user wrote it, for messages.
pub fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// An engine error, as the user sees it.
pub fn engine_err(e: smelt::engine::Error) -> anyhow::Error {
    Reported(e.to_string()).into()
}

/// Reads and parses a model; returns its source too (for `fmt`). Parse and type
/// errors are all reported, with `file:line:col`.
pub fn parse_model(path: &Path) -> anyhow::Result<(Graph, String)> {
    smelt::engine::load::parse_smelt(path).map_err(engine_err)
}

/// Loads a model (`.smelt` with the weights beside it, or `.onnx`) and verifies
/// it; every problem is reported.
pub fn load_model(path: &Path) -> anyhow::Result<Graph> {
    smelt::engine::load(path.into()).map_err(engine_err)
}

/// Where a model comes from, and the `--dim`s left to bind: an `.onnx` file
/// given dims is imported with them (its symbolic dims, spatial ones included,
/// become fixed), which leaves none.
pub fn source_with_dims<'a>(path: &Path, dims: &'a [(String, u64)]) -> (smelt::engine::Source, &'a [(String, u64)]) {
    if smelt::engine::load::is_onnx(path) && !dims.is_empty() {
        let source = smelt::engine::Source::PinnedOnnx {
            path: path.to_path_buf(),
            input_shapes: Default::default(),
            dims: dims.iter().cloned().collect(),
            values: Default::default(),
        };
        return (source, &[]);
    }
    (path.into(), dims)
}

/// Parses `--dim N=4`.
pub fn parse_dim(s: &str) -> Result<(String, u64), String> {
    let (name, size) = s.split_once('=').ok_or_else(|| format!("`{s}` is not SYM=SIZE"))?;
    let size = size.trim().parse::<u64>().map_err(|e| format!("`{s}`: size: {e}"))?;
    Ok((name.trim().to_string(), size))
}

/// Parses `-O LEVEL`.
pub fn parse_level(s: &str) -> Result<OptLevel, String> {
    s.parse::<OptLevel>().map_err(|e| e.to_string())
}

/// Parses `--schedule KEY=VALUE,…` (`help` is handled by the caller).
pub fn parse_schedule(s: &str) -> Result<String, String> {
    if s.trim() == "help" {
        return Ok("help".into());
    }
    ScheduleOptions::parse(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// The options `run`, `compile` and `bench` share.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Optimization level: -O0 (the graph as loaded), -O1, -O2 (default: e-graph
    /// rewrites and fusion) or -O3.
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = parse_level)]
    pub level: OptLevel,
    /// Schedule switches, `KEY=VALUE,…` (`--schedule help` lists them):
    /// `winograd=off`, `ukernels=avx2`, `vector-bits=256`, …
    #[arg(long, value_name = "KEY=VALUE,...|help", value_parser = parse_schedule)]
    pub schedule: Vec<String>,
    /// The tuning database to read (`smelt tune` writes it): default
    /// `$SMELT_TUNING`, else `$XDG_CACHE_HOME/smelt/tuning.json` (or
    /// `~/.cache/smelt/tuning.json`). Its entry for this CPU, backend and thread
    /// count sets each tuned conv's and matmul's schedule; `--schedule` keys win.
    #[arg(long, value_name = "FILE")]
    pub tuning: Option<PathBuf>,
    /// Ignore tuning files: the backend's own choices for this host.
    #[arg(long, conflicts_with = "tuning")]
    pub no_tuning: bool,
    /// Tune this model on this machine first (as `smelt tune` does), store the
    /// result in the tuning file and use it (CPU backends).
    #[arg(long, conflicts_with = "no_tuning")]
    pub tune: bool,
}

/// The tuning database `--tuning` names, else `$SMELT_TUNING` (`off`: none), else
/// the user's cache directory's `smelt/tuning.json`; `None`: none.
pub fn tuning_path(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    match std::env::var_os("SMELT_TUNING") {
        Some(v) if v == "off" || v.is_empty() => return None,
        Some(v) => return Some(PathBuf::from(v)),
        None => {}
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("smelt").join("tuning.json"))
}

impl EngineArgs {
    /// `true` (after printing the keys) when `--schedule help` was asked for.
    pub fn schedule_help(&self) -> bool {
        if self.schedule.iter().any(|s| s.trim() == "help") {
            print!("{}", ScheduleOptions::help());
            return true;
        }
        false
    }

    /// The schedule options, later `--schedule` flags overriding earlier ones.
    pub fn schedule_options(&self) -> anyhow::Result<ScheduleOptions> {
        let mut o = ScheduleOptions::default();
        for s in &self.schedule {
            if let Err(e) = o.apply(s) {
                return reported(format!("error: {e}"));
            }
        }
        Ok(o)
    }

    /// Engine options for `backend` with these switches.
    pub fn options(&self, backend: BackendKind, threads: usize, adapter: Option<String>) -> anyhow::Result<Options> {
        // The adapter may come from the environment, for convenience on GPU
        // machines; nothing else the CLI does reads it.
        let adapter = adapter.or_else(|| std::env::var("SMELT_ADAPTER").ok()).filter(|s| !s.trim().is_empty());
        let mut schedule = self.schedule_options()?;
        schedule.tuning = self.tuning_for(backend, threads)?.map(std::sync::Arc::new);
        Ok(Options { backend, opt_level: self.level, threads: threads.max(1), schedule, adapter, target: None })
    }

    /// The database file these options read (see [`tuning_path`]).
    pub fn tuning_path(&self) -> Option<PathBuf> {
        if self.no_tuning { None } else { tuning_path(self.tuning.as_deref()) }
    }

    /// The tuned choices of this host for `backend` on `threads` threads, from
    /// the tuning file; problems with the file are a one-line warning.
    fn tuning_for(&self, backend: BackendKind, threads: usize) -> anyhow::Result<Option<smelt::engine::Tuning>> {
        if !matches!(backend, BackendKind::Cranelift | BackendKind::Llvm) {
            return Ok(None);
        }
        let Some(path) = self.tuning_path() else { return Ok(None) };
        if self.tuning.is_some() && !self.tune && !path.exists() {
            return reported(format!("error: --tuning {}: no such file (`smelt tune MODEL --tuning FILE` writes one)", shown(&path)));
        }
        let (tuning, warnings) = smelt::engine::TuningDb::read_for_host(&path, backend.name(), threads);
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(tuning)
    }
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The reference interpreter.
    Interp,
    /// Cranelift JIT: kernels compiled for this machine (GEMM tiles as
    /// precompiled micro-kernels), run on `--threads` threads.
    Cranelift,
    /// LLVM JIT (LLVM 14): kernels compiled for this machine's vector width (AVX2,
    /// AVX-512), run on `--threads` threads (cargo feature `llvm`).
    Llvm,
    /// WGSL compute shaders through wgpu on Vulkan (a GPU, or Mesa's lavapipe);
    /// the adapter is `--adapter` or `SMELT_ADAPTER`, else the high-performance
    /// one (cargo feature `wgsl`).
    Wgsl,
}

impl BackendArg {
    pub fn kind(self) -> BackendKind {
        match self {
            BackendArg::Interp => BackendKind::Interp,
            BackendArg::Cranelift => BackendKind::Cranelift,
            BackendArg::Llvm => BackendKind::Llvm,
            BackendArg::Wgsl => BackendKind::Wgsl,
        }
    }
}

/// Total bytes of the graph's weights.
pub fn weight_bytes(g: &Graph) -> usize {
    g.weights().values().map(|t| t.numel() * t.dtype().size()).sum()
}
