//! Recurrent networks on the `lstm` and `gru` ops (ONNX layout: sequences
//! `[T, N, I]`, states `[layers·directions, N, H]`): multi-layer, optionally
//! bidirectional LSTM and GRU; a word-level LSTM language model; and the one-step
//! stacked LSTM that the attention decoders use.
//!
//! Time `T` and batch `N` are symbols. A layer's params are `layerK.w [D, G·H, I]`,
//! `layerK.r [D, G·H, H]` and `layerK.b [D, 2·G·H]` (G = 4 gates for LSTM, 3 for GRU,
//! in ONNX order).

use crate::layers::{self, Checks, reshape};
use smelt_ir::ops::{Direction, Op, Rnn};
use smelt_ir::{DType, Diagnostics, Graph, GraphBuilder, TensorType, Value, shape};

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// A stack of recurrent layers.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnConfig {
    /// Features per time step (128).
    pub input: usize,
    /// Hidden units per direction (256).
    pub hidden: usize,
    /// Stacked layers (2).
    pub layers: usize,
    /// Run each layer both ways and concatenate (false).
    pub bidirectional: bool,
    /// Take the initial states as inputs `h0` (and `c0`); else they are zero (false).
    pub initial_state: bool,
}

impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig { input: 128, hidden: 256, layers: 2, bidirectional: false, initial_state: false }
    }
}

/// The outputs of a stack: the top layer's sequence `[T, N, D·H]` and each layer's
/// final states `[D, N, H]`, bottom first (the cell states for LSTM only);
/// [`join_layers`] concatenates them into `[L·D, N, H]`.
#[derive(Debug, Clone)]
pub struct StackOut {
    pub y: Value,
    pub h: Vec<Value>,
    pub c: Vec<Value>,
}

/// Per-layer states `[D, N, H]` as one `[L·D, N, H]` (ONNX's layout for stacked states).
pub fn join_layers(b: &mut GraphBuilder, states: &[Value]) -> Value {
    if states.len() == 1 { states[0] } else { b.concat(states, 0) }
}

/// `layers` recurrent layers (scopes `layer0`, `layer1`, …) over `x: [T, N, input]`,
/// each layer's directions concatenated before the next; `init` holds the initial
/// states `[L·D, N, H]` (`c0` for LSTM only).
#[allow(clippy::too_many_arguments)]
pub fn stack(
    b: &mut GraphBuilder,
    cell: Cell,
    x: Value,
    input: usize,
    hidden: usize,
    layers: usize,
    bidirectional: bool,
    init: Option<(Value, Option<Value>)>,
) -> StackOut {
    let d = if bidirectional { 2 } else { 1 };
    let per_layer = |b: &mut GraphBuilder, s: Option<Value>| -> Vec<Option<Value>> {
        match s {
            None => vec![None; layers],
            Some(s) if layers == 1 => vec![Some(s)],
            Some(s) => b.split(s, 0, &vec![d; layers]).into_iter().map(Some).collect(),
        }
    };
    let h0 = per_layer(b, init.map(|i| i.0));
    let c0 = per_layer(b, init.and_then(|i| i.1));
    let (mut y, mut hs, mut cs) = (x, Vec::new(), Vec::new());
    let mut fin = input;
    for l in 0..layers {
        let outs = b.scope(&format!("layer{l}"), |b| layer(b, cell, y, fin, hidden, bidirectional, h0[l], c0[l]));
        y = outs.y;
        hs.extend(outs.h);
        cs.extend(outs.c);
        fin = d * hidden;
    }
    StackOut { y, h: hs, c: cs }
}

/// One recurrent layer (params `w`, `r`, `b` in the current scope) over
/// `x: [T, N, input]`; its sequence output flattened to `[T, N, D·H]`.
#[allow(clippy::too_many_arguments)]
pub fn layer(
    b: &mut GraphBuilder,
    cell: Cell,
    x: Value,
    input: usize,
    hidden: usize,
    bidirectional: bool,
    h0: Option<Value>,
    c0: Option<Value>,
) -> StackOut {
    let (d, g) = (if bidirectional { 2 } else { 1 }, cell.gates());
    let w = b.param("w", TensorType::f32([d, g * hidden, input]));
    let r = b.param("r", TensorType::f32([d, g * hidden, hidden]));
    let bias = b.param("b", TensorType::f32([d, 2 * g * hidden]));
    let rnn = Rnn {
        hidden,
        direction: if bidirectional { Direction::Bidirectional } else { Direction::Forward },
        linear_before_reset: false,
    };
    let mut ins = vec![x, w, r, bias];
    let outs = match cell {
        Cell::Lstm => {
            // ONNX's optional inputs are positional: c0 needs h0.
            if let Some(h0) = h0 {
                ins.push(h0);
                ins.extend(c0);
            }
            b.op_multi(Op::Lstm(rnn), &ins)
        }
        Cell::Gru => {
            ins.extend(h0);
            b.op_multi(Op::Gru(rnn), &ins)
        }
    };
    // y: [T, D, N, H] → [T, N, D·H].
    let y = if d == 1 {
        reshape(b, outs[0], &[0, -1, hidden as i64])
    } else {
        let t = b.transpose(outs[0], &[0, 2, 1, 3]);
        reshape(b, t, &[0, 0, -1])
    };
    StackOut { y, h: vec![outs[1]], c: outs.get(2).copied().into_iter().collect() }
}

