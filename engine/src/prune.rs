//! Magnitude pruning (`smelt prune`): the linear layers' weights lose their
//! smallest entries (or blocks, or all but N of M) to a target sparsity, the
//! output error is measured against the dense model, and an accuracy budget
//! can keep the most sensitive layers dense.
//!
//! 1. The model is cleaned at `-O1` and its prunable layers found
//!    ([`smelt_passes::prune::layers`]: matmul, gemm and fused matmul with a
//!    2-d f32 weight).
//! 2. Every layer not excluded is pruned ([`smelt_passes::prune::prune`], per
//!    layer or with one global threshold) and the model is run against the
//!    dense one on the given inputs: the relative L2 error of the outputs.
//! 3. With a budget, while the error exceeds it, the layer that alone costs the
//!    most error (its *sensitivity*, measured by pruning it alone) is pruned
//!    less: one step of eight down from the target towards dense (N:M: dense).
//!    Layers stepped down leave the global threshold and are pruned alone.
//!
//! The pruned model keeps its ops: compiling it, the e-graph's sparsity rules
//! find the zeros and the cost model chooses per layer between the dense GEMM
//! and the sparse kernels. The report counts the layers that came out sparse at
//! `-O2` on the options' backend, and times both models there.

use crate::backend::Tensors;
use crate::error::{ErrorKind, Result};
use crate::options::Options;
use crate::quantize::{Measured, check_inputs, cleanup, err, run_all};
use smelt_ir::{Graph, Op};
use smelt_passes::prune::{self, Layer, Pattern};
use std::collections::HashMap;

/// What `prune` does.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// The share of each layer's weights (or of all of them, `global`) made zero.
    pub sparsity: f64,
    pub pattern: Pattern,
    /// One threshold over all layers instead of the same sparsity in each.
    pub global: bool,
    /// Layers (node names) left dense.
    pub exclude: Vec<String>,
    /// The largest relative L2 output error allowed.
    pub budget: Option<f64>,
    /// The backend (and its options) that runs the checks.
    pub run: Options,
}

impl PruneOptions {
    /// Unstructured, per layer, no budget.
    pub fn new(sparsity: f64, run: Options) -> PruneOptions {
        PruneOptions { sparsity, pattern: Pattern::Unstructured, global: false, exclude: vec![], budget: None, run }
    }
}

/// One layer's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    pub name: String,
    pub op: String,
    pub weight: String,
    /// `[out, in]`.
    pub out_in: [usize; 2],
    /// The weight's share of zeros before and after.
    pub before: f64,
    pub after: f64,
    /// `pruned`, `excluded`, `kept dense for the budget (…)`.
    pub reason: String,
    /// The output error with this layer alone pruned (measured under a budget).
    pub sensitivity: Option<f64>,
}

/// What pruning did and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneReport {
    pub pattern: String,
    pub global: bool,
    pub inputs: usize,
    pub layers: Vec<LayerReport>,
    /// The share of zeros over all prunable weights after pruning.
    pub sparsity: f64,
    /// Relative L2 error of the outputs against the dense model.
    pub error: f64,
    pub sqnr_db: f64,
    pub argmax_agreement: Option<f64>,
    pub budget: Option<f64>,
    /// The layers that compile to `sparse_matmul` at `-O2` on the backend.
    pub sparse_layers: usize,
    pub backend: String,
    /// Median time of one run, dense and pruned (ms; `smelt bench` measures properly).
    pub dense_ms: f64,
    pub pruned_ms: f64,
}

/// A pruned model and its report.
#[derive(Debug, Clone)]
pub struct Pruned {
    pub graph: Graph,
    pub report: PruneReport,
}

