//! Attention models: multi-head attention (projections around the `attention` op),
//! the transformer encoder ([`transformer`]), an LSTM encoder–decoder with attention
//! for neural machine translation ([`nmt`]) and listen-attend-spell ([`las`]).
//!
//! Batch is the symbol `N`; sequence lengths are `T` (queries), `S` (keys, source)
//! and `U` (listener steps). The decoders are one-step graphs: they take the
//! encoder's cached keys and values and the decoder state, and return the next
//! token's log-probabilities and the new state.

pub mod las;
pub mod nmt;
pub mod transformer;

use crate::layers::{self, Checks, reshape};
use smelt_ir::ops::Attention;
use smelt_ir::{Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};
use std::fmt;
use std::str::FromStr;

pub use las::{LasConfig, las_listener, las_speller_step};
pub use nmt::{NmtConfig, nmt_decoder_step, nmt_encoder};
pub use transformer::{TransformerConfig, transformer_encoder};

/// The activation of a feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Gelu,
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
        })
    }
}

impl FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relu" => Ok(Activation::Relu),
            "gelu" => Ok(Activation::Gelu),
            _ => Err("expected relu or gelu".into()),
        }
    }
}

/// Multi-head attention with input and output projections.
#[derive(Debug, Clone, PartialEq)]
pub struct MhaConfig {
    /// Model width (512).
    pub d_model: usize,
    /// Heads (8); must divide `d_model`.
    pub heads: usize,
    /// Mask the future (false).
    pub causal: bool,
    /// Attend to a separate `memory: [N, S, d_model]` input instead of `x` itself (false).
    pub cross: bool,
}

impl Default for MhaConfig {
    fn default() -> Self {
        MhaConfig { d_model: 512, heads: 8, causal: false, cross: false }
    }
}

/// Checks that `heads` divides each of `dims`.
pub(crate) fn check_heads(c: &mut Checks, heads: usize, dims: &[(&str, usize)]) {
    c.range("heads", heads, 1, layers::MAX_SIZE);
    for &(k, d) in dims {
        c.require(heads == 0 || d.is_multiple_of(heads), || format!("`heads` ({heads}) must divide `{k}` ({d})"));
    }
}

/// `mha(x: f32[N, T, d_model] [, memory: f32[N, S, d_model]]) -> (y: f32[N, T, d_model])`.
pub fn mha(cfg: &MhaConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("mha");
    c.size("d_model", cfg.d_model);
    check_heads(&mut c, cfg.heads, &[("d_model", cfg.d_model)]);
    c.finish()?;
    let mut b = GraphBuilder::new("mha");
    let x = b.input("x", TensorType::f32(shape!["N", "T", cfg.d_model]));
    let kv = if cfg.cross { b.input("memory", TensorType::f32(shape!["N", "S", cfg.d_model])) } else { x };
    let y = multi_head(&mut b, x, kv, cfg.d_model, cfg.heads, cfg.causal);
    b.output("y", y);
    b.finish()
}

/// Multi-head attention as a layer: queries from `x: [N, T, d]`, keys and values
/// from `kv: [N, S, d]`; params `q`, `k`, `v`, `out` (each `w [d, d]`, `b [d]`).
pub fn multi_head(b: &mut GraphBuilder, x: Value, kv: Value, d: usize, heads: usize, causal: bool) -> Value {
    let q = b.scope("q", |b| layers::dense(b, x, d, d, true));
    let k = b.scope("k", |b| layers::dense(b, kv, d, d, true));
    let v = b.scope("v", |b| layers::dense(b, kv, d, d, true));
    let a = b.attention(q, k, v, None, Attention { heads, scale: None, causal });
    b.scope("out", |b| layers::dense(b, a, d, d, true))
}

/// One decoder query attending over cached keys and values: `s: [N, hs]` is
/// projected (param `query.w [hs, a]`) and attends over `keys: [N, S, a]`,
/// `values: [N, S, dv]`; returns the context `[N, dv]`.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    b: &mut GraphBuilder,
    s: Value,
    hs: usize,
    keys: Value,
    values: Value,
    a: usize,
    dv: usize,
    heads: usize,
) -> Value {
    let q = b.scope("query", |b| layers::dense(b, s, hs, a, false));
    let q = reshape(b, q, &[-1, 1, a as i64]);
    let ctx = b.attention(q, keys, values, None, Attention { heads, scale: None, causal: false });
    reshape(b, ctx, &[-1, dv as i64])
}
