//! The GPU runtime: models compiled to WGSL (`smelt_codegen::wgsl`) and run through
//! wgpu on Vulkan.
//!
//! - [`Device`]: the adapter and its device. The adapter is the high-performance
//!   one unless the caller names another (`smelt run --adapter`): an index in the
//!   list of adapters, a case-insensitive part of an adapter's name, or
//!   `low-power`. With no Vulkan adapter at all the error says how to get one.
//! - [`GpuModel`] ([`model`]): lowered with the GPU target, one shader per step;
//!   weights are uploaded once and pipelines and bind groups created once per set
//!   of input shapes; a whole inference is one command buffer (one compute pass,
//!   every step a dispatch, no readback between kernels); the outputs and the
//!   status buffers of run-time checks are read back at the end.
//! - f16 tensors live in `array<f16>` buffers when the adapter has `shader-f16`
//!   (requested then) and its conversions of every f16 value are exact
//!   ([`probe_f16`], once per device); the schedule option `wgsl-f16=off` forces
//!   the packed form, `=on` the native one; otherwise f16 is packed two to a
//!   word. See `smelt_codegen::wgsl`.

mod model;

pub use model::{GpuModel, GpuPlan, compile, compile_with};

use smelt_codegen::schedule::ScheduleOptions;
use std::sync::{Arc, Mutex, OnceLock};

/// Errors of the GPU runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Codegen(#[from] smelt_codegen::Error),
    #[error(transparent)]
    Runtime(#[from] crate::Error),
    /// No adapter, or the device failed.
    #[error("gpu: {0}")]
    Device(String),
    /// The adapter cannot run a step: a buffer or dispatch past its limits, a
    /// feature it lacks.
    #[error("the GPU cannot run {what} at node {node}")]
    Limit { what: String, node: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An adapter and the device opened on it (with `shader-f64` and `shader-f16`
/// when the adapter has them).
#[derive(Debug)]
pub struct Device {
    pub info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Whether native f16 storage reproduces the interpreter's bits on this
    /// device (checked once, when it has `shader-f16`: [`probe_f16`]); the
    /// error says where it does not.
    f16_exact: OnceLock<Result<(), String>>,
}

/// An adapter choice, blank as none.
fn adapter_choice(choice: Option<&str>) -> Option<String> {
    choice.map(str::to_string).filter(|s| !s.trim().is_empty())
}

const NO_ADAPTER: &str = "no GPU adapter found (wgpu, Vulkan). Install a Vulkan driver; without a GPU, Mesa's lavapipe runs WGSL on the CPU: apt-get install -y mesa-vulkan-drivers libvulkan1";

impl Device {
    /// Opens the adapter that `choice` names (see the module doc).
    pub fn open(choice: Option<&str>) -> Result<Device> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
        if adapters.is_empty() {
            return Err(Error::Device(NO_ADAPTER.into()));
        }
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        let adapter = match choice.map(str::trim) {
            None | Some("high-performance") => {
                let opts = wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                };
                pollster::block_on(instance.request_adapter(&opts)).map_err(|e| Error::Device(format!("{NO_ADAPTER} ({e})")))?
            }
            Some("low-power") => {
                let opts = wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::LowPower,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                };
                pollster::block_on(instance.request_adapter(&opts)).map_err(|e| Error::Device(format!("{NO_ADAPTER} ({e})")))?
            }
            Some(c) => {
                let by_index = c.parse::<usize>().ok().filter(|&i| i < adapters.len());
                let lc = c.to_lowercase();
                let i = by_index.or_else(|| names.iter().position(|n| n.to_lowercase().contains(&lc))).ok_or_else(|| {
                    let list: Vec<String> = names.iter().enumerate().map(|(i, n)| format!("{i}: {n}")).collect();
                    Error::Device(format!("no adapter matches `{c}`; adapters: {}", list.join(", ")))
                })?;
                adapters.into_iter().nth(i).ok_or_else(|| Error::Device(NO_ADAPTER.into()))?
            }
        };
        let info = adapter.get_info();
        // f64 for requantization, f16 storage, timestamps for `--profile`.
        let features = adapter.features() & (wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY);
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("smelt"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Device(format!("cannot open {}: {e}", info.name)))?;
        Ok(Device { info, device, queue, limits, features, f16_exact: OnceLock::new() })
    }

    /// Whether the device has `shader-f16` (native f16 storage).
    pub fn shader_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// Why native f16 storage is not used on a device with `shader-f16` (its
    /// conversions did not reproduce the interpreter's bits), if so.
    pub fn native_f16_problem(&self) -> Option<&str> {
        self.f16_exact.get().and_then(|r| r.as_ref().err()).map(String::as_str)
    }

    /// How shaders are emitted for this device with a schedule's options: native
    /// f16 storage when it has `shader-f16` and passed [`probe_f16`], unless
    /// `wgsl-f16` says otherwise ([`smelt_codegen::wgsl::Options::for_device`]).
    pub fn wgsl_options(&self, schedule: &ScheduleOptions) -> smelt_codegen::wgsl::Options {
        let exact = self.f16_exact.get().is_some_and(|r| r.is_ok());
        smelt_codegen::wgsl::Options::for_device(self.shader_f16() && exact, schedule)
    }

    /// A line describing the adapter (`smelt run --backend wgsl` prints it).
    pub fn describe(&self) -> String {
        let f16 = if self.wgsl_options(&ScheduleOptions::default()).native_f16 { "f16 native" } else { "f16 packed" };
        format!("{} ({:?}, {:?}, driver {}; {f16})", self.info.name, self.info.backend, self.info.device_type, self.info.driver_info)
    }
}

