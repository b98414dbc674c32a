//! WaveNet (van den Oord et al. 2016): a stack of dilated causal convolutions with
//! gated tanh·sigmoid units, residual and skip 1×1 convs, and a
//! relu → 1×1 → relu → 1×1 → 256-way (log-)softmax output; and its incremental
//! generation graph (fast WaveNet, Paine et al. 2016), which computes one new
//! sample from per-layer queues of cached past inputs.
//!
//! Both graphs are built by one function, [`network`], and share their params'
//! names: the full graph pads each dilated conv causally (`pad = [d·(k−1), 0]`);
//! the step graph instead prepends each layer's cache — the layer's last `(k−1)·d`
//! inputs, oldest first — to the new input, convolves that window without padding,
//! and returns the window minus its oldest entry as the layer's next cache. Stepped
//! from zero caches over a sequence, it gives the full graph's outputs one time
//! step at a time (`frontends/tests/wavenet.rs` checks it).

use crate::layers::{self, Checks};
use smelt_ir::ops::{Op, Slice};
use smelt_ir::{Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};

/// Sizes of a WaveNet.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveNetConfig {
    /// Layers per stack; their dilations are 1, 2, 4, … 2^(layers−1) (10: up to 512).
    pub layers: usize,
    /// Repetitions of the dilation cycle (3).
    pub stacks: usize,
    /// Kernel size of the dilated convs (2).
    pub kernel: usize,
    /// Channels of the residual stream (64).
    pub residual: usize,
    /// Channels of the gated units (64).
    pub gate: usize,
    /// Channels of the skip connections (256).
    pub skip: usize,
    /// Channels of the hidden 1×1 output conv (256).
    pub end: usize,
    /// Input channels per sample (256: a one-hot μ-law sample).
    pub input_channels: usize,
    /// Output classes per sample (256: 8-bit μ-law).
    pub quantization: usize,
    /// Log-probabilities (true) or probabilities (false).
    pub log_softmax: bool,
}

impl Default for WaveNetConfig {
    fn default() -> Self {
        WaveNetConfig {
            layers: 10,
            stacks: 3,
            kernel: 2,
            residual: 64,
            gate: 64,
            skip: 256,
            end: 256,
            input_channels: 256,
            quantization: 256,
            log_softmax: true,
        }
    }
}

impl WaveNetConfig {
    fn check(&self, model: &'static str) -> Result<(), Diagnostics> {
        let mut c = Checks::new(model);
        c.range("layers", self.layers, 1, 20);
        c.range("stacks", self.stacks, 1, 100);
        c.range("kernel", self.kernel, 2, 64);
        for (k, v) in [
            ("residual", self.residual),
            ("gate", self.gate),
            ("skip", self.skip),
            ("end", self.end),
            ("input_channels", self.input_channels),
            ("quantization", self.quantization),
        ] {
            c.size(k, v);
        }
        c.finish()
    }

    /// The dilation of every layer, in order (of a config that passed its checks:
    /// `layers` ≤ 20).
    pub fn dilations(&self) -> Vec<usize> {
        (0..self.stacks)
            .flat_map(|_| (0..self.layers).map(|i| 1usize.checked_shl(i as u32).unwrap_or(usize::MAX)))
            .collect()
    }

    /// The receptive field in samples: `(k−1)·Σ dilations` of the layers, plus the
    /// causal input conv's `k`.
    pub fn receptive_field(&self) -> usize {
        let sum = self.dilations().iter().fold(0usize, |a, &d| a.saturating_add(d));
        self.kernel.saturating_sub(1).saturating_mul(sum).saturating_add(self.kernel)
    }
}

/// How a dilated conv sees its input: `prepare(b, x, channels, dilation, name)`
/// returns the tensor to convolve and the conv's `[begin, end]` pads.
pub type Prepare<'a> = dyn FnMut(&mut GraphBuilder, Value, usize, usize, &str) -> (Value, [usize; 2]) + 'a;

