//! The backends behind one trait, as tract's `Runtime`: each compiles a graph
//! into an [`Executable`] that runs it on named tensors. [`for_options`] picks
//! the one an [`Options`] names; the numerical suite also builds them directly
//! (a CPU backend with an explicit schedule, say).
//!
//! Errors come out rendered against the graph that was compiled (a node's name
//! and, where the graph has one, its line and column); the compiled model
//! ([`crate::CompiledModel`]) points them at the model's file.

use crate::error::{self, Error, ErrorKind, Result};
use crate::options::{BackendKind, Options};
use smelt_codegen::schedule::{ScheduleOptions, Target};
use smelt_ir::{Bindings, Graph, Tensor};
use smelt_runtime::exec::{self, Profile};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Named tensors: a model's inputs or outputs.
pub type Tensors = BTreeMap<String, Tensor>;

/// A code generator (or the interpreter) behind one interface.
pub trait Backend: Debug + Send + Sync {
    /// Its name in messages and tables (`cranelift`, `llvm (2 threads)`, …).
    fn name(&self) -> String;
    /// Which backend it is.
    fn kind(&self) -> BackendKind;
    /// Compiles `g` (verified, weights set). An op the backend does not lower is
    /// an [`ErrorKind::Unsupported`] error naming the node.
    fn compile(&self, g: &Graph) -> Result<Box<dyn Executable>>;
}

/// A compiled graph.
pub trait Executable: Debug + Send + Sync {
    /// Runs on named inputs; the outputs by name.
    fn run(&self, inputs: &Tensors) -> Result<Tensors>;
    /// Runs with each kernel call timed (`None` on the interpreter).
    fn run_profiled(&self, inputs: &Tensors) -> Result<(Tensors, Option<Profile>)>;
    /// Builds what runs at these bindings of the symbolic dims need (plans,
    /// native code, GPU pipelines) ahead of the first run.
    fn prepare(&self, bindings: &Bindings) -> Result<()>;
    /// The memory of the plan at these bindings (CPU backends; built if need be).
    fn plan_stats(&self, _bindings: &Bindings) -> Result<Option<smelt_runtime::exec::PlanStats>> {
        Ok(None)
    }
}

/// The backend an [`Options`] names. A backend left out of this build is an
/// [`ErrorKind::NotBuilt`] error that names the cargo feature.
pub fn for_options(o: &Options) -> Result<Box<dyn Backend>> {
    if !o.backend.built() {
        let (feature, needs) = o.backend.feature().unwrap_or(("-", "-"));
        let kind = ErrorKind::NotBuilt { backend: o.backend.name().into(), feature: feature.into() };
        return Err(Error::text(
            kind,
            format!("the {} backend is not built into this smelt: build it with the cargo feature `{feature}` (needs {needs})", o.backend),
        ));
    }
    Ok(match o.backend {
        BackendKind::Interp => Box::new(Interp),
        BackendKind::Cranelift | BackendKind::Llvm => {
            let codegen = o.backend.codegen().expect("a native backend");
            let b = Native { backend: codegen, threads: o.threads.max(1), schedule: o.schedule.clone(), target: o.target.clone(), label: None };
            // A schedule the host cannot run fails here, before any model is loaded.
            b.target()?;
            Box::new(b)
        }
        BackendKind::Wgsl => wgsl_backend(o)?,
    })
}

#[cfg(feature = "wgsl")]
fn wgsl_backend(o: &Options) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Wgsl { adapter: o.adapter.clone(), schedule: o.schedule.clone(), label: None }))
}

#[cfg(not(feature = "wgsl"))]
fn wgsl_backend(_: &Options) -> Result<Box<dyn Backend>> {
    unreachable!("BackendKind::built() is false without the wgsl feature")
}

/// The reference interpreter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Interp;

#[derive(Debug)]
struct InterpExe(Graph);

impl Backend for Interp {
    fn name(&self) -> String {
        "interp".into()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Interp
    }

    fn compile(&self, g: &Graph) -> Result<Box<dyn Executable>> {
        Ok(Box::new(InterpExe(g.clone())))
    }
}

impl Executable for InterpExe {
    fn run(&self, inputs: &Tensors) -> Result<Tensors> {
        smelt_interp::run(&self.0, inputs).map_err(|e| error::runtime(&self.0, e))
    }

    fn run_profiled(&self, inputs: &Tensors) -> Result<(Tensors, Option<Profile>)> {
        Ok((self.run(inputs)?, None))
    }

    fn prepare(&self, _: &Bindings) -> Result<()> {
        Ok(())
    }
}

/// Cranelift or LLVM through the CPU executor (`smelt_runtime::exec`).
#[derive(Debug, Clone)]
pub struct Native {
    pub backend: smelt_codegen::Backend,
    pub threads: usize,
    /// Switches on the backend's schedule.
    pub schedule: ScheduleOptions,
    /// An explicit schedule instead (see [`Options::target`]).
    pub target: Option<Target>,
    /// A name for tables instead of the default (`llvm (2 threads)`).
    pub label: Option<String>,
}

