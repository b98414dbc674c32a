//! Mixture-of-experts layers for the zoo, each `x [T, d] → y`: a pre-norm residual
//! block whose FFN is one `moe` layer (router logits from a linear layer of the
//! normed input), optionally with always-on shared experts beside it.
//!
//! - [`switch_ffn`]: Switch Transformer (Fedus et al. 2021): top-1 of E relu
//!   experts, the routing weight the softmax over all experts (not renormalized),
//!   a capacity factor (tokens past an expert's capacity pass through the
//!   residual alone);
//! - [`mixtral_block`]: Mixtral: top-2 of 8 SwiGLU experts (`silu(x·w1) ⊙ x·w3`),
//!   weights renormalized over the two;
//! - [`deepseek_moe`]: DeepSeekMoE: many fine-grained experts (64, top-6, not
//!   renormalized) plus shared SwiGLU experts every token goes through.
//! - [`lstm_moe`]: Shazeer et al. (2017): a sparsely-gated MoE layer (relu experts,
//!   the softmax over the top k) between two stacked LSTM layers, applied to every
//!   time step and batch row. The gating is the inference form: the trained
//!   noise of noisy top-k gating is not added.
//!
//! Layer norm stands in for the RMS norm of Mixtral and DeepSeek. The strategy is
//! left to the backend (`auto`).

use crate::layers::{self, Checks};
use crate::rnn::{self, Cell};
use smelt_ir::ops::{Moe, MoeStrategy};
use smelt_ir::{Diagnostics, Graph, GraphBuilder, Op, TensorType, UnaryOp, Value, shape};

/// One MoE block's config.
#[derive(Debug, Clone, PartialEq)]
pub struct MoeConfig {
    pub d_model: usize,
    pub d_ff: usize,
    pub experts: usize,
    pub k: usize,
    /// Gated (SwiGLU) experts.
    pub gated: bool,
    /// Routing weights renormalized over the k chosen.
    pub normalize: bool,
    /// 0: no capacity limit.
    pub capacity_factor: f32,
    /// Hidden width of the shared experts (0: none).
    pub shared: usize,
}

impl MoeConfig {
    pub fn switch() -> MoeConfig {
        MoeConfig { d_model: 512, d_ff: 2048, experts: 8, k: 1, gated: false, normalize: false, capacity_factor: 1.25, shared: 0 }
    }

    pub fn mixtral() -> MoeConfig {
        MoeConfig { d_model: 1024, d_ff: 2816, experts: 8, k: 2, gated: true, normalize: true, capacity_factor: 0.0, shared: 0 }
    }

    pub fn deepseek() -> MoeConfig {
        MoeConfig { d_model: 1024, d_ff: 704, experts: 64, k: 6, gated: true, normalize: false, capacity_factor: 0.0, shared: 1408 }
    }
}

pub fn switch_ffn(cfg: &MoeConfig) -> Result<Graph, Diagnostics> {
    block("switch_ffn", cfg, UnaryOp::Relu)
}

pub fn mixtral_block(cfg: &MoeConfig) -> Result<Graph, Diagnostics> {
    block("mixtral_block", cfg, UnaryOp::Silu)
}

pub fn deepseek_moe(cfg: &MoeConfig) -> Result<Graph, Diagnostics> {
    block("deepseek_moe", cfg, UnaryOp::Silu)
}

