//! The transformer encoder (Vaswani et al. 2017): N layers of self-attention and a
//! feed-forward block, each with a residual connection, with layer norm before
//! (pre-norm, plus a final norm) or after (post-norm, the original) each block.
//!
//! The graph takes embedded inputs `x: [N, T, d_model]`; token embedding and
//! positions are the caller's (a `gather` and an `add` in front).

use super::{Activation, check_heads, multi_head};
use crate::layers::{self, Checks};
use smelt_ir::{Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};

/// A stack of transformer encoder layers.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerConfig {
    /// Layers (6).
    pub layers: usize,
    /// Model width (512).
    pub d_model: usize,
    /// Attention heads (8); must divide `d_model`.
    pub heads: usize,
    /// Hidden width of the feed-forward block (2048).
    pub ffn: usize,
    /// Layer norm before each block (true) or after the residual add (false).
    pub pre_norm: bool,
    /// Mask the future in self-attention (false).
    pub causal: bool,
    /// Feed-forward activation (gelu).
    pub activation: Activation,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            layers: 6,
            d_model: 512,
            heads: 8,
            ffn: 2048,
            pre_norm: true,
            causal: false,
            activation: Activation::Gelu,
        }
    }
}

/// `transformer_encoder(x: f32[N, T, d_model]) -> (y: f32[N, T, d_model])`.
/// Params per layer: `layerK.attn.{q,k,v,out}`, `layerK.ln1`, `layerK.ln2`,
/// `layerK.ffn.fc1`, `layerK.ffn.fc2`; pre-norm adds the final `ln`.
pub fn transformer_encoder(cfg: &TransformerConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("transformer_encoder");
    c.range("layers", cfg.layers, 1, 1000);
    c.size("d_model", cfg.d_model);
    c.size("ffn", cfg.ffn);
    check_heads(&mut c, cfg.heads, &[("d_model", cfg.d_model)]);
    c.finish()?;
    let d = cfg.d_model;
    let mut b = GraphBuilder::new("transformer_encoder");
    let mut x = b.input("x", TensorType::f32(shape!["N", "T", d]));
    for l in 0..cfg.layers {
        x = b.scope(&format!("layer{l}"), |b| encoder_layer(b, x, cfg));
    }
    if cfg.pre_norm {
        x = b.scope("ln", |b| layers::layer_norm(b, x, d));
    }
    b.output("y", x);
    b.finish()
}

/// One layer: `x + attn(norm(x))`, `x + ffn(norm(x))` (pre-norm) or
/// `norm(x + attn(x))`, `norm(x + ffn(x))` (post-norm).
fn encoder_layer(b: &mut GraphBuilder, x: Value, cfg: &TransformerConfig) -> Value {
    let d = cfg.d_model;
    let block = |b: &mut GraphBuilder, x: Value, ln: &str, f: &dyn Fn(&mut GraphBuilder, Value) -> Value| {
        if cfg.pre_norm {
            let h = b.scope(ln, |b| layers::layer_norm(b, x, d));
            let h = f(b, h);
            b.add(x, h)
        } else {
            let h = f(b, x);
            let y = b.add(x, h);
            b.scope(ln, |b| layers::layer_norm(b, y, d))
        }
    };
    let attn = |b: &mut GraphBuilder, h: Value| b.scope("attn", |b| multi_head(b, h, h, d, cfg.heads, cfg.causal));
    let ffn = |b: &mut GraphBuilder, h: Value| {
        b.scope("ffn", |b| {
            let h = b.scope("fc1", |b| layers::dense(b, h, d, cfg.ffn, true));
            let h = match cfg.activation {
                Activation::Relu => b.relu(h),
                Activation::Gelu => b.gelu(h),
            };
            b.scope("fc2", |b| layers::dense(b, h, cfg.ffn, d, true))
        })
    };
    let x = block(b, x, "ln1", &attn);
    block(b, x, "ln2", &ffn)
}