/// The network on `x: [N, input_channels, L]`: causal conv `causal` → layers
/// `layer0…` (convs `filter`, `gate`, `skip`, and `res` except on the last) → skip
/// sum → relu → `end1` → relu → `end2` → (log-)softmax over the classes (dim 1).
pub fn network(b: &mut GraphBuilder, x: Value, cfg: &WaveNetConfig, prepare: &mut Prepare) -> Value {
    let (k, r, g, s) = (cfg.kernel, cfg.residual, cfg.gate, cfg.skip);
    let (w, pad) = prepare(b, x, cfg.input_channels, 1, "causal");
    let mut h = b.scope("causal", |b| layers::conv1d(b, w, cfg.input_channels, r, k, 1, pad));
    let dilations = cfg.dilations();
    let mut skips: Option<Value> = None;
    for (l, &d) in dilations.iter().enumerate() {
        let name = format!("layer{l}");
        let (w, pad) = prepare(b, h, r, d, &name);
        let last = l + 1 == dilations.len();
        let (skip, next) = b.scope(&name, |b| {
            let f = b.scope("filter", |b| layers::conv1d(b, w, r, g, k, d, pad));
            let gt = b.scope("gate", |b| layers::conv1d(b, w, r, g, k, d, pad));
            let f = b.tanh(f);
            let gt = b.sigmoid(gt);
            let z = b.mul(f, gt);
            let skip = b.scope("skip", |b| layers::conv1d(b, z, g, s, 1, 1, [0, 0]));
            let next = (!last).then(|| {
                let res = b.scope("res", |b| layers::conv1d(b, z, g, r, 1, 1, [0, 0]));
                b.add(h, res)
            });
            (skip, next)
        });
        skips = Some(match skips {
            None => skip,
            Some(acc) => b.add(acc, skip),
        });
        h = next.unwrap_or(h);
    }
    let y = b.relu(skips.unwrap_or(h));
    let y = b.scope("end1", |b| layers::conv1d(b, y, s, cfg.end, 1, 1, [0, 0]));
    let y = b.relu(y);
    let y = b.scope("end2", |b| layers::conv1d(b, y, cfg.end, cfg.quantization, 1, 1, [0, 0]));
    if cfg.log_softmax { b.log_softmax(y, 1) } else { b.softmax(y, 1) }
}

/// `wavenet(x: f32[N, input_channels, T]) -> (y: f32[N, quantization, T])`; output
/// `t` depends on inputs `t − receptive_field + 1 … t` only.
pub fn wavenet(cfg: &WaveNetConfig) -> Result<Graph, Diagnostics> {
    cfg.check("wavenet")?;
    let mut b = GraphBuilder::new("wavenet");
    let x = b.input("x", TensorType::f32(shape!["N", cfg.input_channels, "T"]));
    let k = cfg.kernel;
    let y = network(&mut b, x, cfg, &mut |_, x, _, d, _| (x, [d * (k - 1), 0]));
    b.output("y", y);
    b.finish()
}

/// `wavenet_step(x: f32[N, input_channels, 1], cache.causal: f32[N, input_channels, k−1],
/// cache.layerL: f32[N, residual, (k−1)·d_L] …) -> (y: f32[N, quantization, 1],
/// cache_next.causal, cache_next.layerL …)`: one sample of incremental generation.
/// Start from zero caches and feed each step's `cache_next.*` back as `cache.*`.
pub fn wavenet_step(cfg: &WaveNetConfig) -> Result<Graph, Diagnostics> {
    cfg.check("wavenet_step")?;
    let mut b = GraphBuilder::new("wavenet_step");
    let x = b.input("x", TensorType::f32(shape!["N", cfg.input_channels, 1]));
    let k = cfg.kernel;
    let mut next: Vec<(String, Value)> = Vec::new();
    let y = network(&mut b, x, cfg, &mut |b, x, ch, d, name| {
        let len = (k - 1) * d;
        let cache = b.input(&format!("cache.{name}"), TensorType::f32(shape!["N", ch, len]));
        let window = b.op_named(&format!("{name}.window"), Op::Concat { axis: 2 }, &[cache, x]);
        let s = Slice { starts: vec![1], ends: vec![len as i64 + 1], axes: Some(vec![2]), steps: None };
        next.push((format!("cache_next.{name}"), b.slice(window, s)));
        (window, [0, 0])
    });
    b.output("y", y);
    for (name, v) in next {
        b.output(&name, v);
    }
    b.finish()
}
