//! `smelt run MODEL`: runs a model on inputs from a safetensors file or on seeded
//! random inputs, prints a summary of each output, and optionally writes them.

use super::{load_model, node_diag, reported, reported_all, shown};
use smelt::codegen;
use smelt::ir::{Bindings, Graph, weights};
use smelt::runtime::{self, exec, init::random_inputs};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The reference interpreter.
    Interp,
    /// Cranelift JIT: kernels compiled for this machine, run on `--threads` threads.
    Cranelift,
    /// LLVM JIT (LLVM 14): kernels compiled for this machine's vector width (AVX2,
    /// AVX-512), run on `--threads` threads.
    Llvm,
    /// WGSL compute shaders through wgpu on Vulkan (a GPU, or Mesa's lavapipe);
    /// the adapter is `--adapter` or `SMELT_ADAPTER`, else the high-performance one.
    Wgsl,
}

/// What `run` was asked to do.
#[derive(Debug)]
pub struct RunArgs {
    pub model: PathBuf,
    pub inputs: Option<PathBuf>,
    pub seed: u64,
    pub dims: Vec<(String, u64)>,
    pub backend: BackendArg,
    pub threads: usize,
    pub out: Option<PathBuf>,
    /// Print each kernel call's time (compiled CPU backends).
    pub profile: bool,
    /// The GPU adapter for `--backend wgsl`: an index, part of its name, or
    /// `low-power` / `high-performance` (default: `SMELT_ADAPTER`).
    pub adapter: Option<String>,
}

/// Parses `--dim N=4`.
pub fn parse_dim(s: &str) -> Result<(String, u64), String> {
    let (name, size) = s.split_once('=').ok_or_else(|| format!("`{s}` is not SYM=SIZE"))?;
    let size = size.trim().parse::<u64>().map_err(|e| format!("`{s}`: size: {e}"))?;
    Ok((name.trim().to_string(), size))
}

pub fn main(a: &RunArgs) -> anyhow::Result<()> {
    let model = shown(&a.model);
    let g = load_model(&a.model)?;

    // The GPU: the device opened and the model compiled before inputs are read.
    let gpu_model = match a.backend {
        BackendArg::Wgsl => {
            if let Err(e) = codegen::compile(&g, codegen::Backend::Wgsl) {
                return reported(render_codegen_error(&g, &model, e));
            }
            let device = match runtime::gpu::device(a.adapter.as_deref()) {
                Ok(d) => d,
                Err(e) => return reported(format!("error: {e}")),
            };
            eprintln!("wgsl on {}", device.describe());
            match runtime::gpu::compile(&g, device) {
                Ok(m) => Some(m),
                Err(e) => return reported_all(render_gpu_error(&g, &model, None, e)),
            }
        }
        _ => None,
    };
    if a.profile && a.backend == BackendArg::Interp {
        return reported("error: --profile times the kernels of a compiled backend (--backend cranelift, llvm or wgsl)".to_string());
    }
    // Compile before reading inputs: an unsupported model fails fast.
    let compiled = match a.backend {
        BackendArg::Cranelift | BackendArg::Llvm => {
            let backend = if a.backend == BackendArg::Llvm { codegen::Backend::Llvm } else { codegen::Backend::Cranelift };
            let opts = exec::Options::for_backend(backend, a.threads.max(1));
            match exec::compile(&g, &opts) {
                Ok(m) => Some(m),
                Err(e) => return reported_all(render_exec_error(&g, &model, None, e)),
            }
        }
        _ => None,
    };

    let inputs = match &a.inputs {
        Some(path) => match weights::read_safetensors(path) {
            // An interpreter fixture's `NAME.io.safetensors` also holds `expected.*` outputs.
            Ok(t) => t.into_iter().filter(|(k, _)| !k.starts_with("expected.")).collect(),
            Err(e) => return reported(e.render(None)),
        },
        None => {
            let dims = dims(&g, &a.dims)?;
            match random_inputs(&g, a.seed, &dims) {
                Ok(t) => t,
                Err(m) => return reported(format!("error: {m}")),
            }
        }
    };

    let outputs = match (&compiled, &gpu_model) {
        (_, Some(m)) if a.profile => match m.run_profiled(&inputs) {
            Ok((o, p)) => {
                print_profile(&p);
                o
            }
            Err(e) => return reported_all(render_gpu_error(&g, &model, a.inputs.as_deref(), e)),
        },
        (_, Some(m)) => match m.run(&inputs) {
            Ok(o) => o,
            Err(e) => return reported_all(render_gpu_error(&g, &model, a.inputs.as_deref(), e)),
        },
        (c, None) => match c {
        Some(m) if a.profile => match m.run_profiled(&inputs) {
            Ok((o, p)) => {
                print_profile(&p);
                o
            }
            Err(e) => return reported_all(render_exec_error(&g, &model, a.inputs.as_deref(), e)),
        },
        Some(m) => match m.run(&inputs) {
            Ok(o) => o,
            Err(e) => return reported_all(render_exec_error(&g, &model, a.inputs.as_deref(), e)),
        },
        None => match runtime::run(&g, &inputs) {
            Ok(o) => o,
            Err(e) => return reported_all(render_run_error(&g, &model, a.inputs.as_deref(), e)),
        },
        },
    };
    for &v in g.outputs() {
        let name = g.value_name(v);
        let t = &outputs[name];
        println!("{name}: {}  {}", t.tensor_type(), t.summary());
    }
    if let Some(out) = &a.out
        && let Err(e) = weights::write_safetensors(out, outputs.iter().map(|(k, v)| (k.as_str(), v)))
    {
        return reported(e.render(None));
    }
    Ok(())
}

