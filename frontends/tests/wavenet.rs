//! Fast WaveNet equals WaveNet: the incremental graph, stepped over a sequence from
//! zero caches with the full graph's weights, gives the full graph's output at
//! every time step (on the reference interpreter).

use smelt_frontends::wavenet::{self, WaveNetConfig};
use smelt_ir::{Graph, Tensor};
use smelt_interp::init::random_weights;
use std::collections::BTreeMap;

/// Sets `weights` on a clone of `g` (which must declare exactly those params).
fn with_weights(g: &Graph, weights: &BTreeMap<String, Tensor>) -> Graph {
    let mut g = g.clone();
    for id in g.params() {
        let name = g.node(id).name().to_string();
        let t = weights.get(&name).unwrap_or_else(|| panic!("no weight for {name}")).clone();
        g.set_weight(name, t);
    }
    g
}

/// `x[n, c, t]` of a `[N, C, T]` tensor as a `[N, C, 1]` tensor.
fn column(x: &Tensor, t: usize) -> Tensor {
    let s = x.shape();
    let v = x.to_f32();
    let mut out = Vec::new();
    for nc in 0..s[0] * s[1] {
        out.push(v[nc * s[2] + t]);
    }
    Tensor::f32(vec![s[0], s[1], 1], out).unwrap()
}

fn check_incremental_equals_full(cfg: &WaveNetConfig, n: usize, steps: usize) {
    let full = wavenet::wavenet(cfg).unwrap();
    let step = wavenet::wavenet_step(cfg).unwrap();
    let weights = random_weights(&full, 7).unwrap();
    let (full, step) = (with_weights(&full, &weights), with_weights(&step, &weights));
    assert_eq!(full.params().len(), step.params().len(), "the two graphs share their params");

    // An input sequence with a bit of structure (and no zeros).
    let c = cfg.input_channels;
    let xs: Vec<f32> = (0..n * c * steps).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) + 0.013).collect();
    let x = Tensor::f32(vec![n, c, steps], xs).unwrap();
    let y_full =
        smelt_interp::run(&full, &BTreeMap::from([("x".to_string(), x.clone())])).unwrap().remove("y").unwrap();
    let q = cfg.quantization;
    assert_eq!(y_full.shape(), [n, q, steps]);

    // Zero caches, as the full graph's causal zero padding.
    let mut state: BTreeMap<String, Tensor> = BTreeMap::new();
    for &id in step.inputs() {
        let node = step.node(id);
        if node.name() != "x" {
            let dims: Vec<usize> = node.types[0].dims().iter().map(|d| d.fixed().map_or(n, |v| v as usize)).collect();
            state.insert(node.name().to_string(), Tensor::zeros(smelt_ir::DType::F32, dims));
        }
    }
    assert_eq!(state.len(), 1 + cfg.layers * cfg.stacks, "one cache per dilated conv and the causal conv");

    let want = y_full.to_f32();
    let mut worst = 0f32;
    for t in 0..steps {
        let mut inputs = state.clone();
        inputs.insert("x".into(), column(&x, t));
        let out = smelt_interp::run(&step, &inputs).unwrap();
        let y = out["y"].to_f32();
        for i in 0..n * q {
            let d = (y[i] - want[i * steps + t]).abs();
            worst = worst.max(d);
            assert!(d < 1e-4, "step {t}, element {i}: {} vs {}", y[i], want[i * steps + t]);
        }
        for (k, v) in state.iter_mut() {
            *v = out[&k.replacen("cache.", "cache_next.", 1)].clone();
        }
    }
    eprintln!("largest difference over {steps} steps: {worst:e}");
}

#[test]
fn incremental_generation_equals_the_full_graph() {
    let cfg = WaveNetConfig {
        layers: 4,
        stacks: 2,
        kernel: 2,
        residual: 4,
        gate: 3,
        skip: 5,
        end: 6,
        input_channels: 3,
        quantization: 8,
        log_softmax: true,
    };
    assert_eq!(cfg.receptive_field(), 2 + 2 * 15);
    // Past the receptive field: every cache has been filled and shifted through.
    check_incremental_equals_full(&cfg, 2, 40);
}

#[test]
fn incremental_generation_with_a_wider_kernel() {
    let cfg = WaveNetConfig {
        layers: 3,
        stacks: 1,
        kernel: 3,
        residual: 3,
        gate: 2,
        skip: 4,
        end: 4,
        input_channels: 2,
        quantization: 5,
        log_softmax: false,
    };
    assert_eq!(cfg.receptive_field(), 3 + 2 * 7);
    check_incremental_equals_full(&cfg, 1, 20);
}
