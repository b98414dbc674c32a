//! A model loaded and optimized for a backend ([`Model`]: what `smelt compile`
//! emits from) and the same compiled ([`CompiledModel`]: what `smelt run` and
//! `smelt bench` run).

use crate::backend::{self, Backend, Executable, Tensors};
use crate::emit::{self, Emit, Emitted};
use crate::error::{self, Error, ErrorKind, Result};
use crate::load::{self, Source};
use crate::options::{BackendKind, Options};
use smelt_ir::{Bindings, Graph, TensorType};
use smelt_passes::{CostTarget, PassManager, PassRecord};
use smelt_runtime::exec::Profile;
use std::collections::BTreeSet;
use std::time::Instant;

/// One input or output of a model: its name and type (dims may be symbolic).
#[derive(Debug, Clone, PartialEq)]
pub struct IoDesc {
    pub name: String,
    pub ty: TensorType,
}

/// Where the time of preparing a model went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// The optimization pipeline.
    pub optimize_ms: f64,
    /// The backend's compilation (for models with fixed input shapes, their plan
    /// and native code; else those are built on the first run of each shape).
    pub compile_ms: f64,
}

/// A model loaded, optimized at the options' level and checked against the
/// backend: everything but the compilation.
#[derive(Debug)]
pub struct Model {
    /// The graph as loaded (verified, with weights).
    source: Graph,
    /// The optimized graph: what is compiled.
    graph: Graph,
    options: Options,
    /// The model's file as the user named it, for messages.
    file: Option<String>,
    passes: Vec<PassRecord>,
    optimize_ms: f64,
}

/// Runs the optimization pipeline of `level` on `g`, costed for the backend's
/// processor (the GPU's figures for WGSL).
pub fn optimize(g: &mut Graph, level: smelt_passes::OptLevel, backend: BackendKind) -> Result<Vec<PassRecord>> {
    optimize_for(g, level, crate::tune::calibrate::cost_target(backend, 1, None))
}

/// Runs the optimization pipeline of `level` on `g` with `cost`'s figures.
fn optimize_for(g: &mut Graph, level: smelt_passes::OptLevel, cost: CostTarget) -> Result<Vec<PassRecord>> {
    PassManager::pipeline_for(level, cost)
        .run(g)
        .map_err(|e| Error::text(ErrorKind::Model, format!("error: {e}").replace('\n', "\n  ")))
}

/// Loads a model and optimizes it for `options` (see [`Model`]).
pub fn prepare(source: impl Into<Source>, options: &Options) -> Result<Model> {
    let source = source.into();
    let file = source.file();
    let g = load::load(source)?;
    Model::new(g, file, options)
}

/// Loads, optimizes and compiles a model.
///
/// ```
/// use smelt_engine::{compile, BackendKind, Options};
/// use smelt_ir::{text::parse, Tensor};
/// use std::collections::BTreeMap;
///
/// let g = parse("graph g(x: f32[N, 3]) -> (y) {\n  y = relu(x)\n}\n").unwrap();
/// let m = compile(g, &Options::backend(BackendKind::Cranelift)).unwrap();
/// let x = Tensor::f32(vec![2, 3], vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]).unwrap();
/// let out = m.run(&BTreeMap::from([("x".to_string(), x)])).unwrap();
/// assert_eq!(out["y"].to_f32(), [0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
/// assert_eq!(m.inputs()[0].ty.to_string(), "f32[N, 3]");
/// ```
pub fn compile(source: impl Into<Source>, options: &Options) -> Result<CompiledModel> {
    prepare(source, options)?.compile()
}

impl Model {
    /// Optimizes a loaded graph (`file`: where it came from, for messages).
    pub fn new(source: Graph, file: Option<String>, options: &Options) -> Result<Model> {
        // A schedule the host cannot honour fails before the optimizer runs (a
        // backend this build lacks fails in `compile`: emitting WGSL text or
        // kernel IR needs no runtime).
        if let (Some(b), None) = (options.backend.codegen(), &options.target)
            && b != smelt_codegen::Backend::Wgsl
        {
            smelt_codegen::schedule::Target::for_backend(b, &options.schedule).map_err(|e| error::codegen(&source, e))?;
        }
        let mut graph = source.clone();
        let t0 = Instant::now();
        // The cost model takes this machine's rates where a tuning measured them.
        let calibration = options.schedule.tuning.as_ref().and_then(|t| t.calibration);
        let cost = crate::tune::calibrate::cost_target(options.backend, options.threads, calibration.as_ref());
        let passes = optimize_for(&mut graph, options.opt_level, cost).map_err(|e| e.in_file(file.as_deref()))?;
        let optimize_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(Model { source, graph, options: options.clone(), file, passes, optimize_ms })
    }

