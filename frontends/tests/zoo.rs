//! The zoo's registry: every model builds at its defaults (type inference only; the
//! interpreter runs small configs in `builders.rs` and the CLI test), settings are
//! applied and reported, and unknown models, keys and bad values are refused with
//! the valid choices named.

use smelt_frontends::zoo::{self, ZooError};

fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn every_model_builds_at_its_defaults() {
    let models = zoo::models();
    assert_eq!(models.len(), 23);
    for m in &models {
        let built = zoo::build(m.name, &[]).unwrap_or_else(|e| panic!("{}: {e}", m.name));
        assert_eq!(built.graph.name, m.name);
        let defaults: Vec<(String, String)> = m.keys.iter().map(|k| (k.name.to_string(), k.value.clone())).collect();
        assert_eq!(built.settings, defaults, "{}", m.name);
        assert!(!built.graph.params().is_empty(), "{}", m.name);
    }
}

#[test]
fn the_default_resnets_have_their_published_sizes() {
    // Parameter counts of torchvision's resnet18/34/50 (conv, fc, and batch-norm
    // scale/bias; the running statistics are buffers there and params here).
    for (name, published) in [("resnet18", 11_689_512u64), ("resnet34", 21_797_672), ("resnet50", 25_557_032)] {
        let g = zoo::build(name, &[]).unwrap().graph;
        let mut total = 0u64;
        let mut stats = 0u64;
        for id in g.params() {
            let n = g.node(id);
            let numel = n.types[0].shape.numel().unwrap();
            total += numel;
            if n.name().ends_with(".mean") || n.name().ends_with(".var") {
                stats += numel;
            }
        }
        assert_eq!(total - stats, published, "{name}");
    }
}

#[test]
fn settings_are_applied() {
    let b = zoo::build("mha", &set(&[("d_model", "16"), ("heads", "4"), ("causal", "true")])).unwrap();
    let p = smelt_ir::text::print(&b.graph);
    assert!(p.contains("x: f32[N, T, 16]") && p.contains("heads = 4") && p.contains("causal = true"), "{p}");
    let b = zoo::build("transformer_encoder", &set(&[("activation", "relu"), ("layers", "1")])).unwrap();
    assert!(b.settings.contains(&("activation".into(), "relu".into())));
}

#[test]
fn bad_requests_name_the_valid_choices() {
    let e = zoo::build("resnet19", &[]).unwrap_err();
    assert!(matches!(e, ZooError::UnknownModel { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with("unknown model `resnet19`; the zoo has: resnet18, resnet34"), "{msg}");
    assert!(msg.contains("wavenet_step"), "{msg}");

    let msg = zoo::build("resnet18", &set(&[("widht", "8")])).unwrap_err().to_string();
    assert_eq!(msg, "model `resnet18` has no key `widht`; its keys are: width, image, channels, classes");
    // The depth of a named ResNet is not a setting.
    let msg = zoo::build("resnet50", &set(&[("depth", "18")])).unwrap_err().to_string();
    assert!(msg.contains("has no key `depth`"), "{msg}");

    let msg = zoo::build("lstm", &set(&[("hidden", "-3")])).unwrap_err().to_string();
    assert_eq!(msg, "model `lstm`: bad value `-3` for `hidden`: invalid digit found in string");
    let msg = zoo::build("transformer_encoder", &set(&[("activation", "swish")])).unwrap_err().to_string();
    assert!(msg.ends_with("expected relu or gelu"), "{msg}");

    let e = zoo::build("mha", &set(&[("d_model", "10"), ("heads", "4")])).unwrap_err();
    assert_eq!(e.to_string(), "error: mha: `heads` (4) must divide `d_model` (10)");
    let e = zoo::build("wavenet", &set(&[("kernel", "1"), ("layers", "0")])).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("`layers` must be between 1 and 20, found 0") && msg.contains("`kernel` must be between 2"),
        "{msg}"
    );
    let e = zoo::build("las_listener", &set(&[("frames", "100")])).unwrap_err();
    assert!(e.to_string().contains("`frames` (100) must be a multiple of 2^pyramid = 8"), "{e}");
}

#[test]
fn extreme_settings_are_refused_or_built_never_panic() {
    for m in zoo::models() {
        for k in &m.keys {
            let values: &[&str] = if k.value.parse::<usize>().is_ok() {
                &["0", "1", "2", "3", "7", "1000", "16777216", "16777217", "18446744073709551615"]
            } else {
                &["true", "false", "relu", "gelu"]
            };
            for v in values {
                let r = std::panic::catch_unwind(|| zoo::build(m.name, &set(&[(k.name, v)])).map(|_| ()));
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => assert!(!e.to_string().is_empty()),
                    Err(_) => panic!("{} with {}={v} panicked", m.name, k.name),
                }
            }
        }
    }
}