fn block(name: &'static str, cfg: &MoeConfig, activation: UnaryOp) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new(name);
    c.size("d_model", cfg.d_model);
    c.size("d_ff", cfg.d_ff);
    c.range("experts", cfg.experts, 1, 4096);
    c.range("k", cfg.k, 1, cfg.experts.max(1));
    c.range("shared", cfg.shared, 0, layers::MAX_SIZE);
    c.require(cfg.capacity_factor >= 0.0 && cfg.capacity_factor.is_finite(), || {
        format!("`capacity_factor` must be ≥ 0, found {}", cfg.capacity_factor)
    });
    c.finish()?;
    let (d, e, h) = (cfg.d_model, cfg.experts, cfg.d_ff);
    let mut b = GraphBuilder::new(name);
    let x = b.input("x", TensorType::f32(shape!["T", d]));
    let n = b.scope("norm", |b| layers::layer_norm(b, x, d));
    let logits = b.scope("router", |b| layers::dense(b, n, d, e, false));
    let y = b.scope("experts", |b| {
        let mut ins = vec![n, logits, b.param("w1", TensorType::f32([e, d, h])), b.param("w2", TensorType::f32([e, h, d]))];
        if cfg.gated {
            ins.push(b.param("w3", TensorType::f32([e, d, h])));
        }
        let m = Moe { k: cfg.k, activation, normalize: cfg.normalize, capacity_factor: cfg.capacity_factor, strategy: MoeStrategy::Auto };
        b.op(Op::Moe(m), &ins)
    });
    let y = if cfg.shared > 0 { b.scope("shared", |b| swiglu(b, n, d, cfg.shared, y)) } else { y };
    let out = b.add(x, y);
    b.output("y", out);
    b.finish()
}

/// Shazeer's LSTM–MoE–LSTM stack; the sizes are fixed (an MoE layer takes
/// `[T·N, H]`, and reshapes keep symbolic dims only when they map to themselves).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmMoeConfig {
    pub steps: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub experts: usize,
    pub k: usize,
    pub d_ff: usize,
}

impl Default for LstmMoeConfig {
    fn default() -> LstmMoeConfig {
        LstmMoeConfig { steps: 32, batch: 4, input: 512, hidden: 512, experts: 32, k: 4, d_ff: 1024 }
    }
}

/// `x [steps, batch, input] → y [steps, batch, hidden]`: LSTM, MoE on every
/// step's hidden state, LSTM.
pub fn lstm_moe(cfg: &LstmMoeConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("lstm_moe");
    for (key, v) in [("steps", cfg.steps), ("batch", cfg.batch), ("input", cfg.input), ("hidden", cfg.hidden), ("d_ff", cfg.d_ff)] {
        c.size(key, v);
    }
    c.range("experts", cfg.experts, 1, 4096);
    c.range("k", cfg.k, 1, cfg.experts.max(1));
    c.finish()?;
    let (t, n, h, e) = (cfg.steps, cfg.batch, cfg.hidden, cfg.experts);
    let mut b = GraphBuilder::new("lstm_moe");
    let x = b.input("x", TensorType::f32(shape![t, n, cfg.input]));
    let l1 = b.scope("lstm1", |b| rnn::layer(b, Cell::Lstm, x, cfg.input, h, false, None, None)).y;
    let rows = layers::reshape(&mut b, l1, &[(t * n) as i64, h as i64]);
    let logits = b.scope("gate", |b| layers::dense(b, rows, h, e, false));
    let m = b.scope("experts", |b| {
        let ins = [rows, logits, b.param("w1", TensorType::f32([e, h, cfg.d_ff])), b.param("w2", TensorType::f32([e, cfg.d_ff, h]))];
        let m = Moe { k: cfg.k, activation: UnaryOp::Relu, normalize: true, capacity_factor: 0.0, strategy: MoeStrategy::Auto };
        b.op(Op::Moe(m), &ins)
    });
    let m = layers::reshape(&mut b, m, &[t as i64, n as i64, h as i64]);
    let y = b.scope("lstm2", |b| rnn::layer(b, Cell::Lstm, m, h, h, false, None, None)).y;
    b.output("y", y);
    b.finish()
}

/// `y + (silu(n·w1) ⊙ n·w3)·w2`, a dense SwiGLU FFN of width `f` added to `y`.
fn swiglu(b: &mut GraphBuilder, n: Value, d: usize, f: usize, y: Value) -> Value {
    let g = b.scope("w1", |b| layers::dense(b, n, d, f, false));
    let g = b.unary(UnaryOp::Silu, g);
    let u = b.scope("w3", |b| layers::dense(b, n, d, f, false));
    let h = b.mul(g, u);
    let s = b.scope("w2", |b| layers::dense(b, h, f, d, false));
    b.add(y, s)
}