    /// Uses these tuned choices when it is compiled (see [`crate::tune`]); the
    /// optimized graph does not depend on them.
    pub fn set_tuning(&mut self, tuning: Option<std::sync::Arc<smelt_codegen::schedule::Tuning>>) {
        self.options.schedule.tuning = tuning;
    }

    /// Compiles it for the options' backend. The compiled model keeps the source
    /// graph's structure and types (names, positions, the signature), not its
    /// weights: the optimized graph's are what runs (ResNet-18 with folded
    /// batch norms held both, 47 MB twice).
    pub fn compile(mut self) -> Result<CompiledModel> {
        let backend = backend::for_options(&self.options)?;
        // Before lowering, so that the packed copies take the memory they free.
        self.source.clear_weights();
        let t0 = Instant::now();
        let exe = backend.compile(&self.graph).map_err(|e| self.located(e))?;
        let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(CompiledModel { model: self, backend, exe, compile_ms, checked: Default::default() })
    }

    /// An error pointed at the model's file, its nodes looked up in the source
    /// graph too.
    fn located(&self, e: Error) -> Error {
        e.with_positions_from(&self.source).in_file(self.file.as_deref())
    }

    /// The inputs: names and types, as the model declares them.
    pub fn inputs(&self) -> Vec<IoDesc> {
        self.source.inputs().iter().map(|&i| IoDesc { name: self.source.node(i).name().to_string(), ty: self.source.node(i).types[0].clone() }).collect()
    }

    /// The outputs: names and types.
    pub fn outputs(&self) -> Vec<IoDesc> {
        self.source
            .outputs()
            .iter()
            .filter_map(|&v| Some(IoDesc { name: self.source.value_name(v).to_string(), ty: self.source.value_type(v)?.clone() }))
            .collect()
    }

    /// The optimized graph (what the backend compiles).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph as loaded (without its weights once compiled: [`Model::compile`]).
    pub fn source_graph(&self) -> &Graph {
        &self.source
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The model's file as the user named it.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The optimization passes that ran, with their times and node counts.
    pub fn passes(&self) -> &[PassRecord] {
        &self.passes
    }

    /// Sizes for the symbolic dims of the inputs: `given` (each must name a
    /// symbol of an input), the rest 1.
    pub fn bindings(&self, given: &[(String, u64)]) -> Result<Bindings> {
        let g = &self.source;
        let symbols: BTreeSet<String> = g.inputs().iter().flat_map(|&i| g.node(i).types[0].shape.symbols()).map(|s| s.to_string()).collect();
        let mut b = Bindings::new();
        let mut problems = Vec::new();
        for (name, size) in given {
            if !symbols.contains(name) {
                let known: Vec<&str> = symbols.iter().map(String::as_str).collect();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                problems.push(Error::text(
                    ErrorKind::Options,
                    format!("--dim {name}={size}: the inputs of graph {} have no symbol `{name}` (symbols: {known})", g.name),
                ));
            }
            b.insert(name.clone(), *size);
        }
        if !problems.is_empty() {
            return Err(Error::all(ErrorKind::Options, problems));
        }
        for s in symbols {
            b.entry(s).or_insert(1);
        }
        Ok(b)
    }

    /// Fails when a run at these bindings cannot fit in the memory available
    /// (checked before anything of that size is allocated; see [`crate::memory`]).
    pub fn check_memory(&self, b: &Bindings) -> Result<()> {
        crate::memory::check(&self.source, b)
    }

    /// The model compiled ahead of time, or as text: the kernel IR, CLIF, LLVM
    /// IR, assembly, an object file, a C library, or WGSL (see [`Emit`]), with
    /// the symbolic dims bound by `dims`.
    pub fn emit(&self, what: Emit, dims: &Bindings) -> Result<Emitted> {
        emit::emit(&self.graph, self.source_graph(), &self.options, what, dims).map_err(|e| self.located(e))
    }
}

/// The error for profiling the interpreter, which has no kernels.
pub(crate) fn no_kernels() -> Error {
    Error::text(ErrorKind::Options, "profiling times the kernels of a compiled backend (cranelift, llvm or wgsl), not the interpreter")
}

/// A model compiled for a backend: run it on named tensors, profile it, describe
/// its inputs and outputs, emit it ahead of time.
#[derive(Debug)]
pub struct CompiledModel {
    model: Model,
    backend: Box<dyn Backend>,
    exe: Box<dyn Executable>,
    compile_ms: f64,
    /// The bindings whose memory needs were checked ([`crate::memory`]).
    checked: std::sync::Mutex<BTreeSet<Bindings>>,
}

impl CompiledModel {
    /// Runs on named inputs; the outputs by name.
    pub fn run(&self, inputs: &Tensors) -> Result<Tensors> {
        self.fits(inputs)?;
        self.exe.run(inputs).map_err(|e| self.model.located(e))
    }

