//! Splits a conv whose only user is a `split` of its output channels into one
//! conv per chunk, the weights and bias sliced at compile time.
//!
//! Before: `c = conv(x, w, b)`, `c.0, c.1 = split(c) {axis = 1, sizes = [m0, m1]}`
//! (any number of chunks; `conv1d/2d/3d`, or a `fused_conv` with an activation
//! and no residual or epilogue), `w` and `b` known, one group. After:
//! `c.k = conv(x, w[rows of k], b[rows of k])` for each chunk: no split copy, and
//! each chunk is a conv of its own, whose users can fuse into it (WaveNet's
//! gated unit `tanh(c.0) · sigmoid(c.1)` becomes `c.1`'s epilogue). The new
//! weights are params named after the chunks (`NAME.weight`, `NAME.bias`); the
//! old ones go when DCE finds them unused. The rewrite is made only where the
//! cost model says the chunk convs take less time than the conv and the split
//! (each chunk reads the whole input again).

use super::{add_weight, fresh_name, is_output, known_value};
use crate::egraph::cost::{CostModel, CostTarget};
use crate::error::Result;
use crate::manager::{Pass, PassReport};
use smelt_ir::{Data, Graph, NodeId, Op, Tensor, TensorType, Value};

#[derive(Debug, Clone, Copy)]
pub struct SplitConv {
    model: CostModel,
}

impl SplitConv {
    /// Costed for `target`.
    pub fn new(target: CostTarget) -> SplitConv {
        SplitConv { model: CostModel::new(target) }
    }
}

impl Default for SplitConv {
    fn default() -> SplitConv {
        SplitConv::new(CostTarget::CPU)
    }
}

impl Pass for SplitConv {
    fn name(&self) -> &'static str {
        "split-conv"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let Some(order) = g.topo_order() else { return Ok(PassReport::default()) };
        let mut split = 0;
        for id in order {
            if g.contains(id) && matches!(g.node(id).op, Op::Split { .. }) && try_split(g, id, &self.model).is_some() {
                split += 1;
            }
        }
        Ok(if split == 0 { PassReport::default() } else { PassReport::note(format!("split {split} convs by output channels")) })
    }
}

fn try_split(g: &mut Graph, s: NodeId, model: &CostModel) -> Option<()> {
    let Op::Split { axis, sizes } = g.node(s).op.clone() else { return None };
    let src = g.node_inputs(s)[0];
    let c = src.node;
    let conv_op = g.node(c).op.clone();
    let pins = g.node_inputs(c);
    let groups = match &conv_op {
        Op::Conv(cv) => cv.groups,
        Op::FusedConv { conv, epilogue: None, .. } if pins.len() <= 3 => conv.groups,
        _ => return None,
    };
    let out = g.value_type(src)?.clone();
    let rank = out.rank() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    if groups > 1 || axis != 1 || sizes.len() < 2 || g.users(src).len() != 1 || is_output(g, c) {
        return None;
    }
    let w = known_value(g, pins[1])?;
    let b = match pins.get(2) {
        Some(&v) => Some(known_value(g, v)?),
        None => None,
    };
    let m = w.shape().first().copied()?;
    if m == 0 || sizes.iter().sum::<usize>() != m || !w.dtype().is_float() || b.as_ref().is_some_and(|b| b.numel() != m) {
        return None;
    }
    // The chunks' weights and biases, and whether the chunk convs cost less.
    let per = w.numel() / m;
    let (wv, bv) = (w.to_f32(), b.as_ref().map(|b| b.to_f32()));
    let x_ty = g.value_type(pins[0])?.clone();
    let mut chunks = Vec::with_capacity(sizes.len());
    let mut after = 0.0;
    let mut at = 0;
    for (k, &n) in sizes.iter().enumerate() {
        let mut ws = w.shape().to_vec();
        ws[0] = n;
        let wt = Tensor::new(ws, Data::from_f32(w.dtype(), &wv[at * per..(at + n) * per])).ok()?;
        let bt = match &bv {
            Some(bv) => Some(Tensor::new(vec![n], Data::from_f32(w.dtype(), &bv[at..at + n])).ok()?),
            None => None,
        };
        let mut tys = vec![&x_ty];
        let (wty, bty) = (wt.tensor_type(), bt.as_ref().map(Tensor::tensor_type));
        tys.push(&wty);
        tys.extend(bty.as_ref());
        let oty: TensorType = g.node(s).types.get(k)?.clone();
        after += model.op_time(&conv_op, &tys, std::slice::from_ref(&oty));
        chunks.push((wt, bt));
        at += n;
    }
    let in_tys: Vec<&TensorType> = pins.iter().map(|&v| g.value_type(v)).collect::<Option<_>>()?;
    let split_tys = g.node(s).types.clone();
    let before = model.op_time(&conv_op, &in_tys, std::slice::from_ref(&out)) + model.op_time(&Op::Split { axis, sizes: sizes.clone() }, &[&out], &split_tys);
    if after >= before {
        return None;
    }
    let names = g.node(s).names.clone();
    let mut new = Vec::with_capacity(chunks.len());
    for (k, (wt, bt)) in chunks.into_iter().enumerate() {
        let mut ins = vec![pins[0], add_weight(g, &format!("{}.weight", names[k]), wt)];
        if let Some(bt) = bt {
            ins.push(add_weight(g, &format!("{}.bias", names[k]), bt));
        }
        let tmp = fresh_name(g, &format!("{}__chunk", names[k]));
        let id = g.add_node(conv_op.clone(), &ins, vec![tmp]);
        g.replace_uses(Value { node: s, output: k }, Value { node: id, output: 0 });
        new.push(id);
    }
    g.remove_node(s);
    g.remove_node(c);
    for (id, name) in new.into_iter().zip(names) {
        g.node_mut(id).names = vec![name];
        // Inputs were typed; a failure here is caught by the verifier after the pass.
        let _ = g.infer_node(id);
    }
    Some(())
}
