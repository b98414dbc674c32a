//! The model zoo: every builder by name, its config as `key=value` settings with
//! defaults, for `smelt zoo` and for tests that want "a model of each kind".
//!
//! ```
//! let built = smelt_frontends::zoo::build("dqn_head", &[("actions".into(), "6".into())]).unwrap();
//! assert_eq!(built.graph.name, "dqn_head");
//! assert!(built.settings.contains(&("actions".to_string(), "6".to_string())));
//! ```

use crate::attention::{self, LasConfig, MhaConfig, NmtConfig, TransformerConfig};
use crate::cnn::{self, DqnConfig, ResNetConfig};
use crate::moe::{self, LstmMoeConfig, MoeConfig};
use crate::rl::{self, AlphaZeroConfig, DqnHeadConfig};
use crate::rnn::{self, LmConfig, RnnConfig};
use crate::wavenet::{self, WaveNetConfig};
use smelt_ir::{Diagnostics, Graph};

/// One setting of a model: its key, its value (the default, in [`models`]) and what
/// it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub value: String,
    pub help: &'static str,
}

/// A model of the zoo, with its settings at their defaults.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: &'static str,
    pub about: &'static str,
    pub keys: Vec<Key>,
}

/// A built model, what it is, and every setting it was built with (defaults
/// included), in order.
#[derive(Debug)]
pub struct Built {
    pub graph: Graph,
    pub about: &'static str,
    pub settings: Vec<(String, String)>,
}

/// Why a zoo model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("unknown model `{name}`; the zoo has: {}", .known.join(", "))]
    UnknownModel { name: String, known: Vec<&'static str> },
    #[error("model `{model}` has no key `{key}`; its keys are: {}", .known.join(", "))]
    UnknownKey { model: &'static str, key: String, known: Vec<&'static str> },
    #[error("model `{model}`: bad value `{value}` for `{key}`: {reason}")]
    BadValue { model: &'static str, key: String, value: String, reason: String },
    /// The config is inconsistent (e.g. heads that do not divide the width).
    #[error("{0}")]
    Config(Diagnostics),
}

/// A config whose fields are listed and set by name, from text.
trait Settings {
    fn keys(&self) -> Vec<Key>;
    /// `Ok(false)` when there is no such key.
    fn set(&mut self, key: &str, value: &str) -> Result<bool, String>;
}

macro_rules! settings {
    ($ty:ty { $($field:ident: $help:literal),* $(,)? }) => {
        impl Settings for $ty {
            fn keys(&self) -> Vec<Key> {
                vec![$(Key { name: stringify!($field), value: self.$field.to_string(), help: $help }),*]
            }
            fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
                match key {
                    $(stringify!($field) => {
                        self.$field = value.trim().parse().map_err(|e| format!("{e}"))?;
                        Ok(true)
                    })*
                    _ => Ok(false),
                }
            }
        }
    };
}

