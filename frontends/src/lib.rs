//! smelt-frontends: how models reach smelt.
//!
//! Role (DESIGN.md §6): model builders, one module per family — `cnn` (ResNet, the
//! Atari DQN net), `rnn` (LSTM/GRU language models), `attention` (transformers,
//! NMT seq2seq, listen-attend-spell), `wavenet`, `rl` (AlphaZero policy/value) —
//! and the ONNX importer. Depends only on `smelt-ir`; builders use
//! [`smelt_ir::GraphBuilder`].
//!
//! The families arrive with the frontends issue.


pub mod attention;
pub mod cnn;
pub mod layers;
pub mod rl;
pub mod rnn;
pub mod wavenet;
pub mod zoo;
pub mod onnx;
