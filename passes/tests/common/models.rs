//! Models for the optimizer's tests and its report, built with `GraphBuilder` (not
//! the frontends' builders): a bottleneck ResNet with batch norms, and a pre-norm
//! transformer encoder whose layer norms, attention and GELU are spelled out as
//! exporters write them, so that the pattern rules have work to do.

use smelt_ir::ops::{Conv, Pool, PoolKind, ReduceKind};
use smelt_ir::{DimSpec, Graph, GraphBuilder, TensorType, Value};

pub fn conv_bn(b: &mut GraphBuilder, x: Value, cin: usize, cout: usize, k: usize, stride: usize, name: &str) -> Value {
    b.scope(name, |b| {
        let w = b.param("w", TensorType::f32([cout, cin, k, k]));
        let mut c = Conv::new(2);
        c.stride = vec![stride; 2];
        c.pad = vec![k / 2; 4];
        let y = b.conv(x, w, None, c);
        let s = b.param("bn_scale", TensorType::f32([cout]));
        let bb = b.param("bn_bias", TensorType::f32([cout]));
        let m = b.param("bn_mean", TensorType::f32([cout]));
        let v = b.param("bn_var", TensorType::f32([cout]));
        b.batch_norm(y, s, bb, m, v, 1e-5)
    })
}

/// A bottleneck ResNet (v1.5: stride on the 3×3 conv) at batch 1: `blocks` per
/// stage, stage widths `base·2^i`, input `size`×`size`. ResNet-50 is
/// `resnet(&[3, 4, 6, 3], 64, 224, 1000)`.
pub fn resnet(blocks: &[usize], base: usize, size: usize, classes: usize) -> Graph {
    let mut b = GraphBuilder::new("resnet");
    let x = b.input("x", TensorType::f32([1, 3, size, size]));
    let y = conv_bn(&mut b, x, 3, base, 7, 2, "stem");
    let y = b.relu(y);
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
    let mut y = b.pool(y, pool);
    let mut cin = base;
    for (si, &n) in blocks.iter().enumerate() {
        let width = base << si;
        for bi in 0..n {
            let stride = if bi == 0 && si > 0 { 2 } else { 1 };
            let cout = width * 4;
            let name = format!("layer{}.{bi}", si + 1);
            let h = conv_bn(&mut b, y, cin, width, 1, 1, &format!("{name}.conv1"));
            let h = b.relu(h);
            let h = conv_bn(&mut b, h, width, width, 3, stride, &format!("{name}.conv2"));
            let h = b.relu(h);
            let h = conv_bn(&mut b, h, width, cout, 1, 1, &format!("{name}.conv3"));
            let skip = if bi == 0 { conv_bn(&mut b, y, cin, cout, 1, stride, &format!("{name}.down")) } else { y };
            let s = b.add(h, skip);
            y = b.relu(s);
            cin = cout;
        }
    }
    let p = b.global_avg_pool(y);
    let f = b.reshape(p, &[DimSpec::Int(0), DimSpec::Int(-1)]);
    let w = b.param("fc.w", TensorType::f32([cin, classes]));
    let bias = b.param("fc.b", TensorType::f32([classes]));
    let out = b.gemm(f, w, Some(bias), Default::default());
    b.output("logits", out);
    b.finish().expect("the resnet builds")
}

/// Layer norm over the last axis, spelled out.
pub fn layer_norm(b: &mut GraphBuilder, x: Value, d: usize) -> Value {
    let g = b.param("ln_scale", TensorType::f32([d]));
    let beta = b.param("ln_bias", TensorType::f32([d]));
    let m = b.reduce(x, ReduceKind::Mean, &[-1], true);
    let c = b.sub(x, m);
    let two = b.scalar(2.0);
    let sq = b.binary(smelt_ir::BinaryOp::Pow, c, two);
    let v = b.reduce(sq, ReduceKind::Mean, &[-1], true);
    let eps = b.scalar(1e-5);
    let ve = b.add(v, eps);
    let s = b.unary(smelt_ir::UnaryOp::Sqrt, ve);
    let n = b.div(c, s);
    let n = b.mul(n, g);
    b.add(n, beta)
}

pub fn linear(b: &mut GraphBuilder, x: Value, i: usize, o: usize, name: &str) -> Value {
    b.scope(name, |b| {
        let w = b.param("w", TensorType::f32([i, o]));
        let bias = b.param("b", TensorType::f32([o]));
        b.linear(x, w, Some(bias))
    })
}

/// A pre-norm transformer encoder at batch 1: `layers` layers, length `t`, width
/// `d`, `h` heads, MLP width `ff`. The 12-layer BERT-base size is
/// `transformer(12, 128, 768, 12, 3072)`.
pub fn transformer(layers: usize, t: usize, d: usize, h: usize, ff: usize) -> Graph {
    let dh = d / h;
    let mut b = GraphBuilder::new("transformer");
    let mut x = b.input("x", TensorType::f32([1, t, d]));
    let split = [DimSpec::Int(0), DimSpec::Int(0), DimSpec::Int(h as i64), DimSpec::Int(dh as i64)];
    for l in 0..layers {
        x = b.scope(&format!("layer{l}"), |b| {
            let n = b.scope("ln1", |b| layer_norm(b, x, d));
            let q = linear(b, n, d, d, "q");
            let k = linear(b, n, d, d, "k");
            let v = linear(b, n, d, d, "v");
            let q = b.reshape(q, &split);
            let q = b.transpose(q, &[0, 2, 1, 3]);
            let k = b.reshape(k, &split);
            let k = b.transpose(k, &[0, 2, 3, 1]);
            let v = b.reshape(v, &split);
            let v = b.transpose(v, &[0, 2, 1, 3]);
            let s = b.matmul(q, k);
            let c = b.scalar((dh as f32).sqrt());
            let s = b.div(s, c);
            let p = b.softmax(s, -1);
            let o = b.matmul(p, v);
            let o = b.transpose(o, &[0, 2, 1, 3]);
            let o = b.reshape(o, &[DimSpec::Int(0), DimSpec::Int(0), DimSpec::Int(d as i64)]);
            let o = linear(b, o, d, d, "o");
            let x1 = b.add(x, o);
            let n2 = b.scope("ln2", |b| layer_norm(b, x1, d));
            let u = linear(b, n2, d, ff, "up");
            // GELU, erf form: x·(erf(x/√2) + 1)·0.5.
            let r2 = b.scalar(std::f32::consts::SQRT_2);
            let a = b.div(u, r2);
            let e = b.unary(smelt_ir::UnaryOp::Erf, a);
            let one = b.scalar(1.0);
            let e1 = b.add(e, one);
            let g = b.mul(u, e1);
            let half = b.scalar(0.5);
            let g = b.mul(g, half);
            let dn = linear(b, g, ff, d, "down");
            b.add(x1, dn)
        });
    }
    b.output("y", x);
    b.finish().expect("transformer builds")
}

