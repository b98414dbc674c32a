//! Folds inference batch normalization into the preceding convolution's, matmul's
//! or gemm's weights and bias.
//!
//! Before: `c = conv2d(x, w, b?)`, `y = batch_norm(c, s, β, μ, σ²)` with every one of
//! `w, b, s, β, μ, σ²` known and `c` used only by the batch norm. After: one
//! `y = conv2d(x, w', b')` with `k = s/√(σ²+ε)`, `w'[m] = w[m]·k[m]`,
//! `b' = (b − μ)·k + β`. A rank-2 `matmul(x, W)` (or a `gemm` with α = β = 1 and a
//! bias of shape `[C]` or none) scales the columns of W and becomes a `gemm` with the
//! new bias. The new weights are params named after the batch norm
//! (`NAME_weight`, `NAME_bias`); the old ones go when DCE finds them unused.

use super::{add_weight, is_output, known_value, replace_node};
use crate::error::Result;
use crate::manager::{Pass, PassReport};
use smelt_ir::ops::Gemm;
use smelt_ir::{Graph, NodeId, Op, Tensor};

#[derive(Debug, Default, Clone, Copy)]
pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batch-norm"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let Some(order) = g.topo_order() else { return Ok(PassReport::default()) };
        let mut folded = 0;
        for id in order {
            if g.contains(id) && matches!(g.node(id).op, Op::BatchNorm { .. }) && try_fold(g, id).is_some() {
                folded += 1;
            }
        }
        Ok(if folded == 0 { PassReport::default() } else { PassReport::note(format!("folded {folded} batch norms")) })
    }
}

/// How the producer's weight is laid out along the normalized channel.
enum Layout {
    /// The channel is dim 0 of the weight (conv `[M, C/g, k…]`, gemm with `trans_b`).
    Rows,
    /// The channel is the last dim of the weight (matmul / gemm `[K, N]`).
    Cols,
}

fn try_fold(g: &mut Graph, bn: NodeId) -> Option<()> {
    let Op::BatchNorm { epsilon } = g.node(bn).op else { return None };
    let ins = g.node_inputs(bn);
    let src = ins[0];
    let p = src.node;
    if g.users(src).len() != 1 || is_output(g, p) {
        return None;
    }
    let stats: Option<Vec<Vec<f32>>> = ins[1..].iter().map(|&v| known_value(g, v).map(|t| t.to_f32())).collect();
    let stats = stats?;
    let (scale, beta, mean, var) = (&stats[0], &stats[1], &stats[2], &stats[3]);
    let pins = g.node_inputs(p);
    let (layout, bias_ok) = match &g.node(p).op {
        Op::Conv(_) => (Layout::Rows, true),
        Op::MatMul if g.value_type(src)?.rank() == 2 && g.value_type(pins[0])?.rank() == 2 && g.value_type(pins[1])?.rank() == 2 => {
            (Layout::Cols, true)
        }
        Op::Gemm(gm) if gm.alpha == 1.0 && gm.beta == 1.0 && !gm.trans_a => {
            (if gm.trans_b { Layout::Rows } else { Layout::Cols }, pins.get(2).is_none_or(|&c| g.value_type(c).is_some_and(|t| t.rank() == 1)))
        }
        _ => return None,
    };
    if !bias_ok {
        return None;
    }
    let w = known_value(g, pins[1])?;
    let channels = scale.len();
    let b: Vec<f32> = match pins.get(2) {
        Some(&v) => known_value(g, v)?.to_f32(),
        None => vec![0.0; channels],
    };
    if channels == 0 || b.len() != channels || !w.dtype().is_float() || w.numel() % channels != 0 {
        return None;
    }
    let k: Vec<f32> = (0..channels).map(|c| scale[c] / (var[c] + epsilon).sqrt()).collect();
    let wv = w.to_f32();
    let new_w: Vec<f32> = match layout {
        Layout::Rows => {
            let per = wv.len() / channels;
            wv.iter().enumerate().map(|(i, &x)| x * k[i / per]).collect()
        }
        Layout::Cols => wv.iter().enumerate().map(|(i, &x)| x * k[i % channels]).collect(),
    };
    let new_b: Vec<f32> = (0..channels).map(|c| (b[c] - mean[c]) * k[c] + beta[c]).collect();
    let dtype = w.dtype();
    let wt = Tensor::new(w.shape().to_vec(), smelt_ir::Data::from_f32(dtype, &new_w)).ok()?;
    let bt = Tensor::new(vec![channels], smelt_ir::Data::from_f32(dtype, &new_b)).ok()?;
    let name = g.node(bn).name().to_string();
    let wv = add_weight(g, &format!("{name}_weight"), wt);
    let bv = add_weight(g, &format!("{name}_bias"), bt);
    let x = pins[0];
    let op = match &g.node(p).op {
        Op::Conv(c) => Op::Conv(c.clone()),
        Op::Gemm(gm) => Op::Gemm(gm.clone()),
        _ => Op::Gemm(Gemm::default()),
    };
    replace_node(g, bn, op, &[x, wv, bv]);
    g.remove_node(p);
    Some(())
}
