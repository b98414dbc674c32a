//! Listen, attend and spell (Chan et al. 2016): a pyramidal bidirectional LSTM
//! listener that halves the time resolution at each level by concatenating pairs
//! of consecutive frames, and a one-step attention speller.
//!
//! The listener's time length is fixed (`frames`, a multiple of 2^`pyramid`): the
//! pairing is a reshape, and smelt's shape inference cannot halve a symbolic
//! length. Its output length `U = frames / 2^pyramid` is a symbol again in the
//! speller, which works for any utterance length.

use super::{attend, check_heads};
use crate::layers::{self, Checks, reshape};
use crate::rnn::{self, Cell};
use smelt_ir::{DType, Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};

/// Sizes of listen-attend-spell.
#[derive(Debug, Clone, PartialEq)]
pub struct LasConfig {
    /// Acoustic features per frame (40 log-mel filterbanks).
    pub features: usize,
    /// Input frames (256); a multiple of 2^`pyramid`.
    pub frames: usize,
    /// Listener hidden units per direction (256).
    pub listener_hidden: usize,
    /// Pyramidal layers above the bottom BLSTM, each halving time (3).
    pub pyramid: usize,
    /// Output characters (32).
    pub vocab: usize,
    /// Character embedding size (64).
    pub embed: usize,
    /// Speller hidden units (512).
    pub speller_hidden: usize,
    /// Speller LSTM layers (2).
    pub speller_layers: usize,
    /// Width of attention keys and queries (256).
    pub attn: usize,
    /// Attention heads (1); must divide `attn` and `2·listener_hidden`.
    pub heads: usize,
}

impl Default for LasConfig {
    fn default() -> Self {
        LasConfig {
            features: 40,
            frames: 256,
            listener_hidden: 256,
            pyramid: 3,
            vocab: 32,
            embed: 64,
            speller_hidden: 512,
            speller_layers: 2,
            attn: 256,
            heads: 1,
        }
    }
}

impl LasConfig {
    fn check(&self, model: &'static str) -> Result<(), Diagnostics> {
        let mut c = Checks::new(model);
        for (k, v) in [
            ("features", self.features),
            ("frames", self.frames),
            ("listener_hidden", self.listener_hidden),
            ("vocab", self.vocab),
            ("embed", self.embed),
            ("speller_hidden", self.speller_hidden),
            ("attn", self.attn),
        ] {
            c.size(k, v);
        }
        c.range("pyramid", self.pyramid, 0, 16);
        c.range("speller_layers", self.speller_layers, 1, 1000);
        let step = 1usize << self.pyramid.min(16);
        c.require(self.frames.is_multiple_of(step), || {
            format!("`frames` ({}) must be a multiple of 2^pyramid = {step}", self.frames)
        });
        check_heads(&mut c, self.heads, &[("attn", self.attn), ("2·listener_hidden", self.listener_hidden.saturating_mul(2))]);
        c.finish()
    }
}

/// `las_listener(features: f32[frames, N, features]) -> (keys: f32[N, U, attn],
/// values: f32[N, U, 2·listener_hidden])` with `U = frames / 2^pyramid`.
///
/// A bottom BLSTM (`blstm`), then `pyramid` BLSTMs (`pblstm1`, …) each on pairs of
/// the layer below's consecutive outputs; `values` are the top outputs (batch
/// first) and `keys` their projection `key` (the ψ of the paper).
pub fn las_listener(cfg: &LasConfig) -> Result<Graph, Diagnostics> {
    cfg.check("las_listener")?;
    let hl = cfg.listener_hidden;
    let mut b = GraphBuilder::new("las_listener");
    let x = b.input("features", TensorType::f32(shape![cfg.frames, "N", cfg.features]));
    let blstm =
        |b: &mut GraphBuilder, x: Value, input: usize| rnn::layer(b, Cell::Lstm, x, input, hl, true, None, None).y;
    let mut h = b.scope("blstm", |b| blstm(b, x, cfg.features));
    let mut t = cfg.frames;
    for level in 1..=cfg.pyramid {
        t /= 2;
        h = b.scope(&format!("pblstm{level}"), |b| {
            // [2t, N, 2hl] → [t, 2, N, 2hl] → [t, N, 2, 2hl] → [t, N, 4hl]: frames 2i and 2i+1 side by side.
            let p = reshape(b, h, &[t as i64, 2, -1, 2 * hl as i64]);
            let p = b.transpose(p, &[0, 2, 1, 3]);
            let p = reshape(b, p, &[0, 0, -1]);
            blstm(b, p, 4 * hl)
        });
    }
    let values = b.transpose(h, &[1, 0, 2]);
    let keys = b.scope("key", |b| layers::dense(b, values, 2 * hl, cfg.attn, true));
    b.output("keys", keys);
    b.output("values", values);
    b.finish()
}

/// `las_speller_step(token: i64[N], context: f32[N, 2·listener_hidden],
/// h, c: f32[speller_layers, N, speller_hidden], keys: f32[N, U, attn],
/// values: f32[N, U, 2·listener_hidden]) -> (logp: f32[N, vocab], h_next, c_next, context_next)`.
///
/// `s = LSTM([embed(token); context], state)`, `context' = attend(φ(s), keys, values)`,
/// `logp = log_softmax(out(relu(mlp([s; context']))))`. The first step takes zero
/// states and a zero context.
pub fn las_speller_step(cfg: &LasConfig) -> Result<Graph, Diagnostics> {
    cfg.check("las_speller_step")?;
    let (dv, hs) = (2 * cfg.listener_hidden, cfg.speller_hidden);
    let state = TensorType::f32(shape![cfg.speller_layers, "N", hs]);
    let mut b = GraphBuilder::new("las_speller_step");
    let token = b.input("token", TensorType::new(DType::I64, shape!["N"]));
    let context = b.input("context", TensorType::f32(shape!["N", dv]));
    let h = b.input("h", state.clone());
    let c = b.input("c", state);
    let keys = b.input("keys", TensorType::f32(shape!["N", "U", cfg.attn]));
    let values = b.input("values", TensorType::f32(shape!["N", "U", dv]));
    let e = b.scope("embed", |b| layers::embedding(b, token, cfg.vocab, cfg.embed));
    let x = b.concat(&[e, context], 1);
    let (s, h_next, c_next) =
        b.scope("speller", |b| rnn::lstm_step(b, x, (h, c), cfg.embed + dv, hs, cfg.speller_layers));
    let ctx = b.scope("attn", |b| attend(b, s, hs, keys, values, cfg.attn, dv, cfg.heads));
    let sc = b.concat(&[s, ctx], 1);
    let m = b.scope("mlp", |b| layers::dense(b, sc, hs + dv, hs, true));
    let m = b.relu(m);
    let logits = b.scope("out", |b| layers::dense(b, m, hs, cfg.vocab, true));
    let logp = b.log_softmax(logits, -1);
    b.output("logp", logp);
    b.output("h_next", h_next);
    b.output("c_next", c_next);
    b.output("context_next", ctx);
    b.finish()
}