settings!(ResNetConfig {
    depth: "18, 34 (basic blocks), 50, 101, 152 (bottlenecks)",
    width: "channels of the first stage; stages double it",
    image: "input height and width",
    channels: "input channels",
    classes: "output classes",
});
settings!(DqnConfig {
    frames: "stacked input frames",
    size: "frame height and width",
    hidden: "hidden units of the head",
    actions: "Q-values out",
    dueling: "value and advantage streams",
});
settings!(DqnHeadConfig {
    features: "input features",
    hidden: "hidden units (per stream when dueling)",
    actions: "Q-values out",
    dueling: "value and advantage streams, Q = V + A - mean(A)",
});
settings!(AlphaZeroConfig {
    board: "board side; board²+1 moves",
    planes: "input feature planes",
    blocks: "residual blocks",
    channels: "channels of the tower",
    value_hidden: "hidden units of the value head",
});
settings!(RnnConfig {
    input: "features per time step",
    hidden: "hidden units per direction",
    layers: "stacked layers",
    bidirectional: "both directions, concatenated",
    initial_state: "take h0 (and c0) as inputs",
});
settings!(LmConfig {
    vocab: "vocabulary size",
    embed: "embedding size",
    hidden: "LSTM hidden units",
    layers: "LSTM layers",
});
settings!(MhaConfig {
    d_model: "model width",
    heads: "attention heads (divide d_model)",
    causal: "mask the future",
    cross: "attend to a separate `memory` input",
});
settings!(TransformerConfig {
    layers: "encoder layers",
    d_model: "model width",
    heads: "attention heads (divide d_model)",
    ffn: "feed-forward hidden width",
    pre_norm: "layer norm before each block (else after)",
    causal: "mask the future",
    activation: "feed-forward activation: relu or gelu",
});
settings!(NmtConfig {
    src_vocab: "source vocabulary",
    tgt_vocab: "target vocabulary",
    embed: "embedding size",
    enc_hidden: "encoder hidden units per direction",
    enc_layers: "encoder BiLSTM layers",
    dec_hidden: "decoder hidden units",
    dec_layers: "decoder LSTM layers",
    attn: "attention key/query width",
    heads: "attention heads",
});
settings!(LasConfig {
    features: "acoustic features per frame",
    frames: "input frames (a multiple of 2^pyramid)",
    listener_hidden: "listener hidden units per direction",
    pyramid: "pyramidal layers, each halving time",
    vocab: "output characters",
    embed: "character embedding size",
    speller_hidden: "speller hidden units",
    speller_layers: "speller LSTM layers",
    attn: "attention key/query width",
    heads: "attention heads",
});
settings!(MoeConfig {
    d_model: "model width",
    d_ff: "hidden width of each expert",
    experts: "routed experts",
    k: "experts per token",
    gated: "SwiGLU experts (silu(x·w1) ⊙ x·w3)",
    normalize: "routing weights renormalized over the k chosen",
    capacity_factor: "slots per expert as a share of T·k/E (0: no limit)",
    shared: "hidden width of the shared experts every token takes (0: none)",
});
settings!(LstmMoeConfig {
    steps: "time steps (fixed)",
    batch: "batch rows (fixed)",
    input: "features per step",
    hidden: "LSTM hidden units (the experts' width)",
    experts: "experts",
    k: "experts per row",
    d_ff: "hidden width of each expert",
});
settings!(WaveNetConfig {
    layers: "layers per stack, dilations 1…2^(layers-1)",
    stacks: "repetitions of the dilation cycle",
    kernel: "kernel size of the dilated convs",
    residual: "residual channels",
    gate: "gated unit channels",
    skip: "skip channels",
    end: "hidden channels of the output convs",
    input_channels: "input channels per sample",
    quantization: "output classes per sample",
    log_softmax: "log-probabilities (else probabilities)",
});

/// A builder with its default config and the keys it does not expose.
trait Model {
    fn keys(&self) -> Vec<Key>;
    fn build(&self, name: &'static str, about: &'static str, settings: &[(String, String)]) -> Result<Built, ZooError>;
}

struct Builder<C> {
    init: fn() -> C,
    /// Keys fixed by the model's name (`depth` of `resnet50`).
    fixed: &'static [&'static str],
    build: fn(&C) -> Result<Graph, Diagnostics>,
}

impl<C: Settings> Model for Builder<C> {
    fn keys(&self) -> Vec<Key> {
        (self.init)().keys().into_iter().filter(|k| !self.fixed.contains(&k.name)).collect()
    }

    fn build(
        &self,
        model: &'static str,
        about: &'static str,
        settings: &[(String, String)],
    ) -> Result<Built, ZooError> {
        let mut cfg = (self.init)();
        for (key, value) in settings {
            let unknown = || ZooError::UnknownKey {
                model,
                key: key.clone(),
                known: self.keys().iter().map(|k| k.name).collect(),
            };
            if self.fixed.contains(&key.as_str()) {
                return Err(unknown());
            }
            let bad = |reason| ZooError::BadValue { model, key: key.clone(), value: value.clone(), reason };
            if !cfg.set(key, value).map_err(bad)? {
                return Err(unknown());
            }
        }
        let graph = (self.build)(&cfg).map_err(ZooError::Config)?;
        let settings = cfg
            .keys()
            .into_iter()
            .filter(|k| !self.fixed.contains(&k.name))
            .map(|k| (k.name.to_string(), k.value))
            .collect();
        Ok(Built { graph, about, settings })
    }
}

fn entry<C: Settings + 'static>(
    name: &'static str,
    about: &'static str,
    init: fn() -> C,
    fixed: &'static [&'static str],
    build: fn(&C) -> Result<Graph, Diagnostics>,
) -> (&'static str, &'static str, Box<dyn Model>) {
    (name, about, Box::new(Builder { init, fixed, build }))
}

