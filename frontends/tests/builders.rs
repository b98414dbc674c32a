//! Every builder at a small configuration: its output types (symbolic batch and
//! lengths stay symbolic), a snapshot of its printed IR (`snapshots/builders__*.snap`),
//! the print → parse → print round trip, and a run on the reference interpreter
//! with seeded random weights — outputs finite, shaped as declared, and
//! probabilities summing to 1 where the model ends in a softmax.

use smelt_frontends::attention::{self, Activation, LasConfig, MhaConfig, NmtConfig, TransformerConfig};
use smelt_frontends::cnn::{self, DqnConfig, ResNetConfig};
use smelt_frontends::rl::{self, AlphaZeroConfig, DqnHeadConfig};
use smelt_frontends::rnn::{self, LmConfig, RnnConfig};
use smelt_frontends::wavenet::{self, WaveNetConfig};
use smelt_ir::{Bindings, Graph, Tensor, text};
use smelt_interp::init::{random_inputs, random_weights};
use std::collections::BTreeMap;

/// `name: type` of each output, joined by `; `.
fn signature(g: &Graph) -> String {
    let outs: Vec<String> =
        g.outputs().iter().map(|&v| format!("{}: {}", g.value_name(v), g.value_type(v).unwrap())).collect();
    outs.join("; ")
}

/// Snapshots the printed IR and checks that it parses back to itself.
fn check_text(name: &str, g: &Graph) {
    let p = text::print(g);
    let back = text::parse(&p).unwrap_or_else(|e| panic!("{name} does not parse back: {e}\n{p}"));
    assert_eq!(text::print(&back), p, "{name}: print ∘ parse is not the identity");
    insta::assert_snapshot!(name, p);
}

/// Runs `g` on the interpreter with random weights (seed 1) and random inputs
/// (seed 2, symbols from `dims`), `given` replacing some of them; checks that every
/// output is finite and has its declared shape.
fn run(g: &Graph, dims: &[(&str, u64)], given: BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    let mut g = g.clone();
    for (k, v) in random_weights(&g, 1).unwrap() {
        g.set_weight(k, v);
    }
    let b: Bindings = dims.iter().map(|&(k, v)| (k.to_string(), v)).collect();
    let mut inputs = random_inputs(&g, 2, &b).unwrap();
    inputs.extend(given);
    let out = smelt_interp::run(&g, &inputs).unwrap_or_else(|e| panic!("{}: {e}", g.name));
    for &v in g.outputs() {
        let name = g.value_name(v);
        let t = &out[name];
        let want: Vec<usize> = g.value_type(v).unwrap().shape.bind(&b).fixed().unwrap();
        assert_eq!(t.shape(), want, "{}: output {name}", g.name);
        assert!(t.to_f32().iter().all(|x| x.is_finite()), "{}: output {name} is not finite: {}", g.name, t.summary());
    }
    out
}

/// Checks that `t` holds (log-)probabilities along `axis` that sum to 1.
fn assert_distribution(t: &Tensor, axis: usize, log: bool) {
    let (shape, v) = (t.shape(), t.to_f32());
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    for outer in 0..v.len() / (n * inner) {
        for i in 0..inner {
            let s: f32 = (0..n).map(|k| v[(outer * n + k) * inner + i]).map(|x| if log { x.exp() } else { x }).sum();
            assert!((s - 1.0).abs() < 1e-4, "a distribution sums to {s}");
        }
    }
}

#[test]
fn resnet18_small() {
    let cfg = ResNetConfig { width: 4, image: 32, classes: 10, ..ResNetConfig::default() };
    let g = cnn::resnet(&cfg).unwrap();
    assert_eq!(signature(&g), "logits: f32[N, 10]");
    assert_eq!(g.params().len(), 1 + 4 + 4 * 2 * 2 * 5 + 3 * 5 + 2, "stem, stem bn, blocks, downsamples, fc");
    check_text("resnet18", &g);
    run(&g, &[("N", 2)], BTreeMap::new());
}

#[test]
fn resnet50_small() {
    let cfg = ResNetConfig { depth: 50, width: 2, image: 32, classes: 5, ..ResNetConfig::default() };
    let g = cnn::resnet(&cfg).unwrap();
    assert_eq!(signature(&g), "logits: f32[N, 5]");
    let fc = g.find("fc.w").unwrap();
    assert_eq!(g.value_type(fc).unwrap().to_string(), "f32[64, 5]", "bottlenecks expand ×4: 8·2·4");
    check_text("resnet50", &g);
    run(&g, &[("N", 1)], BTreeMap::new());
}

#[test]
fn dqn_small() {
    let cfg = DqnConfig { size: 36, hidden: 16, actions: 6, ..DqnConfig::default() };
    let g = cnn::dqn(&cfg).unwrap();
    assert_eq!(signature(&g), "q: f32[N, 6]");
    check_text("dqn", &g);
    run(&g, &[("N", 2)], BTreeMap::new());
    // The defaults: 84×84 frames → 64·7·7 features.
    let g = cnn::dqn(&DqnConfig::default()).unwrap();
    assert_eq!(g.value_type(g.find("fc.w").unwrap()).unwrap().to_string(), "f32[3136, 512]");
}