impl Native {
    /// `backend` on `threads` threads with its own schedule.
    pub fn new(backend: smelt_codegen::Backend, threads: usize) -> Native {
        Native { backend, threads, schedule: ScheduleOptions::default(), target: None, label: None }
    }

    /// The schedule its plans are lowered with.
    pub fn target(&self) -> Result<Target> {
        match &self.target {
            Some(t) => Ok(t.clone()),
            None => Target::for_backend(self.backend, &self.schedule).map_err(|e| error::codegen(&Graph::new("-"), e)),
        }
    }

    fn exec_options(&self) -> exec::Options {
        exec::Options { threads: self.threads, backend: self.backend, schedule: self.schedule.clone(), target: self.target.clone() }
    }
}

#[derive(Debug)]
struct NativeExe(exec::CompiledModel);

impl Backend for Native {
    fn name(&self) -> String {
        match &self.label {
            Some(l) => l.clone(),
            None => format!("{} ({} thread{})", self.backend.name(), self.threads, if self.threads == 1 { "" } else { "s" }),
        }
    }

    fn kind(&self) -> BackendKind {
        match self.backend {
            smelt_codegen::Backend::Llvm => BackendKind::Llvm,
            _ => BackendKind::Cranelift,
        }
    }

    fn compile(&self, g: &Graph) -> Result<Box<dyn Executable>> {
        if crate::staged::needed(g) {
            return crate::staged::compile(g, &|s| self.compile(s));
        }
        let m = exec::compile(g, &self.exec_options()).map_err(|e| error::exec(g, e))?;
        Ok(Box::new(NativeExe(m)))
    }
}

impl Executable for NativeExe {
    fn run(&self, inputs: &Tensors) -> Result<Tensors> {
        self.0.run(inputs).map_err(|e| error::exec(self.0.graph(), e))
    }

    fn run_profiled(&self, inputs: &Tensors) -> Result<(Tensors, Option<Profile>)> {
        let (out, p) = self.0.run_profiled(inputs).map_err(|e| error::exec(self.0.graph(), e))?;
        Ok((out, Some(p)))
    }

    fn prepare(&self, b: &Bindings) -> Result<()> {
        self.0.plan(b).map(|_| ()).map_err(|e| error::exec(self.0.graph(), e))
    }

    fn plan_stats(&self, b: &Bindings) -> Result<Option<smelt_runtime::exec::PlanStats>> {
        self.0.plan(b).map(|p| Some(p.stats())).map_err(|e| error::exec(self.0.graph(), e))
    }
}

/// WGSL shaders through wgpu (`smelt_runtime::gpu`) on a Vulkan adapter.
#[cfg(feature = "wgsl")]
#[derive(Debug, Clone, Default)]
pub struct Wgsl {
    /// The adapter (see [`Options::adapter`]).
    pub adapter: Option<String>,
    /// `wgsl-f16` and `wgsl-tile`.
    pub schedule: ScheduleOptions,
    /// A name for tables instead of `wgsl`.
    pub label: Option<String>,
}

#[cfg(feature = "wgsl")]
impl Wgsl {
    /// The device (opened once per process and adapter choice).
    pub fn device(&self) -> Result<std::sync::Arc<smelt_runtime::gpu::Device>> {
        smelt_runtime::gpu::device(self.adapter.as_deref()).map_err(|e| error::gpu(&Graph::new("-"), e))
    }
}

#[cfg(feature = "wgsl")]
#[derive(Debug)]
struct WgslExe(smelt_runtime::gpu::GpuModel);

#[cfg(feature = "wgsl")]
impl Backend for Wgsl {
    fn name(&self) -> String {
        self.label.clone().unwrap_or_else(|| "wgsl".into())
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Wgsl
    }

    fn compile(&self, g: &Graph) -> Result<Box<dyn Executable>> {
        if crate::staged::needed(g) {
            return crate::staged::compile(g, &|s| self.compile(s));
        }
        // What the GPU lowering does not support is reported before a device is
        // opened (a machine without Vulkan gets the op, not a driver error).
        smelt_codegen::wgsl::check(g).map_err(|e| error::codegen(g, e))?;
        let device = self.device()?;
        let options = device.wgsl_options(&self.schedule);
        let m = smelt_runtime::gpu::compile_with(g, device, options).map_err(|e| error::gpu(g, e))?;
        Ok(Box::new(WgslExe(m)))
    }
}

#[cfg(feature = "wgsl")]
impl Executable for WgslExe {
    fn run(&self, inputs: &Tensors) -> Result<Tensors> {
        self.0.run(inputs).map_err(|e| error::gpu(self.0.graph(), e))
    }

    fn run_profiled(&self, inputs: &Tensors) -> Result<(Tensors, Option<Profile>)> {
        let (out, p) = self.0.run_profiled(inputs).map_err(|e| error::gpu(self.0.graph(), e))?;
        Ok((out, Some(p)))
    }

    fn prepare(&self, b: &Bindings) -> Result<()> {
        self.0.plan(b).map(|_| ()).map_err(|e| error::gpu(self.0.graph(), e))
    }
}
