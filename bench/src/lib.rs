//! smelt's benchmark against its peers: ONNX Runtime (timed by
//! `scripts/bench/ort_bench.py`, which also writes the reference outputs) and tract
//! (in this process), on the models of `scripts/bench/make_models.py`.
//! `scripts/bench/run.sh` runs it all; this crate measures smelt, tract and ONNX
//! Runtime side by side ([`measure`], [`tract`], [`ort`]: a Python worker), checks
//! outputs ([`check`]) and makes the report: the
//! table and targets ([`report`]), the plot ([`svg`]) and README's section ([`readme`]).

pub mod check;
pub mod machine;
pub mod measure;
pub mod ort;
pub mod readme;
pub mod report;
pub mod svg;
#[cfg(feature = "tract")]
pub mod tract;
