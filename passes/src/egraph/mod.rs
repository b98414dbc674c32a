//! The e-graph optimizer (egg): the graph goes into an e-graph, the rule families
//! of `crate::rules` saturate it within explicit limits, and extraction by the cost
//! model picks the graph that comes back. See `lang` (the language), `analysis`
//! (types, constness and uses per e-class), `convert`, `cost` and `extract`.
//!
//! The result is deterministic: the same graph and limits give a byte-identical
//! printed graph, as long as the run stops on its node or iteration limit or by
//! saturating (the time limit is a safety net; a run it stops reports so).
//! The pass never makes the graph slower by its own cost model: when the extracted
//! graph costs more than the input, the input is kept.

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod extract;
pub mod lang;

use crate::error::{Error, Result};
use crate::manager::{Pass, PassReport};
use crate::rules::{self, Family};
use analysis::EG;
use lang::ENode;
use cost::{CostModel, CostTarget};
use egg::{BackoffScheduler, Runner, StopReason};
use smelt_ir::Graph;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Saturation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub nodes: usize,
    pub iters: usize,
    pub time: Duration,
}

impl Default for Limits {
    /// The `-O2` limits.
    fn default() -> Limits {
        Limits { nodes: 60_000, iters: 16, time: Duration::from_secs(10) }
    }
}

impl Limits {
    /// The `-O3` limits.
    pub fn o3() -> Limits {
        Limits { nodes: 200_000, iters: 40, time: Duration::from_secs(30) }
    }
}

/// What an e-graph run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EqSatReport {
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Size of the e-graph when saturation stopped.
    pub eclasses: usize,
    pub enodes: usize,
    pub iterations: usize,
    pub stop_reason: String,
    pub time: Duration,
    /// How often each rule fired.
    pub applied: BTreeMap<String, usize>,
    /// For each rule, how many of its applications decided what the extracted
    /// graph computes: an e-node it created is chosen for its class, or (when it
    /// created none: its right side was a variable or an existing node) the
    /// class it merged into is computed by something other than the left side it
    /// matched. Empty when the extracted graph was not kept.
    pub extracted: BTreeMap<String, usize>,
    /// The cost model's estimate (seconds) before and after.
    pub cost_before: f64,
    pub cost_after: f64,
    /// Whether the extracted graph was kept (it is not when it costs more).
    pub kept: bool,
}

impl EqSatReport {
    /// One line: sizes, iterations, stop reason, time and estimated speed-up.
    pub fn summary(&self) -> String {
        format!(
            "e-graph: {} e-classes, {} e-nodes, {} iterations, stopped: {}, {:.1} ms; nodes {} -> {}; est. cost {:.3e} s -> {:.3e} s{}",
            self.eclasses,
            self.enodes,
            self.iterations,
            self.stop_reason,
            self.time.as_secs_f64() * 1e3,
            self.nodes_before,
            self.nodes_after,
            self.cost_before,
            self.cost_after,
            if self.kept { "" } else { " (not kept: no gain)" }
        )
    }
}

/// The e-graph pass.
#[derive(Debug, Clone)]
pub struct EqSat {
    pub limits: Limits,
    pub model: CostModel,
    pub families: Vec<Family>,
    /// Use the exact extractor when the e-graph is small enough.
    pub exact: bool,
}

impl EqSat {
    pub fn new(limits: Limits) -> EqSat {
        EqSat { limits, model: CostModel::default(), families: Family::ALL.to_vec(), exact: false }
    }

    pub fn with_exact(mut self, on: bool) -> EqSat {
        self.exact = on;
        self
    }

    pub fn with_target(mut self, t: CostTarget) -> EqSat {
        self.model.target = t;
        self
    }

    pub fn with_families(mut self, f: &[Family]) -> EqSat {
        self.families = f.to_vec();
        self
    }

