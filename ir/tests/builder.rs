//! The builder API is enough to write a ResNet stage or a transformer layer in a
//! page, with symbolic batch and sequence dims, and it collects errors instead of
//! panicking.

use smelt_ir::ops::{Attention, Conv, Gemm, Pool, PoolKind};
use smelt_ir::{DimSpec, GraphBuilder, TensorType, Value, shape, text};

fn conv_bn_relu(b: &mut GraphBuilder, x: Value, cin: u64, cout: u64, stride: usize, relu: bool) -> Value {
    let w = b.param("w", TensorType::f32([cout, cin, 3, 3]));
    let mut c = Conv::new(2);
    c.stride = vec![stride; 2];
    c.pad = vec![1; 4];
    let y = b.conv(x, w, None, c);
    let [s, bi, m, v] = ["scale", "bias", "mean", "var"].map(|n| b.param(n, TensorType::f32([cout])));
    let y = b.batch_norm(y, s, bi, m, v, 1e-5);
    if relu { b.relu(y) } else { y }
}

fn basic_block(b: &mut GraphBuilder, x: Value, cin: u64, cout: u64, stride: usize) -> Value {
    let h = b.scope("conv1", |b| conv_bn_relu(b, x, cin, cout, stride, true));
    let h = b.scope("conv2", |b| conv_bn_relu(b, h, cout, cout, 1, false));
    let skip = if stride == 1 && cin == cout {
        x
    } else {
        b.scope("down", |b| {
            let w = b.param("w", TensorType::f32([cout, cin, 1, 1]));
            let mut c = Conv::new(2);
            c.stride = vec![stride; 2];
            b.conv(x, w, None, c)
        })
    };
    let y = b.add(h, skip);
    b.relu(y)
}

#[test]
fn resnet_stage() {
    let mut b = GraphBuilder::new("resnet_stage");
    let x = b.input("image", TensorType::f32(shape!["N", 3, 32, 32]));
    let stem = b.scope("stem", |b| conv_bn_relu(b, x, 3, 16, 1, true));
    let pool = Pool {
        kind: PoolKind::Max,
        kernel: vec![3, 3],
        stride: vec![2, 2],
        pad: vec![1; 4],
        dilation: vec![1, 1],
        ceil_mode: false,
        count_include_pad: false,
        indices: None,
    };
    let mut h = b.pool(stem, pool);
    for (i, (cin, cout, s)) in [(16, 16, 1), (16, 32, 2), (32, 32, 1)].into_iter().enumerate() {
        h = b.scope(&format!("block{i}"), |b| basic_block(b, h, cin, cout, s));
    }
    let g = b.global_avg_pool(h);
    let f = b.reshape(g, &[DimSpec::Sym("N".into()), DimSpec::Int(-1)]);
    let w = b.param("fc.w", TensorType::f32([32, 10]));
    let bias = b.param("fc.b", TensorType::f32([10]));
    let logits = b.linear(f, w, Some(bias));
    b.output("logits", logits);
    let g = b.finish().unwrap();
    assert_eq!(g.value_type(g.outputs()[0]).unwrap().to_string(), "f32[N, 10]");
    let p = text::print(&g);
    assert!(p.contains("block1.down.w = param f32[32, 16, 1, 1]"), "{p}");
    assert_eq!(text::print(&text::parse(&p).unwrap()), p);
}

#[test]
fn transformer_layer() {
    let (d, heads, ffn) = (32u64, 4, 64u64);
    let mut b = GraphBuilder::new("encoder_layer");
    let x = b.input("x", TensorType::f32(shape!["B", "T", d as i32]));
    let ln = |b: &mut GraphBuilder, name: &str, x: Value| {
        b.scope(name, |b| {
            let s = b.param("scale", TensorType::f32([d]));
            let bi = b.param("bias", TensorType::f32([d]));
            b.layer_norm(x, s, Some(bi), 1e-5)
        })
    };
    let h = ln(&mut b, "ln1", x);
    let [q, k, v] = ["q", "k", "v"].map(|n| {
        let w = b.param(&format!("attn.w{n}"), TensorType::f32([d, d]));
        b.matmul(h, w)
    });
    let a = b.attention(q, k, v, None, Attention { heads, scale: None, causal: true });
    let wo = b.param("attn.wo", TensorType::f32([d, d]));
    let a = b.matmul(a, wo);
    let x = b.add(x, a);
    let h = ln(&mut b, "ln2", x);
    let w1 = b.param("ffn.w1", TensorType::f32([d, ffn]));
    let b1 = b.param("ffn.b1", TensorType::f32([ffn]));
    let h = b.linear(h, w1, Some(b1));
    let h = b.gelu(h);
    let w2 = b.param("ffn.w2", TensorType::f32([ffn, d]));
    let h = b.matmul(h, w2);
    let y = b.add(x, h);
    b.output("y", y);
    let g = b.finish().unwrap();
    assert_eq!(g.value_type(g.outputs()[0]).unwrap().to_string(), "f32[B, T, 32]");
}

#[test]
fn errors_are_collected_not_panicked() {
    let mut b = GraphBuilder::new("bad");
    let x = b.input("x", TensorType::f32(shape!["N", 4]));
    let w = b.param("w", TensorType::f32([5, 3]));
    let y = b.matmul(x, w); // inner dims disagree
    let z = b.relu(y); // not reported again: its input failed
    let c = b.gemm(x, x, None, Gemm::default()); // 4 vs N
    let _ = b.add(z, c);
    b.output("z", z);
    let err = b.finish().unwrap_err();
    let msgs: Vec<String> = err.0.iter().map(|d| d.render(None)).collect();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(msgs[0].contains("matmul: inner dims must agree, found [N, 4] and [5, 3]"), "{}", msgs[0]);
    assert!(msgs[0].contains("--> node matmul_0"), "{}", msgs[0]);
    assert!(msgs[1].contains("gemm: inner dims must agree"), "{}", msgs[1]);
}