#[test]
fn dqn_head_dueling() {
    let cfg = DqnHeadConfig { features: 8, hidden: 16, actions: 4, dueling: true };
    let g = rl::dqn_head(&cfg).unwrap();
    assert_eq!(signature(&g), "q: f32[N, 4]");
    check_text("dqn_head", &g);
    let out = run(&g, &[("N", 3)], BTreeMap::new());
    // Q − V has zero mean over the actions: mean(Q) = V.
    assert_eq!(out["q"].shape(), [3, 4]);
    let plain = rl::dqn_head(&DqnHeadConfig { dueling: false, ..cfg }).unwrap();
    assert_eq!(signature(&plain), "q: f32[N, 4]");
}

#[test]
fn alphazero_small() {
    let cfg = AlphaZeroConfig { board: 5, planes: 3, blocks: 2, channels: 8, value_hidden: 8 };
    let g = rl::alphazero(&cfg).unwrap();
    assert_eq!(signature(&g), "policy: f32[N, 26]; value: f32[N, 1]");
    check_text("alphazero", &g);
    let out = run(&g, &[("N", 2)], BTreeMap::new());
    assert_distribution(&out["policy"], 1, true);
    assert!(out["value"].to_f32().iter().all(|v| (-1.0..=1.0).contains(v)));
    let g = rl::alphazero(&AlphaZeroConfig::default()).unwrap();
    assert_eq!(signature(&g), "policy: f32[N, 362]; value: f32[N, 1]");
}

#[test]
fn lstm_bidirectional_with_states() {
    let cfg = RnnConfig { input: 3, hidden: 5, layers: 2, bidirectional: true, initial_state: true };
    let g = rnn::lstm(&cfg).unwrap();
    assert_eq!(signature(&g), "y: f32[T, N, 10]; h: f32[4, N, 5]; c: f32[4, N, 5]");
    check_text("lstm", &g);
    run(&g, &[("T", 4), ("N", 2)], BTreeMap::new());
}

#[test]
fn gru_stack() {
    let cfg = RnnConfig { input: 3, hidden: 4, layers: 2, ..RnnConfig::default() };
    let g = rnn::gru(&cfg).unwrap();
    assert_eq!(signature(&g), "y: f32[T, N, 4]; h: f32[2, N, 4]");
    check_text("gru", &g);
    let out = run(&g, &[("T", 5), ("N", 2)], BTreeMap::new());
    // The last step of the top layer's sequence is its final state.
    let (y, h) = (out["y"].to_f32(), out["h"].to_f32());
    assert_eq!(y[4 * 8..], h[8..]);
}

#[test]
fn lstm_language_model() {
    let cfg = LmConfig { vocab: 12, embed: 6, hidden: 8, layers: 2 };
    let g = rnn::language_model(&cfg).unwrap();
    assert_eq!(signature(&g), "logp: f32[T, N, 12]; h: f32[2, N, 8]; c: f32[2, N, 8]");
    check_text("lstm_lm", &g);
    let out = run(&g, &[("T", 3), ("N", 2)], BTreeMap::new());
    assert_distribution(&out["logp"], 2, true);
}

#[test]
fn multi_head_attention() {
    let cfg = MhaConfig { d_model: 8, heads: 2, causal: true, cross: false };
    let g = attention::mha(&cfg).unwrap();
    assert_eq!(signature(&g), "y: f32[N, T, 8]");
    check_text("mha", &g);
    run(&g, &[("N", 2), ("T", 3)], BTreeMap::new());
    let cross = attention::mha(&MhaConfig { causal: false, cross: true, ..cfg }).unwrap();
    assert_eq!(signature(&cross), "y: f32[N, T, 8]");
    run(&cross, &[("N", 2), ("T", 3), ("S", 5)], BTreeMap::new());
}

#[test]
fn transformer_encoder_pre_and_post_norm() {
    let cfg = TransformerConfig { layers: 2, d_model: 8, heads: 2, ffn: 16, ..TransformerConfig::default() };
    let g = attention::transformer_encoder(&cfg).unwrap();
    assert_eq!(signature(&g), "y: f32[N, T, 8]");
    check_text("transformer_encoder", &g);
    run(&g, &[("N", 2), ("T", 3)], BTreeMap::new());
    let post = TransformerConfig { pre_norm: false, activation: Activation::Relu, causal: true, ..cfg };
    let g = attention::transformer_encoder(&post).unwrap();
    assert!(g.find("ln.scale").is_none(), "post-norm has no final norm");
    let out = run(&g, &[("N", 1), ("T", 4)], BTreeMap::new());
    // Post-norm ends in a layer norm (scale ≈ 1, bias ≈ 0): rows have mean ≈ 0.
    let mean: f32 = out["y"].to_f32()[..8].iter().sum::<f32>() / 8.0;
    assert!(mean.abs() < 0.5, "{mean}");
}

