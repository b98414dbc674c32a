//! A model compiled for the GPU: plans per set of input shapes (lowered with the
//! GPU target, one WGSL shader per step, buffers, pipelines and bind groups made
//! once), and runs that encode a whole inference into one command buffer.

use super::{Device, Error, Result};
use smelt_codegen::lower::{self, BufKind, Program};
use smelt_codegen::wgsl::{self, Dispatch, Shader};
use smelt_ir::{Bindings, Data, Graph, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A graph compiled for the WGSL backend.
#[derive(Debug)]
pub struct GpuModel {
    graph: Graph,
    device: Arc<Device>,
    options: wgsl::Options,
    plans: crate::plan_cache::PlanCache<GpuPlan>,
}

/// The lowering's "not supported" names the WGSL backend here.
fn on_wgsl(e: smelt_codegen::Error) -> Error {
    match e {
        smelt_codegen::Error::Unsupported { op, node, .. } => Error::Codegen(smelt_codegen::Error::Unsupported { backend: "wgsl", op, node }),
        e => Error::Codegen(e),
    }
}

/// Compiles `g` for `device`: every op must be lowered (else the error names the
/// first node that is not); with no symbolic input dims the plan is built now.
/// Shaders are emitted with the device's options ([`Device::wgsl_options`]) and
/// the defaults of the schedule.
pub fn compile(g: &Graph, device: Arc<Device>) -> Result<GpuModel> {
    let options = device.wgsl_options(&smelt_codegen::schedule::ScheduleOptions::default());
    compile_with(g, device, options)
}

/// [`compile`] with explicit emit options (a shader that needs a feature the
/// device lacks is an error when the plan is built).
pub fn compile_with(g: &Graph, device: Arc<Device>, options: wgsl::Options) -> Result<GpuModel> {
    smelt_codegen::wgsl::check(g).map_err(on_wgsl)?;
    let model = GpuModel { graph: g.clone(), device, options, plans: crate::plan_cache::PlanCache::new() };
    if g.inputs().iter().all(|&i| g.node(i).types[0].shape.is_fixed()) {
        model.plan(&Bindings::new())?;
    }
    Ok(model)
}

impl GpuModel {
    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The options its shaders are emitted with.
    pub fn options(&self) -> wgsl::Options {
        self.options
    }

    /// The plan for these bindings of the symbolic dims (built once, cached
    /// with the most recently used [`crate::MAX_PLANS`]).
    pub fn plan(&self, b: &Bindings) -> Result<Arc<GpuPlan>> {
        if let Some(p) = self.plans.get(b) {
            return Ok(p);
        }
        let bound = self.graph.bind(b).map_err(|d| crate::Error::Ir(d.into()))?;
        let plan = Arc::new(GpuPlan::build(&bound, self.device.clone(), &self.options)?);
        self.plans.insert(b, plan.clone());
        Ok(plan)
    }

    /// Runs the model on named inputs; returns the outputs by name.
    pub fn run(&self, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>> {
        let b = crate::interp::bind_inputs(&self.graph, inputs)?;
        self.plan(&b)?.run(inputs)
    }

    /// Runs the model with every step's GPU time measured by timestamp queries
    /// (each step in its own compute pass); needs an adapter with
    /// `TIMESTAMP_QUERY`.
    pub fn run_profiled(&self, inputs: &BTreeMap<String, Tensor>) -> Result<(BTreeMap<String, Tensor>, crate::exec::Profile)> {
        let b = crate::interp::bind_inputs(&self.graph, inputs)?;
        let plan = self.plan(&b)?;
        let (out, secs) = plan.execute(inputs, true)?;
        let kernels = plan
            .prog
            .steps
            .iter()
            .zip(secs)
            .map(|(st, seconds)| crate::exec::KernelTime { kernel: st.kernel.name.clone(), node: st.node.clone(), seconds })
            .collect();
        Ok((out, crate::exec::Profile { kernels }))
    }
}

#[derive(Debug)]
struct GpuStep {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

/// A lowered program on the device: its buffers (constants uploaded), a pipeline
/// and a bind group per step.
#[derive(Debug)]
pub struct GpuPlan {
    prog: Program,
    device: Arc<Device>,
    buffers: Vec<wgpu::Buffer>,
    steps: Vec<GpuStep>,
    shaders: Vec<Shader>,
}

/// Bytes of a GPU buffer for `n` bytes of data (a multiple of 4, never 0).
fn padded(n: u64) -> u64 {
    n.div_ceil(4).max(1) * 4
}

/// What this device cannot run (a limit of the adapter, not a missing
/// lowering): an error, never filed as "not supported".
fn limit(what: &str, node: &str) -> Error {
    Error::Limit { what: what.to_string(), node: node.to_string() }
}

/// The workgroup grid of a shader.
fn groups(sh: &Shader, node: &str) -> Result<[u32; 3]> {
    Ok(match sh.dispatch {
        Dispatch::Grid(g) => g,
        Dispatch::Linear { invocations, workgroup } => {
            let n = invocations.div_ceil(workgroup as u64).max(1);
            let x = n.min(65535);
            let y = n.div_ceil(x);
            if y > 65535 {
                return Err(limit(&format!("{invocations} parallel iterations"), node));
            }
            [x as u32, y as u32, 1]
        }
    })
}

impl GpuPlan {
    /// Lowers `g` (shapes bound) with the GPU target and prepares it on `device`,
    /// its shaders emitted with `opts`.
    pub fn build(g: &Graph, device: Arc<Device>, opts: &wgsl::Options) -> Result<GpuPlan> {
        let prog = lower::lower(g, &wgsl::target()).map_err(on_wgsl)?;
        let dev = &device.device;
        let lim = &device.limits;
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut buffers = Vec::with_capacity(prog.buffers.len());
        for b in &prog.buffers {
            if b.bytes() > lim.max_storage_buffer_binding_size || b.bytes() > lim.max_buffer_size {
                return Err(limit(&format!("a buffer of {} bytes (the adapter binds at most {})", b.bytes(), lim.max_storage_buffer_binding_size), &b.name));
            }
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
            let buf = dev.create_buffer(&wgpu::BufferDescriptor { label: Some(&b.name), size: padded(b.bytes()), usage, mapped_at_creation: false });
            if let BufKind::Const(bytes) = &b.kind {
                // Weights are uploaded once, here.
                let mut data = bytes.to_vec();
                data.resize(padded(data.len() as u64) as usize, 0);
                device.queue.write_buffer(&buf, 0, &data);
            }
            buffers.push(buf);
        }
        let mut steps = Vec::with_capacity(prog.steps.len());
        let mut shaders = Vec::with_capacity(prog.steps.len());
        for st in &prog.steps {
            let sh = wgsl::emit_step(st, opts)?;
            if sh.needs.f64 && !device.features.contains(wgpu::Features::SHADER_F64) {
                return Err(limit("f64 requantization (the adapter lacks shader-f64)", &st.node));
            }
            if sh.needs.f16 && !device.features.contains(wgpu::Features::SHADER_F16) {
                return Err(limit("native f16 storage (the adapter lacks shader-f16; --schedule wgsl-f16=off uses the packed form)", &st.node));
            }
            if st.args.len() > lim.max_storage_buffers_per_shader_stage as usize {
                return Err(limit(&format!("a kernel of {} buffers (the adapter allows {})", st.args.len(), lim.max_storage_buffers_per_shader_stage), &st.node));
            }
            for (i, a) in st.args.iter().enumerate() {
                let aliased = st.args.iter().enumerate().any(|(j, b)| j != i && b == a && (sh.writes[i] || sh.writes[j]));
                if aliased {
                    return Err(limit("a kernel writing a buffer it also reads through another binding", &st.node));
                }
            }
            let grid = groups(&sh, &st.node)?;
            let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&sh.name),
                source: wgpu::ShaderSource::Wgsl(sh.source.as_str().into()),
            });
            let entries: Vec<wgpu::BindGroupLayoutEntry> = sh
                .writes
                .iter()
                .enumerate()
                .map(|(i, &w)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Storage { read_only: !w }, has_dynamic_offset: false, min_binding_size: None },
                    count: None,
                })
                .collect();
            let bgl = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&sh.name), entries: &entries });
            let layout = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor { label: Some(&sh.name), bind_group_layouts: &[Some(&bgl)], immediate_size: 0 });
            let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&sh.name),
                layout: Some(&layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            let bentries: Vec<wgpu::BindGroupEntry> =
                st.args.iter().enumerate().map(|(i, a)| wgpu::BindGroupEntry { binding: i as u32, resource: buffers[a.0].as_entire_binding() }).collect();
            let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(&sh.name), layout: &bgl, entries: &bentries });
            steps.push(GpuStep { pipeline, bind_group, groups: grid });
            shaders.push(sh);
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("preparing {}: {e}", g.name)));
        }
        Ok(GpuPlan { prog, device, buffers, steps, shaders })
    }

    pub fn program(&self) -> &Program {
        &self.prog
    }

    /// The shaders, one per step.
    pub fn shaders(&self) -> &[Shader] {
        &self.shaders
    }

    /// Runs the plan: inputs written, every step dispatched in one command buffer,
    /// outputs and check statuses read back once at the end.
    pub fn run(&self, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>> {
        Ok(self.execute(inputs, false)?.0)
    }

    /// One run; with `profile`, each step in its own compute pass between two
    /// timestamps, and the seconds of each step returned (else none).
    fn execute(&self, inputs: &BTreeMap<String, Tensor>, profile: bool) -> Result<(BTreeMap<String, Tensor>, Vec<f64>)> {
        let (dev, queue) = (&self.device.device, &self.device.queue);
        if profile && !self.device.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Device(format!("{} has no timestamp queries: cannot profile", self.device.info.name)));
        }
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        for (name, b) in &self.prog.inputs {
            let t = inputs.get(name).ok_or_else(|| crate::Error::Inputs(format!("missing input `{name}`")))?;
            let buf = &self.prog.buffers[b.0];
            let mut bytes = t.data().to_le_bytes();
            if bytes.len() as u64 != buf.bytes() {
                return Err(crate::Error::Inputs(format!("input `{name}` has {} bytes, the plan expects {}", bytes.len(), buf.bytes())).into());
            }
            bytes.resize(padded(bytes.len() as u64) as usize, 0);
            queue.write_buffer(&self.buffers[b.0], 0, &bytes);
        }
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("smelt inference") });
        let checks: Vec<(usize, lower::BufIdx)> =
            self.prog.steps.iter().enumerate().filter_map(|(i, s)| s.check.as_ref().map(|c| (i, c.buf))).collect();
        for (_, b) in &checks {
            enc.clear_buffer(&self.buffers[b.0], 0, None);
        }
        // Profiling: a query set (at most QUERY_SET_MAX_QUERIES queries) per
        // chunk of steps, two timestamps per step.
        let per_set = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;
        let sets: Vec<wgpu::QuerySet> = if profile {
            (0..self.steps.len().div_ceil(per_set))
                .map(|c| {
                    let n = (self.steps.len() - c * per_set).min(per_set) as u32;
                    dev.create_query_set(&wgpu::QuerySetDescriptor { label: Some("step times"), ty: wgpu::QueryType::Timestamp, count: 2 * n })
                })
                .collect()
        } else {
            vec![]
        };
        if profile {
            for (i, s) in self.steps.iter().enumerate() {
                let writes = wgpu::ComputePassTimestampWrites {
                    query_set: &sets[i / per_set],
                    beginning_of_pass_write_index: Some((2 * (i % per_set)) as u32),
                    end_of_pass_write_index: Some((2 * (i % per_set) + 1) as u32),
                };
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("smelt step"), timestamp_writes: Some(writes) });
                pass.set_pipeline(&s.pipeline);
                pass.set_bind_group(0, &s.bind_group, &[]);
                pass.dispatch_workgroups(s.groups[0], s.groups[1], s.groups[2]);
            }
        } else {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("smelt steps"), timestamp_writes: None });
            for s in &self.steps {
                pass.set_pipeline(&s.pipeline);
                pass.set_bind_group(0, &s.bind_group, &[]);
                pass.dispatch_workgroups(s.groups[0], s.groups[1], s.groups[2]);
            }
        }
        let stamps: Option<(wgpu::Buffer, wgpu::Buffer)> = profile.then(|| {
            let size = 16 * per_set as u64 * sets.len() as u64;
            let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            for (c, set) in sets.iter().enumerate() {
                let n = 2 * (self.steps.len() - c * per_set).min(per_set) as u32;
                enc.resolve_query_set(set, 0..n, &resolve, 16 * (c * per_set) as u64);
            }
            let read = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            enc.copy_buffer_to_buffer(&resolve, 0, &read, 0, size);
            (resolve, read)
        });
        // Read back: the outputs computed on the device and every status buffer.
        let mut reads: Vec<lower::BufIdx> = self.prog.outputs.iter().map(|o| o.buf).filter(|b| !matches!(self.prog.buffers[b.0].kind, BufKind::Const(_))).collect();
        reads.extend(checks.iter().map(|(_, b)| *b));
        reads.sort();
        reads.dedup();
        let staging: Vec<wgpu::Buffer> = reads
            .iter()
            .map(|b| {
                let size = padded(self.prog.buffers[b.0].bytes());
                let s = dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                enc.copy_buffer_to_buffer(&self.buffers[b.0], 0, &s, 0, size);
                s
            })
            .collect();
        queue.submit([enc.finish()]);
        let failed = Arc::new(Mutex::new(None::<String>));
        for s in staging.iter().chain(stamps.as_ref().map(|(_, r)| r)) {
            let f = failed.clone();
            s.map_async(wgpu::MapMode::Read, .., move |r| {
                if let Err(e) = r
                    && let Ok(mut g) = f.lock()
                {
                    *g = Some(e.to_string());
                }
            });
        }
        dev.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Device(format!("waiting for the device: {e}")))?;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("running {}: {e}", self.prog.name)));
        }
        if let Some(e) = failed.lock().ok().and_then(|g| g.clone()) {
            return Err(Error::Device(format!("reading results back: {e}")));
        }
        let mut host: HashMap<lower::BufIdx, Vec<u8>> = HashMap::new();
        for (b, s) in reads.iter().zip(&staging) {
            let view = s.get_mapped_range(..).map_err(|e| Error::Device(format!("reading results back: {e}")))?;
            let n = self.prog.buffers[b.0].bytes() as usize;
            host.insert(*b, view[..n].to_vec());
            drop(view);
            s.unmap();
        }
        let mut secs = vec![];
        if let Some((_, read)) = &stamps {
            let view = read.get_mapped_range(..).map_err(|e| Error::Device(format!("reading timestamps back: {e}")))?;
            let tick = queue.get_timestamp_period() as f64 * 1e-9;
            let t = |k: usize| u64::from_le_bytes(view[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
            secs = (0..self.steps.len()).map(|i| t(2 * i + 1).saturating_sub(t(2 * i)) as f64 * tick).collect();
            drop(view);
            read.unmap();
        }
        // The first failed check, in step order, is the error.
        for (i, b) in &checks {
            let (st, bytes) = (&self.prog.steps[*i], &host[b]);
            let word = |k: usize| i64::from_le_bytes(bytes[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
            if let Some(check) = &st.check
                && word(0) != 0
            {
                let message = check.message.replace("{0}", &word(1).to_string()).replace("{1}", &word(2).to_string()).replace("{2}", &word(3).to_string());
                return Err(crate::Error::Node { node: st.node.clone(), op: check.op.clone(), message }.into());
            }
        }
        let mut out = BTreeMap::new();
        for o in &self.prog.outputs {
            let buf = &self.prog.buffers[o.buf.0];
            let bytes: &[u8] = match &buf.kind {
                BufKind::Const(c) => &c[..buf.bytes() as usize],
                _ => host.get(&o.buf).map(Vec::as_slice).unwrap_or(&[]),
            };
            let data = Data::from_le_bytes(o.dtype, bytes).ok_or_else(|| crate::Error::Inputs(format!("output `{}` has malformed bytes", o.name)))?;
            out.insert(o.name.clone(), Tensor::new(o.shape.clone(), data).map_err(|e| crate::Error::Inputs(e.to_string()))?);
        }
        Ok((out, secs))
    }
}