/// The kernel calls of a run on stderr: the slowest first, with their share.
fn print_profile(p: &exec::Profile) {
    let total = p.total_seconds();
    let mut rows: Vec<&exec::KernelTime> = p.kernels.iter().collect();
    rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    eprintln!("{:>10}  {:>6}  kernel (node)", "ms", "%");
    for k in rows {
        let share = if total > 0.0 { 100.0 * k.seconds / total } else { 0.0 };
        eprintln!("{:>10.3}  {:>5.1}%  {} ({})", k.seconds * 1e3, share, k.kernel, k.node);
    }
    eprintln!("{:>10.3}  100.0%  total of {} kernel calls", total * 1e3, p.kernels.len());
}

/// Symbol sizes from `--dim`, each checked against the symbols of the inputs.
pub fn dims(g: &Graph, given: &[(String, u64)]) -> anyhow::Result<Bindings> {
    let symbols: BTreeSet<String> =
        g.inputs().iter().flat_map(|&i| g.node(i).types[0].shape.symbols()).map(|s| s.to_string()).collect();
    let mut b = Bindings::new();
    let mut problems = Vec::new();
    for (name, size) in given {
        if !symbols.contains(name) {
            let known: Vec<&str> = symbols.iter().map(String::as_str).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            problems.push(format!(
                "error: --dim {name}={size}: the inputs of graph {} have no symbol `{name}` (symbols: {known})",
                g.name
            ));
        }
        b.insert(name.clone(), *size);
    }
    reported_all(problems)?;
    Ok(b)
}

/// A code generation error: an unsupported op points at its node.
pub fn render_codegen_error(g: &Graph, model: &str, e: codegen::Error) -> String {
    match e {
        codegen::Error::Unsupported { backend, op, node } => {
            node_diag(g, &node, format!("not supported on {backend}: {op} at node {node}")).render(Some(model))
        }
        e => format!("error: {e}"),
    }
}

/// An error of the compiled executor: codegen errors as above, run-time errors as
/// the interpreter's.
fn render_exec_error(g: &Graph, model: &str, inputs: Option<&Path>, e: exec::Error) -> Vec<String> {
    match e {
        exec::Error::Codegen(c) => vec![render_codegen_error(g, model, c)],
        exec::Error::Runtime(r) => render_run_error(g, model, inputs, r),
        e => vec![format!("error: {e}")],
    }
}

/// An error of the GPU runtime: codegen and run-time errors as above.
fn render_gpu_error(g: &Graph, model: &str, inputs: Option<&Path>, e: runtime::gpu::Error) -> Vec<String> {
    match e {
        runtime::gpu::Error::Codegen(c) => vec![render_codegen_error(g, model, c)],
        runtime::gpu::Error::Runtime(r) => render_run_error(g, model, inputs, r),
        e => vec![format!("error: {e}")],
    }
}

/// A run-time error, rendered with the model's or the inputs file's location: one
/// block per problem.
fn render_run_error(g: &Graph, model: &str, inputs: Option<&Path>, e: runtime::Error) -> Vec<String> {
    if let runtime::Error::Inputs(msg) = &e {
        let from = inputs.map(|p| format!("\n  --> {}", shown(p))).unwrap_or_default();
        return msg.lines().map(|l| format!("error: {l}{from}")).collect();
    }
    if let runtime::Error::Node { node, op, message } = &e {
        // The location line names the node; name the op unless the message does.
        let text = if message.starts_with(op.as_str()) { message.clone() } else { format!("{op}: {message}") };
        return vec![node_diag(g, node, text).render(Some(model))];
    }
    if let runtime::Error::Ir(ie) = &e {
        return vec![ie.render(Some(model))];
    }
    vec![format!("error: {e}")]
}