    /// Runs with each kernel call timed (`None` on the interpreter).
    pub fn run_profiled(&self, inputs: &Tensors) -> Result<(Tensors, Option<Profile>)> {
        self.fits(inputs)?;
        self.exe.run_profiled(inputs).map_err(|e| self.model.located(e))
    }

    /// The memory check of [`Model::check_memory`], once per set of input shapes.
    fn fits(&self, inputs: &Tensors) -> Result<()> {
        let Ok(b) = smelt_interp::bind_inputs(self.model.source_graph(), inputs) else {
            // Bad inputs: the backend reports them.
            return Ok(());
        };
        if self.checked.lock().is_ok_and(|c| c.contains(&b)) {
            return Ok(());
        }
        self.model.check_memory(&b).map_err(|e| self.model.located(e))?;
        if let Ok(mut c) = self.checked.lock() {
            c.insert(b);
        }
        Ok(())
    }

    /// Each kernel call's time on these inputs (an error on the interpreter, which
    /// has no kernels).
    pub fn profile(&self, inputs: &Tensors) -> Result<Profile> {
        match self.run_profiled(inputs)? {
            (_, Some(p)) => Ok(p),
            (_, None) => Err(no_kernels()),
        }
    }

    /// Builds the plan (and native code or pipelines) for the shapes of these
    /// inputs ahead of the first run, checking them against the model.
    pub fn prepare(&self, inputs: &Tensors) -> Result<()> {
        self.fits(inputs)?;
        let b = smelt_interp::bind_inputs(self.model.graph(), inputs).map_err(|e| self.model.located(error::runtime(self.model.graph(), e)))?;
        self.exe.prepare(&b).map_err(|e| self.model.located(e))
    }

    /// The memory a run on these inputs' shapes takes on a CPU backend: the
    /// arena's bytes (after reuse) and the constants' (weights, packed and
    /// shared); `None` on the other backends.
    pub fn plan_stats(&self, inputs: &Tensors) -> Result<Option<smelt_runtime::exec::PlanStats>> {
        self.fits(inputs)?;
        let b = smelt_interp::bind_inputs(self.model.graph(), inputs).map_err(|e| self.model.located(error::runtime(self.model.graph(), e)))?;
        self.exe.plan_stats(&b).map_err(|e| self.model.located(e))
    }

    /// The backend's name (`cranelift (1 thread)`, `wgsl`, …).
    pub fn backend_name(&self) -> String {
        self.backend.name()
    }

    /// The loaded and optimized model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn inputs(&self) -> Vec<IoDesc> {
        self.model.inputs()
    }

    pub fn outputs(&self) -> Vec<IoDesc> {
        self.model.outputs()
    }

    /// The optimized graph (what runs).
    pub fn graph(&self) -> &Graph {
        self.model.graph()
    }

    pub fn options(&self) -> &Options {
        self.model.options()
    }

    /// Where preparing the model took its time.
    pub fn timings(&self) -> Timings {
        Timings { optimize_ms: self.model.optimize_ms, compile_ms: self.compile_ms }
    }

    /// See [`Model::emit`].
    pub fn emit(&self, what: Emit, dims: &Bindings) -> Result<Emitted> {
        self.model.emit(what, dims)
    }
}
