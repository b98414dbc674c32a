//! `smelt run MODEL`: optimizes (`-O2` by default) and compiles a model through
//! the engine, runs it on inputs from a safetensors file or on seeded random
//! inputs, prints a summary of each output, and optionally writes them.

use super::{BackendArg, EngineArgs, engine_err, reported, shown};
use smelt::engine::load::is_onnx;
use smelt::engine::{self, BackendKind, CompiledModel, Profile, Source, Tensors};
use smelt::ir::weights;
use smelt::runtime::init::random_inputs;
use std::path::PathBuf;

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
    /// Print each kernel call's time (compiled backends).
    pub profile: bool,
    /// The GPU adapter for `--backend wgsl`: an index, part of its name, or
    /// `low-power` / `high-performance` (default: `SMELT_ADAPTER`).
    pub adapter: Option<String>,
    pub engine: EngineArgs,
}

pub fn main(a: &RunArgs) -> anyhow::Result<()> {
    if a.engine.schedule_help() {
        return Ok(());
    }
    if a.profile && a.backend == BackendArg::Interp {
        return reported("error: --profile times the kernels of a compiled backend (--backend cranelift, llvm or wgsl)");
    }
    let opts = a.engine.options(a.backend.kind(), a.threads, a.adapter.clone())?;
    let file_inputs: Option<Tensors> = match &a.inputs {
        Some(path) => match weights::read_safetensors(path) {
            // An interpreter fixture's `NAME.io.safetensors` also holds `expected.*` outputs.
            Ok(t) => Some(t.into_iter().filter(|(k, _)| !k.starts_with("expected.")).collect()),
            Err(e) => return reported(e.render(None)),
        },
        None => None,
    };
    // An ONNX model given inputs or dims is imported with them: its symbolic
    // dims take the inputs' sizes (a spatial size a convolution needs included).
    let pinned = is_onnx(&a.model) && (file_inputs.is_some() || !a.dims.is_empty());
    let source = if pinned {
        Source::PinnedOnnx {
            path: a.model.clone(),
            input_shapes: file_inputs.iter().flatten().map(|(k, t)| (k.clone(), t.shape().to_vec())).collect(),
            dims: a.dims.iter().cloned().collect(),
            values: file_inputs.clone().unwrap_or_default(),
        }
    } else {
        Source::from(a.model.as_path())
    };
    // Load, optimize and compile before drawing inputs: an unsupported model fails fast.
    let mut model = engine::prepare(source, &opts).map_err(engine_err)?;
    super::tune::if_asked(&a.engine, &mut model, if pinned { &[] } else { &a.dims })?;
    let compiled = model.compile().map_err(engine_err)?;
    if opts.backend == BackendKind::Wgsl {
        print_device(&opts);
    }

    let inputs: Tensors = match file_inputs {
        Some(mut t) => {
            if !pinned {
                check_dims_agree(&compiled, &t, &a.dims)?;
            } else {
                drop_frozen(&a.model, &compiled, &mut t);
            }
            t
        }
        None => {
            // A pinned import has applied the dims already.
            let given = if pinned { &[][..] } else { &a.dims[..] };
            let dims = compiled.model().bindings(given).map_err(engine_err)?;
            // Before allocating inputs of that size.
            compiled.model().check_memory(&dims).map_err(engine_err)?;
            match random_inputs(compiled.model().source_graph(), a.seed, &dims) {
                Ok(t) => t,
                Err(m) => return reported(format!("error: {m}")),
            }
        }
    };
    let inputs_file = a.inputs.as_deref().map(shown);
    let outputs = run(&compiled, &inputs, a.profile).map_err(|e| engine_err(e.with_inputs_file(inputs_file.as_deref())))?;
    for o in compiled.outputs() {
        let t = &outputs[&o.name];
        println!("{}: {}  {}", o.name, t.tensor_type(), t.summary());
    }
    if let Some(out) = &a.out
        && let Err(e) = weights::write_safetensors(out, outputs.iter().map(|(k, v)| (k.as_str(), v)))
    {
        return reported(e.render(None));
    }
    Ok(())
}

/// Inputs of the ONNX file that its import fixed to their given values (the
/// model needs them known: a shape, pads, a trip count) are no longer the
/// compiled model's; they leave `inputs`, with a note. Other names stay, for
/// the run to report.
fn drop_frozen(model: &std::path::Path, compiled: &CompiledModel, inputs: &mut Tensors) {
    let Ok(m) = std::fs::read(model).map_err(|_| ()).and_then(|b| smelt::frontends::onnx::decode_model(&b).map_err(|_| ())) else {
        return;
    };
    let onnx_inputs: Vec<String> = m.graph.iter().flat_map(|g| g.input.iter().map(|i| i.name().to_string())).collect();
    let kept: Vec<String> = compiled.inputs().into_iter().map(|i| i.name).collect();
    let frozen: Vec<String> = inputs.keys().filter(|k| onnx_inputs.contains(k) && !kept.contains(k)).cloned().collect();
    for k in frozen {
        eprintln!("note: input `{k}` is fixed at import to its given value (the model needs it known)");
        inputs.remove(&k);
    }
}

/// `--dim` given with `--inputs`: each dim must name a symbol of the inputs and
/// agree with the size the input tensors give it.
fn check_dims_agree(m: &CompiledModel, inputs: &Tensors, dims: &[(String, u64)]) -> anyhow::Result<()> {
    if dims.is_empty() {
        return Ok(());
    }
    m.model().bindings(dims).map_err(engine_err)?;
    let Ok(bound) = smelt::interp::bind_inputs(m.model().source_graph(), inputs) else {
        return Ok(()); // the run reports the inputs' problems
    };
    let clashes: Vec<String> = dims
        .iter()
        .filter_map(|(s, n)| match bound.get(s) {
            Some(b) if b != n => Some(format!("error: --dim {s}={n}, but the inputs give {s} = {b}")),
            _ => None,
        })
        .collect();
    if clashes.is_empty() { Ok(()) } else { reported(clashes.join("\n")) }
}

/// The GPU adapter a WGSL model runs on, on stderr.
#[cfg(feature = "wgsl")]
fn print_device(opts: &engine::Options) {
    let w = engine::Wgsl { adapter: opts.adapter.clone(), ..engine::Wgsl::default() };
    if let Ok(d) = w.device() {
        eprintln!("wgsl on {}", d.describe());
    }
}

#[cfg(not(feature = "wgsl"))]
fn print_device(_: &engine::Options) {}

/// One run, profiled if asked (the profile goes to stderr).
fn run(m: &CompiledModel, inputs: &Tensors, profile: bool) -> engine::Result<Tensors> {
    if !profile {
        return m.run(inputs);
    }
    let (out, p) = m.run_profiled(inputs)?;
    if let Some(p) = p {
        print_profile(&p);
    }
    Ok(out)
}

/// The kernel calls of a run on stderr: the slowest first, with their share.
fn print_profile(p: &Profile) {
    let total = p.total_seconds();
    let mut rows: Vec<_> = p.kernels.iter().collect();
    rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    eprintln!("{:>10}  {:>6}  kernel (node)", "ms", "%");
    for k in rows {
        let share = if total > 0.0 { 100.0 * k.seconds / total } else { 0.0 };
        eprintln!("{:>10.3}  {:>5.1}%  {} ({})", k.seconds * 1e3, share, k.kernel, k.node);
    }
    eprintln!("{:>10.3}  100.0%  total of {} kernel calls", total * 1e3, p.kernels.len());
}
