//! The `smelt` command line: check, format, optimize, import, compile, run, benchmark
//! and initialize models.
//!
//! Every failure prints one clear message (all of a model's diagnostics, each with
//! `file:line:col`) to stderr and exits with status 1; nothing is written on failure.

mod cli;

use clap::{Parser, Subcommand};
use cli::run::RunArgs;
use cli::{BackendArg, EngineArgs};
use std::path::PathBuf;
use std::process::ExitCode;

/// smelt, an ML compiler: check, format, optimize, import, compile, run and initialize
/// models written in its text IR or ONNX. Models are optimized (-O2 by default) and
/// run compiled with Cranelift (the default) or LLVM (JIT, or ahead of time into a C
/// library), as WGSL shaders on a GPU through wgpu, or on the reference interpreter.
#[derive(Debug, Parser)]
#[command(name = "smelt", version)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Parse and verify a model (with its weights), and print every value's type.
    Check {
        /// The model (`.smelt`, weights from the `.safetensors` beside it; or `.onnx`).
        model: PathBuf,
    },
    /// Print a model in canonical form.
    Fmt {
        /// The model (`.smelt`).
        model: PathBuf,
        /// Exit with status 1 if the file is not in canonical form.
        #[arg(long, conflicts_with_all = ["write", "json"])]
        check: bool,
        /// Rewrite the file in place (atomically).
        #[arg(long, conflicts_with = "json")]
        write: bool,
        /// Print the JSON form instead of the text.
        #[arg(long)]
        json: bool,
    },
    /// Optimize (-O2 by default), compile and run a model on inputs, and print a
    /// summary of each output.
    Run {
        /// The model (`.smelt`, weights from the `.safetensors` beside it; or `.onnx`).
        model: PathBuf,
        /// Inputs by name from a safetensors file (`expected.*` tensors are ignored).
        /// With an `.onnx` model, the model's symbolic dims take their sizes.
        #[arg(long, value_name = "FILE.safetensors", conflicts_with = "random")]
        inputs: Option<PathBuf>,
        /// Seeded random inputs (the default, with seed 0).
        #[arg(long, value_name = "SEED")]
        random: Option<u64>,
        /// Size of a symbolic dim (`--dim N=4`): of the random inputs (unset
        /// symbols are 1), or checked against `--inputs`. An `.onnx` model is
        /// imported with it (anonymous dims are `INPUT_dI`).
        #[arg(long, value_name = "SYM=SIZE", value_parser = cli::parse_dim)]
        dim: Vec<(String, u64)>,
        /// Where to run: Cranelift by default; `interp` is the reference interpreter.
        #[arg(long, value_enum, default_value_t = BackendArg::Cranelift)]
        backend: BackendArg,
        /// Threads for the parallel loops of compiled backends.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: u32,
        /// Write the outputs to this safetensors file (only on success).
        #[arg(short = 'o', long = "output", value_name = "OUT.safetensors")]
        out: Option<PathBuf>,
        /// Print each kernel call's time on stderr, slowest first (compiled backends; on
        /// wgsl, GPU timestamps around each step)
        #[arg(long)]
        profile: bool,
        /// The GPU adapter for `--backend wgsl`: an index, part of its name, `low-power`
        /// or `high-performance` (default: `$SMELT_ADAPTER`, else high-performance).
        #[arg(long, value_name = "ADAPTER")]
        adapter: Option<String>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Optimize a model: pass pipeline -O0…-O3 (e-graph rewrites and fusion at -O2).
    Opt {
        /// The model (`.smelt`, weights from the `.safetensors` beside it; or `.onnx`).
        model: PathBuf,
        /// Optimization level: -O0, -O1, -O2 (default) or -O3.
        #[arg(short = 'O', value_name = "LEVEL", default_value = "2")]
        level: String,
        /// Print the model after this pass (repeatable; `all` for every pass), on stderr.
        #[arg(long, value_name = "NAME|all")]
        print_after: Vec<String>,
        /// Print each pass's time and node counts, and the e-graph's figures, on stderr.
        #[arg(long)]
        time_passes: bool,
        /// The target the cost model estimates for: cpu or gpu.
        #[arg(long, default_value = "cpu")]
        target: String,
        /// Write OUT.smelt and OUT.safetensors instead of printing the model.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        out: Option<PathBuf>,
    },
    /// Write a built-in model (`DIR/NAME.smelt`) with seeded random weights
    /// (`DIR/NAME.safetensors`); `--list` shows the models and their settings.
    Zoo {
        /// The model (`smelt zoo --list` names them all).
        name: Option<String>,
        /// List the models (or only NAME) with their settings and defaults.
        #[arg(long)]
        list: bool,
        /// Change a setting (repeatable): `--set width=32`.
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Seed of the random weights (the same seed gives the same file).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Directory to write NAME.smelt and NAME.safetensors into.
        #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
    /// Import an ONNX model: write `DIR/NAME.smelt` and `DIR/NAME.safetensors`.
    /// (`run`, `check` and the other commands also take `.onnx` files directly.)
    Import {
        /// The ONNX model (`.onnx`).
        model: PathBuf,
        /// The folder to write to.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        out: PathBuf,
        /// The name of the written files (default: the model's file name).
        #[arg(long)]
        name: Option<String>,
        /// Fix a symbolic input dim at import (`--dim N=1`; anonymous dims are `INPUT_dI`).
        #[arg(long, value_name = "SYM=SIZE", value_parser = cli::parse_dim)]
        dim: Vec<(String, u64)>,
    },
    /// Optimize (-O2 by default) and compile a model with Cranelift or LLVM (or to
    /// WGSL) and print (or write) what it became.
    Compile {
        /// The model (`.smelt`, weights from the `.safetensors` beside it; or `.onnx`).
        model: PathBuf,
        /// What to emit: the kernel IR, Cranelift's CLIF, LLVM IR, assembly, an object
        /// file, an ahead-of-time library (shared + static, C header, weights), or
        /// the WGSL shaders.
        #[arg(long, value_enum, default_value_t = cli::compile::EmitArg::Kernel)]
        emit: cli::compile::EmitArg,
        /// The native code generator for asm, obj and lib (default cranelift; llvm
        /// with --emit llvm).
        #[arg(long, value_enum)]
        backend: Option<cli::compile::NativeBackend>,
        /// Size of a symbolic dim (`--dim N=4`); unset symbols are 1.
        #[arg(long, value_name = "SYM=SIZE", value_parser = cli::parse_dim)]
        dim: Vec<(String, u64)>,
        /// Output file (required for `--emit obj`; a directory for `--emit lib`; text
        /// goes to stdout without it).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        out: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Tune a model's schedules on this machine: measures candidates for each class
    /// of conv and matmul (conv method: Winograd, output rows or im2col; the
    /// GEMM's KC, MC and NC blocks), checks the tuned model against the
    /// interpreter, and stores the winners in the tuning database (`--tuning`),
    /// under this CPU, backend and thread count; `run`, `bench` and `compile` read
    /// them from there.
    Tune {
        /// The model (`.smelt`, weights from the `.safetensors` beside it; or `.onnx`).
        model: PathBuf,
        /// The CPU backend to tune.
        #[arg(long, value_enum, default_value_t = BackendArg::Llvm)]
        backend: BackendArg,
        /// Threads the tuned model will run on.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: u32,
        /// Timed runs of each candidate (the median counts).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// Size of a symbolic dim of the inputs (`--dim N=4`); unset symbols are 1.
        #[arg(long, value_name = "SYM=SIZE", value_parser = cli::parse_dim)]
        dim: Vec<(String, u64)>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Time a model: optimize (-O2 by default), compile, warm up, then time `--runs`
    /// runs on seeded random inputs; prints the median and minimum, and the optimize
    /// and compile times apart.
    Bench {
        /// The model (`.smelt`, weights from the `.safetensors` beside it; or `.onnx`).
        model: PathBuf,
        /// Where to run.
        #[arg(long, value_enum, default_value_t = BackendArg::Cranelift)]
        backend: BackendArg,
        /// Threads for the parallel loops of compiled backends.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: u32,
        /// Timed runs (after the warm-up).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Untimed runs first.
        #[arg(long, default_value_t = 3)]
        warmup: u32,
        /// Seed of the random inputs.
        #[arg(long, value_name = "SEED", default_value_t = 0)]
        random: u64,
        /// Size of a symbolic dim of the inputs (`--dim N=4`); unset symbols are 1.
        #[arg(long, value_name = "SYM=SIZE", value_parser = cli::parse_dim)]
        dim: Vec<(String, u64)>,
        /// Print the result as JSON (with every run's time).
        #[arg(long)]
        json: bool,
        /// After the timed runs, `--runs` more with each kernel call timed: print each
        /// kernel's median over them, slowest first (compiled backends and wgsl).
        #[arg(long)]
        profile: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Quantizes a model to int8 after training (static and calibrated, or
    /// dynamic): writes OUT.smelt and OUT.safetensors with integer kernels, and
    /// prints each layer's precision and the output error measured on held-out
    /// inputs.
    Quantize {
        model: PathBuf,
        /// The quantized model (OUT.smelt, weights in OUT.safetensors).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        out: PathBuf,
        /// Calibration inputs: safetensors files as for `run --inputs`, or with one
        /// more leading dim holding many inputs. Every fifth input (of five or
        /// more) is held out to measure the error.
        #[arg(long, value_name = "FILE.safetensors", num_args = 1..)]
        calibrate: Vec<PathBuf>,
        /// Calibrate on N seeded random inputs (a quick try; real data is better).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
        calibrate_random: Option<u64>,
        /// static: activation ranges calibrated ahead of time (convs, matmuls,
        /// gemms); dynamic: matmuls and gemms quantize their activation with a
        /// range computed from each run's data (no calibration needed: the inputs,
        /// 8 random ones by default, only measure the error).
        #[arg(long, default_value = "static", value_parser = ["static", "dynamic"])]
        mode: String,
        /// How activation ranges are chosen: minmax, percentile[:P] (99.999),
        /// entropy (KL, as TensorRT) or mse.
        #[arg(long, default_value = "minmax")]
        method: String,
        /// Activation dtype: u8 (asymmetric, default) or i8.
        #[arg(long, default_value = "u8")]
        activations: String,
        /// Symmetric activation ranges.
        #[arg(long)]
        symmetric: bool,
        /// One weight scale per tensor instead of per output channel.
        #[arg(long)]
        per_tensor: bool,
        /// 7-bit weights (±63, as ONNX Runtime's reduce_range): slightly less
        /// precise, faster on AVX2 hosts without VNNI (u8×s8 `pmaddubsw`).
        #[arg(long)]
        reduce_range: bool,
        /// Layers (node names) to keep in f32.
        #[arg(long, value_name = "NODE", num_args = 1..)]
        exclude: Vec<String>,
        /// The largest output error allowed on held-out inputs (relative L2, e.g.
        /// `1%`): the most sensitive layers stay f32 until it holds.
        #[arg(long, value_name = "ERROR")]
        budget: Option<String>,
        /// Writes the per-layer report as JSON.
        #[arg(long, value_name = "FILE.json")]
        report: Option<PathBuf>,
        #[arg(long, value_name = "SYM=SIZE", value_parser = cli::parse_dim)]
        dim: Vec<(String, u64)>,
        /// The backend that runs calibration and the checks.
        #[arg(long, value_enum, default_value_t = BackendArg::Cranelift)]
        backend: BackendArg,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: u32,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Prunes a model's linear layers by magnitude: writes OUT.smelt and
    /// OUT.safetensors with the zeros, and prints each layer's sparsity and the
    /// output error measured against the dense model. Compiling the result, the
    /// optimizer chooses per layer between the dense GEMM and sparse kernels.
    Prune {
        model: PathBuf,
        /// The pruned model (OUT.smelt, weights in OUT.safetensors).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        out: PathBuf,
        /// The share of each layer's weights made zero, in [0, 1) (with
        /// `--global`, of all of them together).
        #[arg(long)]
        sparsity: f64,
        /// unstructured; block:RxC (R output features × C inputs of the
        /// `[out, in]` weight, e.g. block:16x1); or nm:N:M (N of every M inputs
        /// kept, e.g. nm:2:4: the sparsity is then 1 − N/M).
        #[arg(long, default_value = "unstructured")]
        pattern: String,
        /// One magnitude threshold over all layers instead of the same sparsity
        /// in each.
        #[arg(long)]
        global: bool,
        /// Layers (node names) to leave dense.
        #[arg(long, value_name = "NODE", num_args = 1..)]
        exclude: Vec<String>,
        /// The largest output error allowed (relative L2, e.g. `1%`): the most
        /// sensitive layers stay dense until it holds.
        #[arg(long, value_name = "ERROR")]
        budget: Option<String>,
        /// Inputs that measure the error: safetensors files as for `run
        /// --inputs`, or with one more leading dim holding many inputs.
        #[arg(long, value_name = "FILE.safetensors", num_args = 1..)]
        inputs: Vec<PathBuf>,
        /// Measure on N seeded random inputs (8 when no --inputs are given).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
        random: Option<u64>,
        /// Writes the per-layer report as JSON.
        #[arg(long, value_name = "FILE.json")]
        report: Option<PathBuf>,
        #[arg(long, value_name = "SYM=SIZE", value_parser = cli::parse_dim)]
        dim: Vec<(String, u64)>,
        /// The backend that runs the checks.
        #[arg(long, value_enum, default_value_t = BackendArg::Cranelift)]
        backend: BackendArg,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: u32,
        #[command(flatten)]
        engine: EngineArgs,
    },
    InitWeights {
        /// The model (`.smelt`).
        model: PathBuf,
        /// Seed of the random generator (the same seed gives the same file).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output file (default: the `.safetensors` beside the model).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn dispatch(args: Args) -> anyhow::Result<()> {
    match args.cmd {
        Cmd::Check { model } => cli::check::main(&model),
        Cmd::Fmt { model, check, write, json } => {
            use cli::fmt::Mode;
            let mode = if check {
                Mode::Check
            } else if write {
                Mode::Write
            } else if json {
                Mode::Json
            } else {
                Mode::Print
            };
            cli::fmt::main(&model, mode)
        }
        Cmd::Run { model, inputs, random, dim, backend, threads, out, profile, adapter, engine } => cli::run::main(&RunArgs {
            model,
            inputs,
            seed: random.unwrap_or(0),
            dims: dim,
            backend,
            threads: threads as usize,
            out,
            profile,
            adapter,
            engine,
        }),
        Cmd::Compile { model, emit, backend, dim, out, engine } => cli::compile::main(&cli::compile::CompileArgs {
            model: &model,
            emit,
            backend,
            dims: &dim,
            out: out.as_deref(),
            engine: &engine,
        }),
        Cmd::Opt { model, level, print_after, time_passes, target, out } => {
            cli::opt::main(&cli::opt::OptArgs { model, level, print_after, time_passes, target, out })
        }
        Cmd::Zoo { name, list, set, seed, out } => cli::zoo::main(&cli::zoo::ZooArgs { name, list, set, seed, out }),
        Cmd::Import { model, out, name, dim } => cli::import::main(&model, &out, name.as_deref(), &dim),
        Cmd::Tune { model, backend, threads, runs, dim, json, engine } => cli::tune::main(&cli::tune::TuneArgs {
            model,
            backend,
            threads: threads as usize,
            runs: runs as usize,
            dims: dim,
            json,
            engine,
        }),
        Cmd::Bench { model, backend, threads, runs, warmup, random, dim, json, profile, engine } => {
            cli::bench::main(&cli::bench::BenchArgs {
                model,
                backend,
                threads: threads as usize,
                runs: runs as usize,
                warmup: warmup as usize,
                seed: random,
                dims: dim,
                json,
                profile,
                engine,
            })
        }
        Cmd::Quantize {
            model,
            out,
            calibrate,
            calibrate_random,
            mode,
            method,
            activations,
            symmetric,
            per_tensor,
            reduce_range,
            exclude,
            budget,
            report,
            dim,
            backend,
            threads,
            engine,
        } => cli::quantize::main(&cli::quantize::QuantizeArgs {
            model,
            out,
            calibrate,
            calibrate_random: calibrate_random.map(|n| n as usize),
            dynamic: mode == "dynamic",
            method,
            activations,
            symmetric,
            per_tensor,
            reduce_range,
            exclude,
            budget,
            report,
            dims: dim,
            backend,
            threads: threads as usize,
            engine,
        }),
        Cmd::Prune { model, out, sparsity, pattern, global, exclude, budget, inputs, random, report, dim, backend, threads, engine } => {
            cli::prune::main(&cli::prune::PruneArgs {
                model,
                out,
                sparsity,
                pattern,
                global,
                exclude,
                budget,
                inputs,
                random: random.map(|n| n as usize),
                report,
                dims: dim,
                backend,
                threads: threads as usize,
                engine,
            })
        }
        Cmd::InitWeights { model, seed, out } => cli::init::main(&model, seed, out.as_deref()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<cli::Reported>() {
                Some(r) => eprintln!("{r}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
