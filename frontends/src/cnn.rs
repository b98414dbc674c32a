//! Convolutional networks: the ResNet family (He et al. 2016; basic blocks for
//! ResNet-18/34, bottleneck blocks for 50/101/152, torchvision's "v1.5" with the
//! stride on the 3×3 conv) and the Atari DQN conv net (Mnih et al. 2015).
//!
//! Batch is the symbol `N`; image size and width are configurable. Params are named
//! by layer: `stem.w`, `layer2.0.conv1.bn.var`, `layer2.0.down.w`, `fc.w`.

use crate::layers::{self, Checks, conv_bn, flatten, max_pool2d};
use crate::rl::{self, DqnHeadConfig};
use smelt_ir::{Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};

/// A ResNet for image classification.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    /// 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).
    pub depth: usize,
    /// Channels of the first stage (64); stages double it, bottlenecks expand ×4.
    pub width: usize,
    /// Height and width of the input image (224).
    pub image: usize,
    /// Input channels (3).
    pub channels: usize,
    /// Output classes (1000).
    pub classes: usize,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        ResNetConfig { depth: 18, width: 64, image: 224, channels: 3, classes: 1000 }
    }
}

impl ResNetConfig {
    /// The defaults with another depth.
    pub fn with_depth(depth: usize) -> ResNetConfig {
        ResNetConfig { depth, ..ResNetConfig::default() }
    }

    /// Blocks per stage and whether they are bottlenecks.
    fn layout(&self) -> Option<([usize; 4], bool)> {
        Some(match self.depth {
            18 => ([2, 2, 2, 2], false),
            34 => ([3, 4, 6, 3], false),
            50 => ([3, 4, 6, 3], true),
            101 => ([3, 4, 23, 3], true),
            152 => ([3, 8, 36, 3], true),
            _ => return None,
        })
    }
}

/// `resnet{depth}(image: f32[N, channels, image, image]) -> (logits: f32[N, classes])`:
/// 7×7/2 stem, 3×3/2 max pool, four stages, global average pool, fully connected.
pub fn resnet(cfg: &ResNetConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("resnet");
    c.require(cfg.layout().is_some(), || format!("`depth` must be 18, 34, 50, 101 or 152, found {}", cfg.depth));
    for (k, v) in [("width", cfg.width), ("image", cfg.image), ("channels", cfg.channels), ("classes", cfg.classes)] {
        c.size(k, v);
    }
    c.finish()?;
    let (counts, bottleneck) = cfg.layout().unwrap_or(([2; 4], false));
    let expansion = if bottleneck { 4 } else { 1 };

    let mut b = GraphBuilder::new(format!("resnet{}", cfg.depth));
    let x = b.input("image", TensorType::f32(shape!["N", cfg.channels, cfg.image, cfg.image]));
    let stem = b.scope("stem", |b| {
        let y = layers::conv2d(b, x, cfg.channels, cfg.width, 7, 2, 3, false);
        let y = b.scope("bn", |b| layers::batch_norm(b, y, cfg.width));
        b.relu(y)
    });
    let mut h = max_pool2d(&mut b, stem, 3, 2, 1);
    let mut cin = cfg.width;
    for (s, &n) in counts.iter().enumerate() {
        let width = cfg.width << s;
        for i in 0..n {
            let stride = if s > 0 && i == 0 { 2 } else { 1 };
            h = b.scope(&format!("layer{}", s + 1), |b| {
                b.scope(&i.to_string(), |b| {
                    if bottleneck {
                        bottleneck_block(b, h, cin, width, stride)
                    } else {
                        basic_block(b, h, cin, width, stride)
                    }
                })
            });
            cin = width * expansion;
        }
    }
    let pooled = b.global_avg_pool(h);
    let f = flatten(&mut b, pooled);
    let logits = b.scope("fc", |b| layers::dense(b, f, cin, cfg.classes, true));
    b.output("logits", logits);
    b.finish()
}

