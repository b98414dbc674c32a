//! The executor of compiled models: a graph is lowered to kernels
//! (`smelt_codegen::lower`), compiled by a native backend (Cranelift's or LLVM's
//! JIT, both bound and called through `smelt_codegen::native`), and run as a
//! plan of kernel calls over one arena whose layout the memory planner
//! ([`memory`]) chose. Parallel loops run on a rayon thread pool.
//!
//! Symbolic dims are specialized: a model is compiled once per set of bound input
//! shapes and the plans are cached by those bindings. [`CompiledModel::run_profiled`]
//! also returns each kernel call's time (`smelt run --profile`).
//!
//! ```
//! use smelt_runtime::exec::{compile, Options};
//! use smelt_ir::{text::parse, Tensor};
//! use std::collections::BTreeMap;
//!
//! let g = parse("graph g(x: f32[N, 3]) -> (y) {\n  y = relu(x)\n}\n").unwrap();
//! let model = compile(&g, &Options::default()).unwrap();
//! let x = Tensor::f32(vec![2, 3], vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]).unwrap();
//! let out = model.run(&BTreeMap::from([("x".to_string(), x)])).unwrap();
//! assert_eq!(out["y"].to_f32(), [0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
//! ```

pub mod memory;
mod plan;

pub use plan::{KernelTime, Plan, PlanStats, Profile};

use smelt_codegen::Backend;
use smelt_codegen::schedule::{ScheduleOptions, Target};
use smelt_ir::{Bindings, Graph, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Errors of compiling or running a model on a compiled backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Codegen(#[from] smelt_codegen::Error),
    #[error(transparent)]
    Runtime(#[from] crate::Error),
    #[error("{0}")]
    ThreadPool(String),
    /// `Backend::Wgsl` was asked of the CPU executor.
    #[error("the CPU executor runs cranelift and llvm code; WGSL models run through smelt_runtime::gpu::compile")]
    NotNative,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to compile and run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads for parallel loops (1: run on the calling thread).
    pub threads: usize,
    /// The native code generator: Cranelift (fast to compile) or LLVM (fastest code).
    pub backend: Backend,
    /// Switches on the backend's schedule ([`Target::for_backend`]).
    pub schedule: ScheduleOptions,
    /// An explicit schedule instead (tests of paths no host default takes);
    /// `None`: the backend's, with `schedule` applied.
    pub target: Option<Target>,
}

impl Default for Options {
    fn default() -> Options {
        Options { threads: 1, backend: Backend::Cranelift, schedule: ScheduleOptions::default(), target: None }
    }
}

impl Options {
    /// `threads` threads with the backend's own schedule.
    pub fn for_backend(backend: Backend, threads: usize) -> Options {
        Options { threads, backend, ..Options::default() }
    }

    /// The schedule plans are lowered with (see [`Options::target`]).
    pub fn schedule(&self) -> Result<Target> {
        match &self.target {
            Some(t) => Ok(t.clone()),
            None => Ok(Target::for_backend(self.backend, &self.schedule)?),
        }
    }
}

/// A model compiled for a native backend; plans per input shape are built on
/// first use and cached (the most recently used [`crate::MAX_PLANS`]).
#[derive(Debug)]
pub struct CompiledModel {
    graph: Graph,
    options: Options,
    pool: Option<Arc<rayon::ThreadPool>>,
    plans: crate::plan_cache::PlanCache<Plan>,
}

/// Compiles `g`. Every op must be supported by the backend (else the error names
/// the first node that is not); when the inputs have no symbolic dims the plan is
/// built now, else on the first `run` of each shape.
pub fn compile(g: &Graph, options: &Options) -> Result<CompiledModel> {
    if options.backend == Backend::Wgsl {
        // The executor runs native code only; GPU models are `crate::gpu::compile`'s.
        return Err(Error::NotNative);
    }
    if !options.backend.built() {
        return Err(smelt_codegen::not_built(options.backend).into());
    }
    options.schedule()?;
    smelt_codegen::lower::check(g).map_err(|e| for_backend(e, options.backend))?;
    let pool = if options.threads > 1 {
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .build()
            .map_err(|e| Error::ThreadPool(e.to_string()))?;
        Some(Arc::new(p))
    } else {
        None
    };
    let model = CompiledModel { graph: g.clone(), options: options.clone(), pool, plans: crate::plan_cache::PlanCache::new() };
    let fixed = g.inputs().iter().all(|&i| g.node(i).types[0].shape.is_fixed());
    if fixed {
        model.plan(&Bindings::new())?;
    }
    Ok(model)
}

/// Lowering is shared by the native backends: name the one that was asked for.
fn for_backend(e: smelt_codegen::Error, backend: Backend) -> smelt_codegen::Error {
    match e {
        smelt_codegen::Error::Unsupported { op, node, .. } => smelt_codegen::Error::Unsupported { backend: backend.name(), op, node },
        e => e,
    }
}

impl CompiledModel {
    /// The plan for these bindings of the symbolic dims (built once).
    pub fn plan(&self, b: &Bindings) -> Result<Arc<Plan>> {
        if let Some(p) = self.plans.get(b) {
            return Ok(p);
        }
        let bound = self.graph.bind(b).map_err(|d| crate::Error::Ir(d.into()))?;
        let plan = Arc::new(
            Plan::build(&bound, &self.options.schedule()?, self.options.backend).map_err(|e| match e {
                Error::Codegen(e) => Error::Codegen(for_backend(e, self.options.backend)),
                e => e,
            })?,
        );
        self.plans.insert(b, plan.clone());
        Ok(plan)
    }

    /// Runs the model on named inputs; returns the outputs by name.
    pub fn run(&self, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>> {
        let b = crate::interp::bind_inputs(&self.graph, inputs)?;
        let plan = self.plan(&b)?;
        plan.run(inputs, self.pool.as_deref(), None)
    }

    /// Runs the model and times every kernel call.
    pub fn run_profiled(&self, inputs: &BTreeMap<String, Tensor>) -> Result<(BTreeMap<String, Tensor>, Profile)> {
        let b = crate::interp::bind_inputs(&self.graph, inputs)?;
        let plan = self.plan(&b)?;
        let mut profile = Profile::default();
        let out = plan.run(inputs, self.pool.as_deref(), Some(&mut profile))?;
        Ok((out, profile))
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn options(&self) -> &Options {
        &self.options
    }
}
