//! The verifier names the node, the op, what was expected and what was found.

use smelt_ir::{Graph, Op, Tensor, TensorType, UnaryOp, Value, Weights, verify};

fn messages(g: &Graph, w: Weights) -> String {
    verify(g, w).unwrap_err().render(Some("model.smelt"))
}

fn small() -> (Graph, Value, Value) {
    let mut g = Graph::new("g");
    let x = g.add_input("x", TensorType::f32([2, 3]));
    let w = g.add_param("w", TensorType::f32([3, 4]));
    let m = g.add_node(Op::MatMul, &[x, w], vec!["m".into()]);
    let m = Value { node: m, output: 0 };
    g.set_outputs(vec![m]);
    g.infer().unwrap();
    (g, x, m)
}

#[test]
fn weights_are_checked() {
    let (mut g, _, _) = small();
    assert!(verify(&g, Weights::IfPresent).is_ok());
    insta::assert_snapshot!(messages(&g, Weights::Required), @r"
    error: no weight named `w` (expected f32[3, 4])
      --> model.smelt (node w)
    ");
    g.set_weight("w", Tensor::f32(vec![4, 3], vec![0.0; 12]).unwrap());
    insta::assert_snapshot!(messages(&g, Weights::IfPresent), @r"
    error: weight `w` is f32[4, 3], expected f32[3, 4]
      --> model.smelt (node w)
    ");
}

#[test]
fn stale_types_and_bad_structure_are_reported() {
    let (mut g, x, m) = small();
    // A pass that changed an op without re-inferring.
    g.node_mut(m.node).types = vec![TensorType::f32([2, 5])];
    // Two values with one name.
    let r = g.add_node(Op::Unary(UnaryOp::Relu), &[x], vec!["m".into()]);
    g.infer_node(r).unwrap();
    insta::assert_snapshot!(messages(&g, Weights::IfPresent), @r"
    error: recorded type (f32[2, 5]) differs from inferred (f32[2, 4])
      --> model.smelt (node m)
    error: value `m` is defined twice
      --> model.smelt (node m)
    2 errors
    ");
}

#[test]
fn cycles_are_reported() {
    let (mut g, x, m) = small();
    let r = g.add_node(Op::Unary(UnaryOp::Relu), &[m], vec!["r".into()]);
    g.infer_node(r).unwrap();
    // Feed r back into the matmul in place of x: a cycle.
    let users: Vec<_> = g.users(x);
    assert_eq!(users.len(), 1);
    g.replace_uses(x, Value { node: r, output: 0 });
    let msg = messages(&g, Weights::IfPresent);
    assert!(msg.contains("graph g has a cycle"), "{msg}");
    assert!(g.clone().infer().is_err());
}