fn nmt_small() -> NmtConfig {
    NmtConfig {
        src_vocab: 11,
        tgt_vocab: 13,
        embed: 4,
        enc_hidden: 4,
        enc_layers: 2,
        dec_hidden: 6,
        dec_layers: 2,
        attn: 8,
        heads: 2,
    }
}

#[test]
fn nmt_encoder_feeds_the_decoder_step() {
    let cfg = nmt_small();
    let enc = attention::nmt_encoder(&cfg).unwrap();
    assert_eq!(signature(&enc), "keys: f32[N, S, 8]; values: f32[N, S, 8]; h: f32[2, N, 6]; c: f32[2, N, 6]");
    check_text("nmt_encoder", &enc);
    let dec = attention::nmt_decoder_step(&cfg).unwrap();
    assert_eq!(signature(&dec), "logp: f32[N, 13]; h_next: f32[2, N, 6]; c_next: f32[2, N, 6]");
    check_text("nmt_decoder_step", &dec);

    let e = run(&enc, &[("S", 5), ("N", 2)], BTreeMap::new());
    let mut state: BTreeMap<String, Tensor> =
        ["keys", "values", "h", "c"].map(|k| (k.to_string(), e[k].clone())).into();
    for step in 0..3 {
        state.insert("token".into(), Tensor::i64(vec![2], vec![step, 12 - step]).unwrap());
        let d = run(&dec, &[("S", 5), ("N", 2)], state.clone());
        assert_distribution(&d["logp"], 1, true);
        state.insert("h".into(), d["h_next"].clone());
        state.insert("c".into(), d["c_next"].clone());
    }
}

#[test]
fn listen_attend_spell() {
    let cfg = LasConfig {
        features: 5,
        frames: 8,
        listener_hidden: 3,
        pyramid: 2,
        vocab: 10,
        embed: 4,
        speller_hidden: 6,
        speller_layers: 1,
        attn: 4,
        heads: 1,
    };
    let listener = attention::las_listener(&cfg).unwrap();
    assert_eq!(signature(&listener), "keys: f32[N, 2, 4]; values: f32[N, 2, 6]");
    check_text("las_listener", &listener);
    let speller = attention::las_speller_step(&cfg).unwrap();
    assert_eq!(
        signature(&speller),
        "logp: f32[N, 10]; h_next: f32[1, N, 6]; c_next: f32[1, N, 6]; context_next: f32[N, 6]"
    );
    check_text("las_speller_step", &speller);

    let l = run(&listener, &[("N", 2)], BTreeMap::new());
    let zeros = |shape: Vec<usize>| Tensor::f32(shape.clone(), vec![0.0; shape.iter().product()]).unwrap();
    let mut state = BTreeMap::from([
        ("keys".to_string(), l["keys"].clone()),
        ("values".to_string(), l["values"].clone()),
        ("context".to_string(), zeros(vec![2, 6])),
        ("h".to_string(), zeros(vec![1, 2, 6])),
        ("c".to_string(), zeros(vec![1, 2, 6])),
    ]);
    for step in 0..3 {
        state.insert("token".into(), Tensor::i64(vec![2], vec![step, 9]).unwrap());
        let s = run(&speller, &[("N", 2), ("U", 2)], state.clone());
        assert_distribution(&s["logp"], 1, true);
        for k in ["h", "c", "context"] {
            state.insert(k.into(), s[&format!("{k}_next")].clone());
        }
    }
}

fn wavenet_small() -> WaveNetConfig {
    WaveNetConfig {
        layers: 3,
        stacks: 2,
        kernel: 2,
        residual: 4,
        gate: 4,
        skip: 6,
        end: 6,
        input_channels: 5,
        quantization: 7,
        log_softmax: false,
    }
}

#[test]
fn wavenet_full_and_step() {
    let cfg = wavenet_small();
    assert_eq!(cfg.dilations(), [1, 2, 4, 1, 2, 4]);
    assert_eq!(cfg.receptive_field(), 16);
    let g = wavenet::wavenet(&cfg).unwrap();
    assert_eq!(signature(&g), "y: f32[N, 7, T]");
    check_text("wavenet", &g);
    let out = run(&g, &[("N", 2), ("T", 6)], BTreeMap::new());
    assert_distribution(&out["y"], 1, false);

    let s = wavenet::wavenet_step(&cfg).unwrap();
    let sig = signature(&s);
    assert!(
        sig.starts_with("y: f32[N, 7, 1]; cache_next.causal: f32[N, 5, 1]; cache_next.layer0: f32[N, 4, 1]"),
        "{sig}"
    );
    assert!(sig.ends_with("cache_next.layer5: f32[N, 4, 4]"), "{sig}");
    check_text("wavenet_step", &s);
    let out = run(&s, &[("N", 2)], BTreeMap::new());
    assert_distribution(&out["y"], 1, false);
}
