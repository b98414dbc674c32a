//! Constant folding: a node whose inputs are all known (inline constants, params
//! with weights, or values folded before it) is evaluated now by the small
//! evaluator in [`super::eval`] and becomes a source of the same name: an inline
//! constant when it holds one element, else a param whose weight is the computed
//! value. Graph outputs are not folded (they stay computed), and neither are
//! results larger than [`MAX_FOLD_ELEMS`] elements.

use super::{eval, is_output, known_value, replace_with_value};
use crate::error::Result;
use crate::manager::{Pass, PassReport};
use smelt_ir::{Graph, Tensor};
use std::sync::Arc;

/// The largest result (in elements) that folding writes into the weights.
pub const MAX_FOLD_ELEMS: u64 = 1 << 24;

#[derive(Debug, Default, Clone, Copy)]
pub struct FoldConstants;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let Some(order) = g.topo_order() else { return Ok(PassReport::default()) };
        let mut folded = 0;
        for id in order {
            let n = g.node(id);
            if n.op.is_source() || n.op.num_outputs() != 1 || is_output(g, id) {
                continue;
            }
            let Some(ty) = n.types.first().cloned() else { continue };
            if ty.shape.numel().is_none_or(|k| k > MAX_FOLD_ELEMS) {
                continue;
            }
            let ins = g.node_inputs(id);
            let vals: Option<Vec<Arc<Tensor>>> = ins.iter().map(|&v| known_value(g, v)).collect();
            let Some(vals) = vals else { continue };
            let refs: Vec<&Tensor> = vals.iter().map(|t| &**t).collect();
            let Some(value) = eval::eval(&g.node(id).op, &refs, &ty) else { continue };
            if !value.fits(&ty) {
                continue;
            }
            replace_with_value(g, id, value);
            folded += 1;
        }
        Ok(if folded == 0 { PassReport::default() } else { PassReport::note(format!("folded {folded} nodes")) })
    }
}