/// The projection shortcut when the shape changes, else the identity.
fn shortcut(b: &mut GraphBuilder, x: Value, cin: usize, cout: usize, stride: usize) -> Value {
    if stride == 1 && cin == cout { x } else { b.scope("down", |b| conv_bn(b, x, cin, cout, 1, stride, false)) }
}

/// 3×3 → 3×3, plus the shortcut, then relu.
fn basic_block(b: &mut GraphBuilder, x: Value, cin: usize, width: usize, stride: usize) -> Value {
    let h = b.scope("conv1", |b| conv_bn(b, x, cin, width, 3, stride, true));
    let h = b.scope("conv2", |b| conv_bn(b, h, width, width, 3, 1, false));
    let s = shortcut(b, x, cin, width, stride);
    let y = b.add(h, s);
    b.relu(y)
}

/// 1×1 → 3×3 (strided) → 1×1 ×4, plus the shortcut, then relu.
fn bottleneck_block(b: &mut GraphBuilder, x: Value, cin: usize, width: usize, stride: usize) -> Value {
    let h = b.scope("conv1", |b| conv_bn(b, x, cin, width, 1, 1, true));
    let h = b.scope("conv2", |b| conv_bn(b, h, width, width, 3, stride, true));
    let h = b.scope("conv3", |b| conv_bn(b, h, width, 4 * width, 1, 1, false));
    let s = shortcut(b, x, cin, 4 * width, stride);
    let y = b.add(h, s);
    b.relu(y)
}

/// The Atari DQN: stacked frames → three convs → a fully connected Q head.
#[derive(Debug, Clone, PartialEq)]
pub struct DqnConfig {
    /// Stacked input frames (4).
    pub frames: usize,
    /// Height and width of a frame (84).
    pub size: usize,
    /// Hidden units of the head (512).
    pub hidden: usize,
    /// Q-values out, one per action (18: the full Atari action set).
    pub actions: usize,
    /// Separate value and advantage streams (Wang et al. 2016).
    pub dueling: bool,
}

impl Default for DqnConfig {
    fn default() -> Self {
        DqnConfig { frames: 4, size: 84, hidden: 512, actions: 18, dueling: false }
    }
}

/// `dqn(observation: f32[N, frames, size, size]) -> (q: f32[N, actions])`: conv 32
/// 8×8/4 → conv 64 4×4/2 → conv 64 3×3/1 (each with relu) → the [`rl::q_head`].
pub fn dqn(cfg: &DqnConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("dqn");
    for (k, v) in [("frames", cfg.frames), ("size", cfg.size), ("hidden", cfg.hidden), ("actions", cfg.actions)] {
        c.size(k, v);
    }
    let convs = [(32, 8, 4), (64, 4, 2), (64, 3, 1)];
    let out = convs.iter().try_fold(cfg.size, |s, &(_, k, st)| layers::window(s, k, st, 0));
    c.require(out.is_some(), || format!("`size` {} is too small for the 8/4, 4/2, 3/1 convs (at least 36)", cfg.size));
    c.finish()?;
    let out = out.unwrap_or(1);

    let mut b = GraphBuilder::new("dqn");
    let mut h = b.input("observation", TensorType::f32(shape!["N", cfg.frames, cfg.size, cfg.size]));
    let mut cin = cfg.frames;
    for (i, &(cout, k, stride)) in convs.iter().enumerate() {
        h = b.scope(&format!("conv{}", i + 1), |b| {
            let y = layers::conv2d(b, h, cin, cout, k, stride, 0, true);
            b.relu(y)
        });
        cin = cout;
    }
    let f = flatten(&mut b, h);
    let head =
        DqnHeadConfig { features: cin * out * out, hidden: cfg.hidden, actions: cfg.actions, dueling: cfg.dueling };
    let q = rl::q_head(&mut b, f, &head);
    b.output("q", q);
    b.finish()
}