/// Prunes `g` (see the module docs), checking on `samples`.
pub fn prune(g: &Graph, samples: &[Tensors], o: &PruneOptions, progress: &mut dyn FnMut(&str, usize, usize)) -> Result<Pruned> {
    if !(0.0..1.0).contains(&o.sparsity) {
        return Err(err(ErrorKind::Options, format!("error: --sparsity must be in [0, 1), found {}", o.sparsity)));
    }
    if let Some(b) = o.budget
        && !(b > 0.0 && b.is_finite())
    {
        return Err(err(ErrorKind::Options, format!("error: the budget must be a positive error, found {b}")));
    }
    check_inputs(g, samples, "input")?;
    let mut g0 = g.clone();
    cleanup(&mut g0)?;
    let all = prune::layers(&g0);
    if all.is_empty() {
        return Err(err(ErrorKind::Model, "error: nothing to prune: the model has no matmul or gemm with a 2-d f32 weight param"));
    }
    for x in &o.exclude {
        if !all.iter().any(|l| &l.name == x) {
            let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).take(12).collect();
            let more = if all.len() > 12 { ", …" } else { "" };
            return Err(err(ErrorKind::Options, format!("error: --exclude `{x}` names no prunable layer (they are: {}{more})", names.join(", "))));
        }
    }
    for l in all.iter().filter(|l| !o.exclude.contains(&l.name)) {
        prune::check(l, o.pattern).map_err(|e| err(ErrorKind::Options, format!("error: --pattern {}: {e}", o.pattern)))?;
    }
    let before: HashMap<String, f64> =
        all.iter().map(|l| (l.name.clone(), g0.weight(&l.weight).map(|t| prune::sparsity(t)).unwrap_or(0.0))).collect();
    let inputs: Vec<&Tensors> = samples.iter().collect();
    let mut reference = vec![Tensors::new(); inputs.len()];
    let (dense_ms, _) = run_all(&g0, &o.run, &inputs, |i, out| {
        reference[i] = out;
        Ok(())
    })?;
    // Each layer's sparsity: the target, or less when the budget asks (a
    // ladder of eight steps down to dense; N:M has no steps between).
    let steps = if matches!(o.pattern, Pattern::NofM { .. }) { 1 } else { 8 };
    let level_sparsity = |level: usize| o.sparsity * (steps - level.min(steps)) as f64 / steps as f64;
    // The pruned graph, its error, time, and the `sparse_matmul`s it compiled to.
    let measure = |levels: &HashMap<String, usize>, only: Option<&str>| -> Result<(Graph, Measured, f64, usize)> {
        let mut p = g0.clone();
        let pick = |l: &&Layer| only.is_none_or(|n| n == l.name) && levels.contains_key(&l.name);
        let full: Vec<&Layer> = all.iter().filter(pick).filter(|l| levels[&l.name] == 0).collect();
        let fail = |e: String| err(ErrorKind::Options, format!("error: {e}"));
        prune::prune(&mut p, &full, o.pattern, o.sparsity, o.global && only.is_none()).map_err(fail)?;
        for l in all.iter().filter(pick).filter(|l| (1..steps).contains(&levels[&l.name])) {
            prune::prune(&mut p, &[l], o.pattern, level_sparsity(levels[&l.name]), false).map_err(fail)?;
        }
        let mut m = Measured::default();
        let (ms, optimized) = run_all(&p, &o.run, &inputs, |i, out| {
            m.add(&reference[i], &out);
            Ok(())
        })?;
        let sparse = optimized.node_ids().filter(|&id| matches!(optimized.node(id).op, Op::SparseMatMul(_))).count();
        Ok((p, m, ms, sparse))
    };
    let mut levels: HashMap<String, usize> = all.iter().filter(|l| !o.exclude.contains(&l.name)).map(|l| (l.name.clone(), 0)).collect();
    let mut sens: HashMap<String, f64> = HashMap::new();
    progress("check", 0, 1);
    let (mut graph, mut m, mut pruned_ms, mut sparse_layers) = measure(&levels, None)?;
    if let Some(budget) = o.budget
        && m.error() > budget
    {
        // Each layer's sensitivity: the error with it alone pruned at its level.
        let names: Vec<String> = levels.keys().cloned().collect();
        for (i, n) in names.iter().enumerate() {
            progress("sensitivity", i, names.len());
            sens.insert(n.clone(), measure(&levels, Some(n))?.1.error());
        }
        // The most sensitive layer steps down until the budget holds.
        while m.error() > budget {
            let Some(n) = names.iter().filter(|n| levels[*n] < steps).max_by(|a, b| sens[*a].total_cmp(&sens[*b]).then(b.cmp(a))).cloned() else {
                break;
            };
            *levels.get_mut(&n).expect("a layer") += 1;
            if levels[&n] < steps {
                sens.insert(n.clone(), measure(&levels, Some(&n))?.1.error());
            } else {
                sens.insert(n.clone(), 0.0);
            }
            progress("budget", levels.values().sum(), steps * levels.len());
            (graph, m, pruned_ms, sparse_layers) = measure(&levels, None)?;
        }
    }
    progress("check", 1, 1);
    let mut zeros = 0.0;
    let mut total = 0.0;
    let layers: Vec<LayerReport> = all
        .iter()
        .map(|l| {
            let t = graph.weight(&l.weight);
            let after = t.map(|t| prune::sparsity(t)).unwrap_or(0.0);
            let n = (l.out_in[0] * l.out_in[1]) as f64;
            zeros += after * n;
            total += n;
            let reason = match levels.get(&l.name) {
                None => "excluded".to_string(),
                Some(0) => "pruned".to_string(),
                Some(&k) if k >= steps => "kept dense for the budget".to_string(),
                Some(&k) => format!("pruned to {:.0}% for the budget", level_sparsity(k) * 100.0),
            };
            LayerReport {
                name: l.name.clone(),
                op: l.op.to_string(),
                weight: l.weight.clone(),
                out_in: l.out_in,
                before: before[&l.name],
                after,
                reason,
                sensitivity: sens.get(&l.name).copied(),
            }
        })
        .collect();
    let e = m.error();
    let report = PruneReport {
        pattern: o.pattern.to_string(),
        global: o.global,
        inputs: inputs.len(),
        layers,
        sparsity: if total > 0.0 { zeros / total } else { 0.0 },
        error: e,
        sqnr_db: if e > 0.0 { -20.0 * e.log10() } else { f64::INFINITY },
        argmax_agreement: (m.rows > 0).then(|| m.agree as f64 / m.rows as f64),
        budget: o.budget,
        sparse_layers,
        backend: o.run.backend.to_string(),
        dense_ms,
        pruned_ms,
    };
    Ok(Pruned { graph, report })
}

impl PruneReport {
    /// The report as JSON (`smelt prune --report`).
    pub fn to_json(&self) -> String {
        let r = self;
        let finite = |x: f64| if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null };
        let layers: Vec<serde_json::Value> = r
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "op": l.op, "weight": l.weight, "out_in": l.out_in, "before": l.before, "after": l.after,
                    "reason": l.reason, "sensitivity": l.sensitivity,
                })
            })
            .collect();
        let v = serde_json::json!({
            "pattern": r.pattern, "global": r.global, "inputs": r.inputs, "sparsity": r.sparsity, "error": finite(r.error),
            "sqnr_db": finite(r.sqnr_db), "argmax_agreement": r.argmax_agreement, "budget": r.budget, "sparse_layers": r.sparse_layers,
            "backend": r.backend, "dense_ms": r.dense_ms, "pruned_ms": r.pruned_ms, "layers": layers,
        });
        serde_json::to_string_pretty(&v).expect("json") + "\n"
    }
}