fn check_stack(c: &mut Checks, cfg: &RnnConfig) {
    c.size("input", cfg.input);
    c.size("hidden", cfg.hidden);
    c.range("layers", cfg.layers, 1, 1000);
}

/// `lstm(x: f32[T, N, input] [, h0, c0: f32[L·D, N, hidden]]) -> (y: f32[T, N, D·hidden], h, c)`.
pub fn lstm(cfg: &RnnConfig) -> Result<Graph, Diagnostics> {
    recurrent("lstm", Cell::Lstm, cfg)
}

/// `gru(x: f32[T, N, input] [, h0: f32[L·D, N, hidden]]) -> (y: f32[T, N, D·hidden], h)`.
pub fn gru(cfg: &RnnConfig) -> Result<Graph, Diagnostics> {
    recurrent("gru", Cell::Gru, cfg)
}

fn recurrent(name: &'static str, cell: Cell, cfg: &RnnConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new(name);
    check_stack(&mut c, cfg);
    c.finish()?;
    let d = if cfg.bidirectional { 2 } else { 1 };
    let state = TensorType::f32(shape![cfg.layers * d, "N", cfg.hidden]);
    let mut b = GraphBuilder::new(name);
    let x = b.input("x", TensorType::f32(shape!["T", "N", cfg.input]));
    let init = cfg.initial_state.then(|| {
        let h0 = b.input("h0", state.clone());
        let c0 = (cell == Cell::Lstm).then(|| b.input("c0", state.clone()));
        (h0, c0)
    });
    let out = stack(&mut b, cell, x, cfg.input, cfg.hidden, cfg.layers, cfg.bidirectional, init);
    b.output("y", out.y);
    let h = join_layers(&mut b, &out.h);
    b.output("h", h);
    if cell == Cell::Lstm {
        let c = join_layers(&mut b, &out.c);
        b.output("c", c);
    }
    b.finish()
}

/// A word-level LSTM language model.
#[derive(Debug, Clone, PartialEq)]
pub struct LmConfig {
    /// Vocabulary size (10000, as Penn Treebank).
    pub vocab: usize,
    /// Embedding size (256).
    pub embed: usize,
    /// Hidden units (512).
    pub hidden: usize,
    /// Stacked LSTM layers (2).
    pub layers: usize,
}

impl Default for LmConfig {
    fn default() -> Self {
        LmConfig { vocab: 10000, embed: 256, hidden: 512, layers: 2 }
    }
}

/// `lstm_lm(tokens: i64[T, N], h0, c0: f32[layers, N, hidden]) -> (logp: f32[T, N, vocab], h, c)`:
/// embedding (`gather` of `embed.table`) → LSTM stack → projection `proj` → log_softmax
/// over the vocabulary. The states make it steppable: feed `h`, `c` back as `h0`, `c0`.
pub fn language_model(cfg: &LmConfig) -> Result<Graph, Diagnostics> {
    let mut c = Checks::new("lstm_lm");
    c.size("vocab", cfg.vocab);
    c.size("embed", cfg.embed);
    c.size("hidden", cfg.hidden);
    c.range("layers", cfg.layers, 1, 1000);
    c.finish()?;
    let state = TensorType::f32(shape![cfg.layers, "N", cfg.hidden]);
    let mut b = GraphBuilder::new("lstm_lm");
    let tokens = b.input("tokens", TensorType::new(DType::I64, shape!["T", "N"]));
    let h0 = b.input("h0", state.clone());
    let c0 = b.input("c0", state);
    let e = b.scope("embed", |b| layers::embedding(b, tokens, cfg.vocab, cfg.embed));
    let out =
        b.scope("lstm", |b| stack(b, Cell::Lstm, e, cfg.embed, cfg.hidden, cfg.layers, false, Some((h0, Some(c0)))));
    let logits = b.scope("proj", |b| layers::dense(b, out.y, cfg.hidden, cfg.vocab, true));
    let logp = b.log_softmax(logits, -1);
    let h = join_layers(&mut b, &out.h);
    let c = join_layers(&mut b, &out.c);
    b.output("logp", logp);
    b.output("h", h);
    b.output("c", c);
    b.finish()
}

/// One time step of a stacked LSTM (scope `lstm`): `x: [N, input]`, states
/// `h, c: [layers, N, hidden]` → the top layer's output `[N, hidden]` and the new
/// states.
pub fn lstm_step(
    b: &mut GraphBuilder,
    x: Value,
    (h, c): (Value, Value),
    input: usize,
    hidden: usize,
    layers: usize,
) -> (Value, Value, Value) {
    let x = reshape(b, x, &[1, -1, input as i64]);
    let out = b.scope("lstm", |b| stack(b, Cell::Lstm, x, input, hidden, layers, false, Some((h, Some(c)))));
    let top = reshape(b, out.y, &[-1, hidden as i64]);
    (top, join_layers(b, &out.h), join_layers(b, &out.c))
}
