//! An encoder–decoder with attention for neural machine translation, in the style
//! of Luong et al. 2015 (global attention, no input feeding): a bidirectional LSTM
//! encoder, and a one-step LSTM decoder that attends over the encoder's cached
//! keys and values.
//!
//! Two graphs share one [`NmtConfig`]: [`nmt_encoder`] runs
//! once per sentence and returns the keys, values and the decoder's initial state;
//! [`nmt_decoder_step`] runs once per target token, taking the previous token and
//! state and returning log-probabilities and the next state. Their params are
//! disjoint (`src_embed`, `encoder`, `attn.key`, `bridge` in the encoder;
//! `tgt_embed`, `decoder`, `attn.query`, `combine`, `out` in the step), so each
//! graph's weights file holds its own.

use super::{attend, check_heads};
use crate::layers::{self, Checks, reshape};
use crate::rnn::{self, Cell};
use smelt_ir::{DType, Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};

/// Sizes of the NMT model.
#[derive(Debug, Clone, PartialEq)]
pub struct NmtConfig {
    /// Source vocabulary (32000).
    pub src_vocab: usize,
    /// Target vocabulary (32000).
    pub tgt_vocab: usize,
    /// Embedding size, source and target (256).
    pub embed: usize,
    /// Encoder hidden units per direction (256); the encoder states are twice that.
    pub enc_hidden: usize,
    /// Encoder layers (2).
    pub enc_layers: usize,
    /// Decoder hidden units (512).
    pub dec_hidden: usize,
    /// Decoder layers (2).
    pub dec_layers: usize,
    /// Width of attention keys and queries (512).
    pub attn: usize,
    /// Attention heads (1); must divide `attn` and `2·enc_hidden`.
    pub heads: usize,
}

impl Default for NmtConfig {
    fn default() -> Self {
        NmtConfig {
            src_vocab: 32000,
            tgt_vocab: 32000,
            embed: 256,
            enc_hidden: 256,
            enc_layers: 2,
            dec_hidden: 512,
            dec_layers: 2,
            attn: 512,
            heads: 1,
        }
    }
}

impl NmtConfig {
    fn check(&self, model: &'static str) -> Result<(), Diagnostics> {
        let mut c = Checks::new(model);
        for (k, v) in [
            ("src_vocab", self.src_vocab),
            ("tgt_vocab", self.tgt_vocab),
            ("embed", self.embed),
            ("enc_hidden", self.enc_hidden),
            ("dec_hidden", self.dec_hidden),
            ("attn", self.attn),
        ] {
            c.size(k, v);
        }
        c.range("enc_layers", self.enc_layers, 1, 1000);
        c.range("dec_layers", self.dec_layers, 1, 1000);
        check_heads(&mut c, self.heads, &[("attn", self.attn), ("2·enc_hidden", self.enc_hidden.saturating_mul(2))]);
        c.finish()
    }

    /// `[dec_layers, N, dec_hidden]`.
    fn state(&self) -> TensorType {
        TensorType::f32(shape![self.dec_layers, "N", self.dec_hidden])
    }
}

/// `nmt_encoder(src: i64[S, N]) -> (keys: f32[N, S, attn], values: f32[N, S, 2·enc_hidden],
/// h, c: f32[dec_layers, N, dec_hidden])`.
///
/// Embedding → bidirectional LSTM stack → `values` (the encoder states, batch
/// first) and `keys` (their projection `attn.key`). The decoder's initial state is
/// a `bridge`: tanh of a projection of the top layer's final forward and backward
/// states.
pub fn nmt_encoder(cfg: &NmtConfig) -> Result<Graph, Diagnostics> {
    cfg.check("nmt_encoder")?;
    let (he, hd, ld) = (cfg.enc_hidden, cfg.dec_hidden, cfg.dec_layers);
    let mut b = GraphBuilder::new("nmt_encoder");
    let src = b.input("src", TensorType::new(DType::I64, shape!["S", "N"]));
    let e = b.scope("src_embed", |b| layers::embedding(b, src, cfg.src_vocab, cfg.embed));
    let out = b.scope("encoder", |b| rnn::stack(b, Cell::Lstm, e, cfg.embed, he, cfg.enc_layers, true, None));
    let values = b.transpose(out.y, &[1, 0, 2]);
    let keys = b.scope("attn", |b| b.scope("key", |b| layers::dense(b, values, 2 * he, cfg.attn, false)));
    let bridge = |b: &mut GraphBuilder, name: &str, s: Value| {
        // The top layer's two directions [2, N, he] → [N, 2·he] → [dec_layers, N, hd].
        let s = b.transpose(s, &[1, 0, 2]);
        let s = reshape(b, s, &[0, -1]);
        let s = b.scope("bridge", |b| b.scope(name, |b| layers::dense(b, s, 2 * he, ld * hd, true)));
        let s = b.tanh(s);
        let s = reshape(b, s, &[0, ld as i64, hd as i64]);
        b.transpose(s, &[1, 0, 2])
    };
    let (top_h, top_c) = (out.h[out.h.len() - 1], out.c[out.c.len() - 1]);
    let h = bridge(&mut b, "h", top_h);
    let c = bridge(&mut b, "c", top_c);
    b.output("keys", keys);
    b.output("values", values);
    b.output("h", h);
    b.output("c", c);
    b.finish()
}

/// `nmt_decoder_step(token: i64[N], keys: f32[N, S, attn], values: f32[N, S, 2·enc_hidden],
/// h, c: f32[dec_layers, N, dec_hidden]) -> (logp: f32[N, tgt_vocab], h_next, c_next)`.
///
/// Embed the previous token → one step of the decoder LSTM stack → attend with the
/// top output over the cached keys/values → `tanh(combine([s; context]))` → `out`
/// → log_softmax.
pub fn nmt_decoder_step(cfg: &NmtConfig) -> Result<Graph, Diagnostics> {
    cfg.check("nmt_decoder_step")?;
    let (he, hd) = (cfg.enc_hidden, cfg.dec_hidden);
    let mut b = GraphBuilder::new("nmt_decoder_step");
    let token = b.input("token", TensorType::new(DType::I64, shape!["N"]));
    let keys = b.input("keys", TensorType::f32(shape!["N", "S", cfg.attn]));
    let values = b.input("values", TensorType::f32(shape!["N", "S", 2 * he]));
    let h = b.input("h", cfg.state());
    let c = b.input("c", cfg.state());
    let e = b.scope("tgt_embed", |b| layers::embedding(b, token, cfg.tgt_vocab, cfg.embed));
    let (s, h_next, c_next) = b.scope("decoder", |b| rnn::lstm_step(b, e, (h, c), cfg.embed, hd, cfg.dec_layers));
    let ctx = b.scope("attn", |b| attend(b, s, hd, keys, values, cfg.attn, 2 * he, cfg.heads));
    let sc = b.concat(&[s, ctx], 1);
    let a = b.scope("combine", |b| layers::dense(b, sc, hd + 2 * he, hd, false));
    let a = b.tanh(a);
    let logits = b.scope("out", |b| layers::dense(b, a, hd, cfg.tgt_vocab, true));
    let logp = b.log_softmax(logits, -1);
    b.output("logp", logp);
    b.output("h_next", h_next);
    b.output("c_next", c_next);
    b.finish()
}