fn registry() -> Vec<(&'static str, &'static str, Box<dyn Model>)> {
    vec![
        entry(
            "resnet18",
            "ResNet-18 (basic blocks): image [N, 3, 224, 224] -> logits",
            || ResNetConfig::with_depth(18),
            &["depth"],
            cnn::resnet,
        ),
        entry(
            "resnet34",
            "ResNet-34 (basic blocks): image [N, 3, 224, 224] -> logits",
            || ResNetConfig::with_depth(34),
            &["depth"],
            cnn::resnet,
        ),
        entry(
            "resnet50",
            "ResNet-50 (bottleneck blocks): image [N, 3, 224, 224] -> logits",
            || ResNetConfig::with_depth(50),
            &["depth"],
            cnn::resnet,
        ),
        entry(
            "resnet101",
            "ResNet-101 (bottleneck blocks): image [N, 3, 224, 224] -> logits",
            || ResNetConfig::with_depth(101),
            &["depth"],
            cnn::resnet,
        ),
        entry(
            "resnet152",
            "ResNet-152 (bottleneck blocks): image [N, 3, 224, 224] -> logits",
            || ResNetConfig::with_depth(152),
            &["depth"],
            cnn::resnet,
        ),
        entry("dqn", "Atari DQN: observation [N, 4, 84, 84] -> q [N, actions]", DqnConfig::default, &[], cnn::dqn),
        entry(
            "dqn_head",
            "DQN Q-value head, plain or dueling: features [N, F] -> q",
            DqnHeadConfig::default,
            &[],
            rl::dqn_head,
        ),
        entry(
            "alphazero",
            "AlphaZero policy/value tower (Go 19x19): planes -> policy, value",
            AlphaZeroConfig::default,
            &[],
            rl::alphazero,
        ),
        entry("lstm", "multi-layer LSTM: x [T, N, I] -> y, h, c", RnnConfig::default, &[], rnn::lstm),
        entry("gru", "multi-layer GRU: x [T, N, I] -> y, h", RnnConfig::default, &[], rnn::gru),
        entry(
            "lstm_lm",
            "word-level LSTM language model: tokens [T, N], h0, c0 -> logp, h, c",
            LmConfig::default,
            &[],
            rnn::language_model,
        ),
        entry(
            "mha",
            "multi-head attention with projections: x [N, T, d] -> y",
            MhaConfig::default,
            &[],
            attention::mha,
        ),
        entry(
            "transformer_encoder",
            "transformer encoder, pre- or post-norm: x [N, T, d] -> y",
            TransformerConfig::default,
            &[],
            attention::transformer_encoder,
        ),
        entry(
            "nmt_encoder",
            "NMT BiLSTM encoder: src [S, N] -> keys, values, h, c",
            NmtConfig::default,
            &[],
            attention::nmt_encoder,
        ),
        entry(
            "nmt_decoder_step",
            "NMT attention decoder, one step: token, keys, values, h, c -> logp, h_next, c_next",
            NmtConfig::default,
            &[],
            attention::nmt_decoder_step,
        ),
        entry(
            "las_listener",
            "listen-attend-spell pyramidal BiLSTM listener: features [frames, N, F] -> keys, values",
            LasConfig::default,
            &[],
            attention::las_listener,
        ),
        entry(
            "las_speller_step",
            "listen-attend-spell speller, one step: token, context, h, c, keys, values -> logp, next state",
            LasConfig::default,
            &[],
            attention::las_speller_step,
        ),
        entry(
            "switch_ffn",
            "Switch Transformer MoE FFN block, top-1 with a capacity: x [T, d] -> y",
            MoeConfig::switch,
            &[],
            moe::switch_ffn,
        ),
        entry(
            "mixtral_block",
            "Mixtral-style sparse MoE block, top-2 of 8 SwiGLU experts: x [T, d] -> y",
            MoeConfig::mixtral,
            &[],
            moe::mixtral_block,
        ),
        entry(
            "deepseek_moe",
            "DeepSeek-style MoE layer, 64 fine-grained experts top-6 plus shared experts: x [T, d] -> y",
            MoeConfig::deepseek,
            &[],
            moe::deepseek_moe,
        ),
        entry(
            "lstm_moe",
            "Shazeer's sparsely-gated MoE between two LSTM layers: x [steps, batch, input] -> y",
            LstmMoeConfig::default,
            &[],
            moe::lstm_moe,
        ),
        entry(
            "wavenet",
            "WaveNet dilated causal conv stack: x [N, 256, T] -> y [N, 256, T]",
            WaveNetConfig::default,
            &[],
            wavenet::wavenet,
        ),
        entry(
            "wavenet_step",
            "fast WaveNet, one sample: x [N, 256, 1], per-layer caches -> y, next caches",
            WaveNetConfig::default,
            &[],
            wavenet::wavenet_step,
        ),
    ]
}

/// Every model of the zoo with its keys at their defaults, in a fixed order.
pub fn models() -> Vec<ModelInfo> {
    registry().into_iter().map(|(name, about, m)| ModelInfo { name, about, keys: m.keys() }).collect()
}

/// Builds the model `name` with `settings` (`key`, `value` pairs applied in order
/// over the defaults).
pub fn build(name: &str, settings: &[(String, String)]) -> Result<Built, ZooError> {
    let reg = registry();
    let known: Vec<&'static str> = reg.iter().map(|e| e.0).collect();
    match reg.into_iter().find(|e| e.0 == name) {
        Some((name, about, m)) => m.build(name, about, settings),
        None => Err(ZooError::UnknownModel { name: name.to_string(), known }),
    }
}
