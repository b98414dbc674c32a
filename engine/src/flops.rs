//! The arithmetic of a model as benchmarks count it: two FLOPs per
//! multiply-add of its products — matmuls, GEMMs, convolutions (float and
//! quantized), attention and recurrences — and nothing for elementwise work, so
//! that a time gives the rate the machine's FMA peak is compared with.

use smelt_ir::{Graph, Op, TensorType};

fn numel(t: &TensorType) -> Option<f64> {
    t.shape.fixed().map(|s| s.iter().product::<usize>() as f64)
}

fn dim(t: &TensorType, i: usize) -> Option<f64> {
    t.shape.fixed().and_then(|s| s.get(i).copied()).map(|d| d as f64)
}

/// FLOPs of one run of `g` (its shapes fixed); `None` when a product's shape is
/// symbolic.
pub fn model_flops(g: &Graph) -> Option<f64> {
    let mut total = 0.0;
    for id in g.topo_order()? {
        let n = g.node(id);
        let ins: Vec<&TensorType> = g.node_inputs(id).into_iter().filter_map(|v| g.value_type(v)).collect();
        let out = || n.types.first().and_then(numel);
        let last = |t: &TensorType| t.shape.fixed().and_then(|s| s.last().copied()).map(|d| d as f64);
        total += match &n.op {
            Op::MatMul | Op::FusedMatMul { .. } | Op::QMatMul(_) => 2.0 * out()? * last(ins.first()?)?,
            Op::Gemm(a) => {
                let k = if a.trans_a { dim(ins.first()?, 0)? } else { dim(ins.first()?, 1)? };
                2.0 * out()? * k
            }
            Op::Conv(_) | Op::FusedConv { .. } | Op::QConv(..) => {
                let w = ins.get(1)?;
                2.0 * out()? * numel(w)? / dim(w, 0)?.max(1.0)
            }
            Op::Attention(_) => {
                let (q, k, v) = (ins.first()?, ins.get(1)?, ins.get(2)?);
                let heads_batch = numel(q)? / (dim(q, q.shape.rank().checked_sub(2)?)? * last(q)?);
                let (tq, tk) = (dim(q, q.shape.rank() - 2)?, dim(k, k.shape.rank().checked_sub(2)?)?);
                2.0 * heads_batch * tq * tk * (last(q)? + last(v)?)
            }
            // X [T, B, I], W [D, G·H, I], R [D, G·H, H].
            Op::Lstm(_) | Op::Gru(_) => {
                let (x, w, r) = (ins.first()?, ins.get(1)?, ins.get(2)?);
                2.0 * dim(x, 0)? * dim(x, 1)? * (numel(w)? + numel(r)?)
            }
            _ => 0.0,
        };
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::text::parse;

    #[test]
    fn products_count_two_flops_per_multiply_add() {
        let g = parse(
            "graph g(x: f32[2, 3, 8, 8], a: f32[5, 7]) -> (y, z) {\n  w = param f32[4, 3, 3, 3]\n  c = conv2d(x, w) {pad = [1, 1, 1, 1]}\n  y = relu(c)\n  m = param f32[7, 6]\n  z = matmul(a, m)\n}\n",
        )
        .unwrap();
        // conv: 2·(2·4·8·8 outputs)·(3·3·3); matmul: 2·(5·6)·7.
        assert_eq!(model_flops(&g), Some(2.0 * 512.0 * 27.0 + 2.0 * 30.0 * 7.0));
        let s = parse("graph g(a: f32[N, 7]) -> (z) {\n  m = param f32[7, 6]\n  z = matmul(a, m)\n}\n").unwrap();
        assert_eq!(model_flops(&s), None);
    }
}
