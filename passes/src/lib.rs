//! smelt-passes: graph-to-graph transformations.
//!
//! The [`PassManager`] with `-O0`…`-O3` pipelines, the classic
//! passes ([`classic`]: type inference, constant folding, dead code and common
//! subexpression elimination, batch-norm folding, reshape/transpose simplification),
//! and the egg e-graph optimizer ([`egraph`]) with its rule families
//! (`rules/{algebra,fusion,patterns,sparsity}.rs`) and cost model; quantization
//! ([`quant`]) and magnitude pruning ([`prune`]). Depends on `smelt-ir` and egg
//! only.

pub mod classic;
pub mod egraph;
mod error;
mod manager;
pub mod opkey;
pub mod prune;
pub mod quant;
pub mod rules;

pub use classic::{Cse, Dce, FoldBatchNorm, FoldConstants, InferTypes, SimplifyShapes, SplitConv};
pub use egraph::{EqSat, EqSatReport, Limits};
pub use egraph::cost::{CostModel, CostTarget};
pub use error::{Error, Result};
pub use quant::FoldQdq;
pub use manager::{OptLevel, Pass, PassManager, PassRecord, PassReport, PrintAfter, time_table};
