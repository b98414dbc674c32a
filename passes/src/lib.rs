//! smelt-passes: graph-to-graph transformations.
//!
//! Role (DESIGN.md §3): the pass manager with `-O0`…`-O3` pipelines, the classic
//! passes (shape inference, constant folding, dead code and common subexpression
//! elimination, batch-norm folding, layout choice), the egg e-graph optimizer with
//! its rule families (`rules/{algebra,fusion,quant,sparse,moe}.rs`) and cost model,
//! quantization and pruning. Depends only on `smelt-ir`.
//!
//! Today it holds the one pass every pipeline starts with: type inference.

use smelt_ir::{Diagnostics, Graph};

/// A graph-to-graph transformation.
pub trait Pass {
    /// The pass's kebab-case name (used by `--print-after`).
    fn name(&self) -> &'static str;
    /// Runs the pass; the graph must verify afterwards.
    fn run(&self, g: &mut Graph) -> Result<(), Diagnostics>;
}

/// Infers every node's output types from its inputs.
#[derive(Debug, Default)]
pub struct InferTypes;

impl Pass for InferTypes {
    fn name(&self) -> &'static str {
        "infer-types"
    }
    fn run(&self, g: &mut Graph) -> Result<(), Diagnostics> {
        g.infer()
    }
}
