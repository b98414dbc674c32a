//! A built-in model of the zoo (`smelt_frontends::zoo`) with seeded random
//! weights set on its graph, as `smelt zoo` writes it and Python's `smelt.zoo`
//! returns it: built and checked, its parameter count capped before anything
//! is drawn, its settings recorded in the graph's doc lines.

use crate::error::{Error, ErrorKind, Result};
use smelt_frontends::zoo::{self, ZooError};
use smelt_ir::Graph;

/// The most parameter elements drawn for a zoo model (1 GiB of f32).
pub const MAX_PARAMS: u64 = 1 << 28;

/// A zoo model with its weights.
#[derive(Debug)]
pub struct ZooModel {
    /// The graph, its weights set on it.
    pub graph: Graph,
    /// What the model is.
    pub about: &'static str,
    /// Every setting it was built with (defaults included), in order.
    pub settings: Vec<(String, String)>,
}

/// Builds the zoo model `name` with `settings` (`key`, `value` pairs over the
/// defaults) and random weights drawn from `seed`.
pub fn build(name: &str, settings: &[(String, String)], seed: u64) -> Result<ZooModel> {
    let built = zoo::build(name, settings).map_err(|e| match e {
        ZooError::Config(d) => Error::diags(ErrorKind::Options, d.0),
        e => Error::text(ErrorKind::Options, e.to_string()),
    })?;
    let mut g = built.graph;
    let count = g.params().iter().try_fold(0u64, |acc, &id| acc.checked_add(g.node(id).types[0].shape.numel()?));
    match count {
        Some(n) if n <= MAX_PARAMS => {}
        _ => {
            let n = count.map_or("more than 2^64".to_string(), |n| n.to_string());
            return Err(Error::text(ErrorKind::Options, format!("{name} with these settings has {n} parameters; the zoo draws at most {MAX_PARAMS}")));
        }
    }
    let tensors = smelt_interp::init::random_weights(&g, seed).map_err(|m| Error::text(ErrorKind::Model, m))?;
    for (k, t) in tensors {
        g.set_weight(k, t);
    }
    let shown: Vec<String> = built.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    g.doc = vec![
        format!("{name}: {}", built.about),
        format!("settings: {}", if shown.is_empty() { "none".to_string() } else { shown.join(", ") }),
        format!("written by `smelt zoo` with random weights (seed {seed})"),
    ];
    Ok(ZooModel { graph: g, about: built.about, settings: built.settings })
}
