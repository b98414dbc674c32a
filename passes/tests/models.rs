//! The report's models at small sizes: a bottleneck ResNet and a two-layer
//! transformer with its layer norms, attention and GELU spelled out. At -O2 every
//! batch norm folds and every conv fuses; the transformer comes out as layer_norm,
//! attention and fused matmuls; and both compute what they computed.

mod common;

use common::{assert_same_values, fill_weights, models};
use smelt_ir::{Graph, Op};
use smelt_passes::{OptLevel, PassManager};

fn count(g: &Graph, name: &str) -> usize {
    g.node_ids().filter(|&i| g.node(i).op.name() == name).count()
}

fn optimize(mut g: Graph) -> (Graph, Graph) {
    fill_weights(&mut g, 5);
    let mut o = g.clone();
    let mut pm = PassManager::pipeline(OptLevel::O2);
    pm.set_verify(true);
    pm.run(&mut o).unwrap();
    (g, o)
}

#[test]
fn small_resnet_folds_and_fuses() {
    let (g, o) = optimize(models::resnet(&[1, 2], 4, 32, 10));
    let text = smelt_ir::text::print(&o);
    assert_eq!(count(&o, "batch_norm") + count(&o, "relu") + count(&o, "add"), 0, "{text}");
    // A block that downsamples adds two convs: one of them fuses the other as its
    // residual, which must be computed on its own.
    assert_eq!(count(&o, "conv2d"), 2, "{text}");
    assert_eq!(count(&o, "fused_conv2d"), count(&g, "conv2d") - 2, "{text}");
    assert_same_values("resnet", &g, &o, 0);
}

#[test]
fn small_transformer_becomes_layer_norms_attention_and_fused_matmuls() {
    let layers = 2;
    let (g, o) = optimize(models::transformer(layers, 6, 16, 2, 32));
    let text = smelt_ir::text::print(&o);
    assert_eq!(count(&o, "layer_norm"), 2 * layers, "{text}");
    assert_eq!(count(&o, "attention"), layers, "{text}");
    assert_eq!(count(&o, "fused_matmul"), 6 * layers, "{text}");
    let gelu = o.node_ids().filter(|&i| matches!(&o.node(i).op, Op::FusedMatMul { epilogue } if epilogue.to_string().contains("gelu"))).count();
    assert_eq!(gelu, layers, "{text}");
    assert_eq!(o.node_ids().filter(|&i| !o.node(i).op.is_source()).count(), 9 * layers, "{text}");
    assert_same_values("transformer", &g, &o, 0);
}
