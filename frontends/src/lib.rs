//! smelt-frontends: how models reach smelt.
//!
//! Model builders, one module per family — `cnn` (ResNet, the Atari DQN net),
//! `rnn` (LSTM/GRU language models), `attention` (transformers, NMT seq2seq,
//! listen-attend-spell), `wavenet` (with fast incremental generation), `rl`
//! (AlphaZero policy/value) — the zoo that names them (`smelt zoo`), and the ONNX
//! importer ([`onnx`]). Depends only on `smelt-ir`; builders use
//! [`smelt_ir::GraphBuilder`].

pub mod attention;
pub mod cnn;
pub mod layers;
pub mod moe;
pub mod rl;
pub mod rnn;
pub mod wavenet;
pub mod zoo;
pub mod onnx;
