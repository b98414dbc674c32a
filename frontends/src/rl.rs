//! Networks of game-playing agents: the AlphaZero policy/value residual tower
//! (Silver et al. 2017; Go 19×19 by default) and the DQN Q-value head, plain or
//! dueling (Wang et al. 2016), which [`crate::cnn::dqn`] puts on its conv torso.

use crate::layers::{self, Checks, conv_bn, flatten};
use smelt_ir::ops::ReduceKind;
use smelt_ir::{Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};

/// An AlphaZero-style residual tower with a policy and a value head.
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaZeroConfig {
    /// Board side (19 for Go); the policy has `board² + 1` moves (the last: pass).
    pub board: usize,
    /// Input feature planes (17: 8 past positions × 2 players + side to move).
    pub planes: usize,
    /// Residual blocks (19).
    pub blocks: usize,
    /// Channels of the tower (256).
    pub channels: usize,
    /// Hidden units of the value head (256).
    pub value_hidden: usize,
}

impl Default for AlphaZeroConfig {
    fn default() -> Self {
        AlphaZeroConfig { board: 19, planes: 17, blocks: 19, channels: 256, value_hidden: 256 }
    }
}

/// `alphazero(planes: f32[N, planes, board, board]) -> (policy: f32[N, board²+1], value: f32[N, 1])`.
///
/// Tower: 3×3 conv → bn → relu, then `blocks` residual blocks (conv → bn → relu →
/// conv → bn, + input, relu). Policy head: 1×1 conv (2 filters) → bn → relu → fully
/// connected → log_softmax. Value head: 1×1 conv (1 filter) → bn → relu → fully
/// connected `value_hidden` → relu → fully connected 1 → tanh.
pub fn alphazero(cfg: &AlphaZeroConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("alphazero");
    for (k, v) in [("planes", cfg.planes), ("channels", cfg.channels), ("value_hidden", cfg.value_hidden)] {
        c.size(k, v);
    }
    c.range("blocks", cfg.blocks, 0, 1000);
    c.range("board", cfg.board, 1, 1000);
    c.finish()?;
    let (ch, area) = (cfg.channels, cfg.board * cfg.board);

    let mut b = GraphBuilder::new("alphazero");
    let x = b.input("planes", TensorType::f32(shape!["N", cfg.planes, cfg.board, cfg.board]));
    let mut h = b.scope("stem", |b| conv_bn(b, x, cfg.planes, ch, 3, 1, true));
    for i in 0..cfg.blocks {
        h = b.scope(&format!("block{i}"), |b| {
            let y = b.scope("conv1", |b| conv_bn(b, h, ch, ch, 3, 1, true));
            let y = b.scope("conv2", |b| conv_bn(b, y, ch, ch, 3, 1, false));
            let y = b.add(y, h);
            b.relu(y)
        });
    }
    let policy = b.scope("policy", |b| {
        let p = b.scope("conv", |b| conv_bn(b, h, ch, 2, 1, 1, true));
        let p = flatten(b, p);
        let p = b.scope("fc", |b| layers::dense(b, p, 2 * area, area + 1, true));
        b.log_softmax(p, -1)
    });
    let value = b.scope("value", |b| {
        let v = b.scope("conv", |b| conv_bn(b, h, ch, 1, 1, 1, true));
        let v = flatten(b, v);
        let v = b.scope("fc1", |b| layers::dense(b, v, area, cfg.value_hidden, true));
        let v = b.relu(v);
        let v = b.scope("fc2", |b| layers::dense(b, v, cfg.value_hidden, 1, true));
        b.tanh(v)
    });
    b.output("policy", policy);
    b.output("value", value);
    b.finish()
}

/// The Q-value head of a DQN: features → Q-values, one per action.
#[derive(Debug, Clone, PartialEq)]
pub struct DqnHeadConfig {
    /// Input features (3136 = 64·7·7, the Atari conv torso's output).
    pub features: usize,
    /// Hidden units (512), per stream when dueling.
    pub hidden: usize,
    /// Actions (18).
    pub actions: usize,
    /// Separate value and advantage streams, `Q = V + A − mean(A)`.
    pub dueling: bool,
}

impl Default for DqnHeadConfig {
    fn default() -> Self {
        DqnHeadConfig { features: 3136, hidden: 512, actions: 18, dueling: false }
    }
}

impl DqnHeadConfig {
    fn check(&self, c: &mut Checks) {
        for (k, v) in [("features", self.features), ("hidden", self.hidden), ("actions", self.actions)] {
            c.size(k, v);
        }
    }
}

/// The head as a layer on `x: [N, features]`. Plain: `fc` (relu) → `out`. Dueling:
/// streams `value` (→ 1) and `advantage` (→ actions), each fc (relu) → fc.
pub fn q_head(b: &mut GraphBuilder, x: Value, cfg: &DqnHeadConfig) -> Value {
    let mlp = |b: &mut GraphBuilder, out: usize| {
        let h = b.scope("fc", |b| layers::dense(b, x, cfg.features, cfg.hidden, true));
        let h = b.relu(h);
        b.scope("out", |b| layers::dense(b, h, cfg.hidden, out, true))
    };
    if !cfg.dueling {
        return mlp(b, cfg.actions);
    }
    let v = b.scope("value", |b| mlp(b, 1));
    let a = b.scope("advantage", |b| mlp(b, cfg.actions));
    let mean = b.reduce(a, ReduceKind::Mean, &[-1], true);
    let centered = b.sub(a, mean);
    b.add(v, centered)
}

/// `dqn_head(features: f32[N, features]) -> (q: f32[N, actions])`.
pub fn dqn_head(cfg: &DqnHeadConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("dqn_head");
    cfg.check(&mut c);
    c.finish()?;
    let mut b = GraphBuilder::new("dqn_head");
    let x = b.input("features", TensorType::f32(shape!["N", cfg.features]));
    let q = q_head(&mut b, x, cfg);
    b.output("q", q);
    b.finish()
}
