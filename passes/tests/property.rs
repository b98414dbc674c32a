//! Property test: random small graphs (elementwise ops, matmuls with weights and
//! biases, reductions, softmax, transposes and reshapes that come back, shared
//! values) optimize at -O2 and -O3 into graphs that compute the same values on the
//! interpreter.

mod common;

use common::{assert_same_values, fill_weights};
use proptest::prelude::*;
use smelt_ir::ops::{ReduceKind, UnaryOp};
use smelt_ir::{DimSpec, Graph, GraphBuilder, Tensor, TensorType, Value, shape};
use smelt_passes::{OptLevel, PassManager};

/// Builds a graph from a list of steps `(kind, a, b)`; every value is f32[N, 8].
fn build(steps: &[(u8, u8, u8)]) -> Graph {
    let mut b = GraphBuilder::new("random");
    let x = b.input("x", TensorType::f32(shape!["N", 8]));
    let mut vals: Vec<Value> = vec![x];
    for (i, &(kind, p, q)) in steps.iter().enumerate() {
        let a = vals[p as usize % vals.len()];
        let c = vals[q as usize % vals.len()];
        let v = match kind % 16 {
            0 => b.relu(a),
            1 => b.unary(UnaryOp::Tanh, a),
            2 => b.sigmoid(a),
            3 => b.add(a, c),
            4 => b.mul(a, c),
            5 => b.sub(a, c),
            6 => {
                let w = b.param(&format!("w{i}"), TensorType::f32([8, 8]));
                b.matmul(a, w)
            }
            7 => {
                let bias = b.param(&format!("b{i}"), TensorType::f32([8]));
                b.add(a, bias)
            }
            8 => {
                let k = b.constant(Tensor::scalar_f32(if q % 2 == 0 { 1.0 } else { 0.5 }));
                b.mul(a, k)
            }
            9 => {
                let k = b.constant(Tensor::scalar_f32(0.0));
                b.add(k, a)
            }
            10 => {
                let t = b.transpose(a, &[1, 0]);
                let r = b.relu(t);
                b.transpose(r, &[1, 0])
            }
            11 => {
                let r = b.reshape(a, &[DimSpec::Int(0), DimSpec::Int(2), DimSpec::Int(4)]);
                b.reshape(r, &[DimSpec::Int(0), DimSpec::Int(8)])
            }
            12 => {
                let m = b.reduce(a, ReduceKind::Mean, &[-1], true);
                b.sub(a, m)
            }
            13 => b.softmax(a, -1),
            14 => {
                let w = b.param(&format!("w{i}"), TensorType::f32([8, 8]));
                let m = b.matmul(a, w);
                let bias = b.param(&format!("b{i}"), TensorType::f32([8]));
                let s = b.add(m, bias);
                b.relu(s)
            }
            _ => b.unary(UnaryOp::Abs, a),
        };
        vals.push(v);
    }
    let last = *vals.last().expect("at least x");
    b.output("y", last);
    if vals.len() > 3 {
        let mid = vals[vals.len() / 2];
        if mid != last && mid != x {
            b.output("z", mid);
        }
    }
    b.finish().expect("a well-typed random graph")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn optimized_random_graphs_compute_the_same(steps in prop::collection::vec((0u8..16, 0u8..32, 0u8..32), 1..14)) {
        let mut g = build(&steps);
        fill_weights(&mut g, 3);
        for level in [OptLevel::O2, OptLevel::O3] {
            let mut o = g.clone();
            let mut pm = PassManager::pipeline(level);
            pm.set_verify(true);
            pm.run(&mut o).unwrap_or_else(|e| panic!("{e}\n{}", smelt_ir::text::print(&g)));
            let what = format!("{level:?} of\n{}\ninto\n{}", smelt_ir::text::print(&g), smelt_ir::text::print(&o));
            assert_same_values(&what, &g, &o, 7);
        }
    }
}
