//! The GPU runtime: models compiled to WGSL (`smelt_codegen::wgsl`) and run through
//! wgpu on Vulkan.
//!
//! - [`Device`]: the adapter and its device. The adapter is the high-performance
//!   one unless `SMELT_ADAPTER` (or `smelt run --adapter`) names another: an index
//!   in the list of adapters, a case-insensitive part of an adapter's name, or
//!   `low-power`. With no Vulkan adapter at all the error says how to get one.
//! - [`GpuModel`] ([`model`]): lowered with the GPU target, one shader per step;
//!   weights are uploaded once and pipelines and bind groups created once per set
//!   of input shapes; a whole inference is one command buffer (one compute pass,
//!   every step a dispatch, no readback between kernels); the outputs and the
//!   status buffers of run-time checks are read back at the end.

mod model;

pub use model::{GpuModel, GpuPlan, compile};

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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An adapter and the device opened on it (with `shader-f64` when the adapter
/// has it).
#[derive(Debug)]
pub struct Device {
    pub info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
}

/// How to pick an adapter: `None` reads `SMELT_ADAPTER`.
pub fn adapter_choice(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string).or_else(|| std::env::var("SMELT_ADAPTER").ok()).filter(|s| !s.trim().is_empty())
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
        // f64 for requantization; timestamps for `--profile`.
        let features = adapter.features() & (wgpu::Features::SHADER_F64 | wgpu::Features::TIMESTAMP_QUERY);
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
        Ok(Device { info, device, queue, limits, features })
    }

    /// A line describing the adapter (`smelt run --backend wgsl` prints it).
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?}, driver {})", self.info.name, self.info.backend, self.info.device_type, self.info.driver_info)
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
    cache.push((key, d.clone()));
    Ok(d)
}