/// Devices opened so far, by adapter choice.
type DeviceCache = Mutex<Vec<(Option<String>, Arc<Device>)>>;

/// The device for `choice`, opened once per process and choice.
pub fn device(choice: Option<&str>) -> Result<Arc<Device>> {
    static DEVICES: OnceLock<DeviceCache> = OnceLock::new();
    let key = adapter_choice(choice);
    let cache = DEVICES.get_or_init(|| Mutex::new(vec![]));
    let mut cache = cache.lock().map_err(|_| Error::Device("the device cache is poisoned".into()))?;
    if let Some((_, d)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(d.clone());
    }
    let d = Arc::new(Device::open(key.as_deref())?);
    if d.shader_f16() {
        let r = probe_f16(&d);
        let _ = d.f16_exact.set(r);
    }
    cache.push((key, d.clone()));
    Ok(d)
}

/// Checks native f16 storage on `d` against the interpreter, bit for bit (NaNs
/// as NaNs): every f16 pattern read as f32 (`f32(x)` of an `array<f16>`
/// element) and every f16 value stored back (`f16(x)` of an f32 that f16
/// represents exactly). Vulkan lets a device flush f16 subnormals in
/// conversions (without `shaderDenormPreserveFloat16`, which wgpu does not
/// report), so this is tested rather than assumed; rounding never happens in
/// them (the shaders round with the exact bit conversion).
pub fn probe_f16(d: &Arc<Device>) -> Result<(), String> {
    use smelt_ir::{DType, Data, Tensor};
    let g = smelt_ir::text::parse("graph f16_probe(x: f16[65536]) -> (y, z) {\n  y = cast(x) {to = f32}\n  z = cast(y) {to = f16}\n}\n")
        .map_err(|e| format!("the f16 probe does not parse: {e:?}"))?;
    let bits: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    let x = Data::from_le_bytes(DType::F16, &bits).ok_or("f16 probe data")?;
    let inputs = std::collections::BTreeMap::from([("x".to_string(), Tensor::new(vec![65536], x).map_err(|e| e.to_string())?)]);
    let want = crate::run(&g, &inputs).map_err(|e| e.to_string())?;
    let model = compile_with(&g, d.clone(), smelt_codegen::wgsl::Options { native_f16: true, tile: None }).map_err(|e| e.to_string())?;
    let got = model.run(&inputs).map_err(|e| e.to_string())?;
    for (name, w) in [("y", 4usize), ("z", 2)] {
        let (a, b) = (want[name].data().to_le_bytes(), got[name].data().to_le_bytes());
        let nan = |c: &[u8]| match w {
            4 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_nan(),
            _ => u16::from_le_bytes([c[0], c[1]]) & 0x7fff > 0x7c00,
        };
        if let Some(k) = a.chunks(w).zip(b.chunks(w)).position(|(p, q)| p != q && !(nan(p) && nan(q))) {
            let what = if name == "y" { "f16 → f32" } else { "f32 → f16" };
            return Err(format!("native f16 {what} differs from the interpreter at f16 bits {k:#06x}"));
        }
    }
    Ok(())
}