    /// Runs saturation and extraction on `g`; returns the new graph and the report.
    pub fn optimize(&self, g: &Graph) -> Result<(Graph, EqSatReport)> {
        let fail = |message: String| Error::Pass { pass: "eqsat", message };
        let t0 = Instant::now();
        let conv = convert::to_egraph(g).map_err(fail)?;
        let rules = rules::rules(&self.families);
        let runner = Runner::default()
            .with_egraph(conv.eg)
            .with_node_limit(self.limits.nodes)
            .with_iter_limit(self.limits.iters)
            .with_time_limit(self.limits.time)
            .with_scheduler(BackoffScheduler::default())
            .run(&rules);
        let mut applied: BTreeMap<String, usize> = BTreeMap::new();
        for it in &runner.iterations {
            for (name, n) in &it.applied {
                *applied.entry(name.to_string()).or_default() += n;
            }
        }
        let stop_reason = match &runner.stop_reason {
            Some(StopReason::Saturated) => "saturated".to_string(),
            Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
            Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
            Some(StopReason::TimeLimit(s)) => format!("time limit ({s:.1} s)"),
            Some(StopReason::Other(s)) => s.clone(),
            None => "not run".to_string(),
        };
        let conv = convert::Converted { eg: runner.egraph, outputs: conv.outputs, names: conv.names };
        if let Some(c) = conv.eg.analysis.conflicts.first() {
            return Err(fail(format!("a rule equated values of different types: {c}")));
        }
        let roots: Vec<egg::Id> = conv.outputs.iter().map(|(_, id)| *id).collect();
        let choice = if self.exact && conv.eg.number_of_classes() <= 64 {
            extract::exact(&conv.eg, &self.model, &roots, 200_000)
        } else {
            extract::greedy(&conv.eg, &self.model)
        };
        let mut out = convert::to_graph(&conv, &choice, g).map_err(fail)?;
        let cost_before = self.model.graph_time(g);
        let cost_after = self.model.graph_time(&out);
        let kept = cost_after <= cost_before * (1.0 + 1e-9);
        let extracted = if kept { rules_extracted(&conv.eg, &choice, &roots) } else { BTreeMap::new() };
        if !kept {
            out = g.clone();
        }
        let report = EqSatReport {
            nodes_before: g.len(),
            nodes_after: out.len(),
            eclasses: conv.eg.number_of_classes(),
            enodes: conv.eg.total_number_of_nodes(),
            iterations: runner.iterations.len(),
            stop_reason,
            time: t0.elapsed(),
            applied,
            extracted,
            cost_before,
            cost_after,
            kept,
        };
        Ok((out, report))
    }
}

/// For each rule, how many of its applications decided what the extraction
/// from `roots` computes (see [`EqSatReport::extracted`]).
fn rules_extracted(eg: &EG, choice: &extract::Choice, roots: &[egg::Id]) -> BTreeMap<String, usize> {
    use egg::Language;
    let canon = |n: &ENode| n.clone().map_children(|c| eg.find(c));
    // The chosen e-node of every class the extracted graph computes.
    let mut chosen: std::collections::HashMap<egg::Id, ENode> = std::collections::HashMap::new();
    let mut stack: Vec<egg::Id> = roots.iter().map(|&r| eg.find(r)).collect();
    while let Some(id) = stack.pop() {
        if chosen.contains_key(&id) {
            continue;
        }
        if let Some(n) = choice.nodes.get(&id) {
            let n = canon(n);
            stack.extend(n.children.iter().copied());
            chosen.insert(id, n);
        }
    }
    let apps = &eg.analysis.applications;
    let mut used: Vec<bool> = apps
        .iter()
        .map(|a| {
            if a.products.is_empty() {
                let lhs = a.lhs.as_ref().map(canon);
                chosen.get(&eg.find(a.class)).is_some_and(|ch| lhs.is_some_and(|l| l != *ch))
            } else {
                a.products.iter().any(|(id, n)| {
                    let n = canon(n);
                    chosen.get(&eg.find(*id)).is_some_and(|ch| *ch == n) && a.lhs.as_ref().is_none_or(|l| canon(l) != n)
                })
            }
        })
        .collect();
    // An application whose product another, used, application matched as its
    // left side enabled it (a constant moved right so that a fusion matches):
    // it is used too, transitively.
    let products: Vec<std::collections::HashSet<ENode>> =
        apps.iter().map(|a| a.products.iter().map(|(_, n)| canon(n)).collect()).collect();
    loop {
        let mut changed = false;
        for (i, a) in apps.iter().enumerate() {
            let Some(l) = a.lhs.as_ref().filter(|_| used[i]).map(canon) else { continue };
            for (j, p) in products.iter().enumerate() {
                if !used[j] && p.contains(&l) {
                    used[j] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for (a, u) in apps.iter().zip(used) {
        if u {
            *out.entry(a.rule.clone()).or_default() += 1;
        }
    }
    out
}

impl Pass for EqSat {
    fn name(&self) -> &'static str {
        "eqsat"
    }
    fn run(&self, g: &mut Graph) -> Result<PassReport> {
        let (out, report) = self.optimize(g)?;
        *g = out;
        Ok(PassReport { notes: vec![], eqsat: Some(report) })
    }
}
