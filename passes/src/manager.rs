//! The pass manager: runs a pipeline of passes, verifies the graph after each one
//! (in debug and test builds), times them, and keeps the printed graph after the
//! passes named by `--print-after`. Pipelines `-O0` … `-O3` are built here.
//!
//! The manager prints nothing itself: it returns one [`PassRecord`] per pass and the
//! caller (the CLI, a test, the report bench) decides what to show.

use crate::classic::{Cse, Dce, FoldBatchNorm, FoldConstants, InferTypes, SimplifyShapes, SplitConv};
use crate::egraph::cost::CostTarget;
use crate::egraph::{EqSat, EqSatReport, Limits};
use crate::error::{Error, Result};
use crate::quant::FoldQdq;
use smelt_ir::Graph;
use std::time::{Duration, Instant};

/// What a pass says about its run (beyond changing the graph).
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Short human notes (`folded 3 batch norms`).
    pub notes: Vec<String>,
    /// The e-graph run, for the e-graph pass.
    pub eqsat: Option<EqSatReport>,
}

impl PassReport {
    pub fn note(msg: impl Into<String>) -> PassReport {
        PassReport { notes: vec![msg.into()], eqsat: None }
    }
}

/// A graph-to-graph transformation.
pub trait Pass: std::fmt::Debug {
    /// The pass's kebab-case name (used by `--print-after`).
    fn name(&self) -> &'static str;
    /// Runs the pass; the graph must verify afterwards.
    fn run(&self, g: &mut Graph) -> Result<PassReport>;
}

/// Which passes' results to keep as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrintAfter {
    #[default]
    None,
    All,
    Only(Vec<String>),
}

impl PrintAfter {
    fn wants(&self, name: &str) -> bool {
        match self {
            PrintAfter::None => false,
            PrintAfter::All => true,
            PrintAfter::Only(v) => v.iter().any(|n| n == name),
        }
    }
}

/// One pass's run.
#[derive(Debug, Clone)]
pub struct PassRecord {
    pub name: &'static str,
    pub time: Duration,
    /// Node counts (sources included) before and after.
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub report: PassReport,
    /// The graph printed after the pass, when `print_after` asked for it.
    pub printed: Option<String>,
}

/// An optimization level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OptLevel {
    O0,
    O1,
    O2,
    O3,
}

impl std::str::FromStr for OptLevel {
    type Err = Error;
    fn from_str(s: &str) -> Result<OptLevel> {
        match s.trim_start_matches("-O").trim_start_matches('O') {
            "0" => Ok(OptLevel::O0),
            "1" => Ok(OptLevel::O1),
            "2" => Ok(OptLevel::O2),
            "3" => Ok(OptLevel::O3),
            _ => Err(Error::BadLevel(s.to_string())),
        }
    }
}

/// A pipeline of passes.
#[derive(Debug, Default)]
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    print_after: PrintAfter,
    /// Run the verifier after every pass (default: in debug and test builds).
    verify: bool,
}

impl PassManager {
    pub fn new() -> PassManager {
        PassManager { passes: vec![], print_after: PrintAfter::None, verify: cfg!(debug_assertions) }
    }

    /// The standard pipeline of a level:
    /// - `-O0`: type inference only;
    /// - `-O1`: + shape simplification, batch-norm folding, splitting convs by the
    ///   chunks of a split of their output channels, constant folding, quantize /
///   dequantize pairs around convs and matmuls to integer kernels, CSE, DCE;
    /// - `-O2`: + the e-graph optimizer (all rule families), then folding and
    ///   cleanup of what it left, and a second e-graph run on the result;
    /// - `-O3`: as `-O2` with larger saturation limits and the exact extractor on
    ///   graphs small enough for it.
    pub fn pipeline(level: OptLevel) -> PassManager {
        PassManager::pipeline_for(level, CostTarget::CPU)
    }

    /// The pipeline of a level with the e-graph pass costed for `target`.
    pub fn pipeline_for(level: OptLevel, target: CostTarget) -> PassManager {
        let mut pm = PassManager::new();
        pm.add(InferTypes);
        if level == OptLevel::O0 {
            return pm;
        }
        pm.add(SimplifyShapes);
        pm.add(FoldBatchNorm);
        pm.add(SplitConv::new(target));
        pm.add(FoldConstants);
        pm.add(FoldQdq);
        pm.add(Cse);
        pm.add(Dce);
        if level == OptLevel::O1 {
            return pm;
        }
        let eq = if level == OptLevel::O3 { EqSat::new(Limits::o3()).with_exact(true) } else { EqSat::new(Limits::default()) };
        let eq = eq.with_target(target);
        // Twice: the first run recognizes patterns (a GELU, a layer norm) whose
        // inputs the original graph used several times; in the graph it extracts they
        // are used once, so the second run can fuse them into their producers.
        pm.add(eq.clone());
        pm.add(SimplifyShapes);
        pm.add(FoldConstants);
        pm.add(Cse);
        pm.add(Dce);
        pm.add(eq);
        pm.add(FoldConstants);
        pm.add(Dce);
        pm
    }

    pub fn add(&mut self, p: impl Pass + 'static) -> &mut PassManager {
        self.passes.push(Box::new(p));
        self
    }

    /// Keep the printed graph after these passes. Unknown names are an error.
    pub fn set_print_after(&mut self, p: PrintAfter) -> Result<&mut PassManager> {
        if let PrintAfter::Only(names) = &p {
            for n in names {
                if !self.passes.iter().any(|q| q.name() == n) {
                    let mut known: Vec<&str> = Vec::new();
                    for q in &self.passes {
                        if !known.contains(&q.name()) {
                            known.push(q.name());
                        }
                    }
                    return Err(Error::UnknownPass { name: n.clone(), known: known.join(", ") });
                }
            }
        }
        self.print_after = p;
        Ok(self)
    }

    /// Force the verifier on or off (it is on by default in debug builds).
    pub fn set_verify(&mut self, on: bool) -> &mut PassManager {
        self.verify = on;
        self
    }

    /// The names of the passes, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Runs every pass in order. On error the graph is left as the failing pass
    /// left it; the records of the passes that ran are lost with it.
    pub fn run(&self, g: &mut Graph) -> Result<Vec<PassRecord>> {
        let mut records = Vec::with_capacity(self.passes.len());
        for p in &self.passes {
            let nodes_before = g.len();
            let t0 = Instant::now();
            let report = p.run(g)?;
            let time = t0.elapsed();
            if self.verify
                && let Err(diags) = smelt_ir::verify(g, smelt_ir::Weights::IfPresent)
            {
                return Err(Error::Verify { pass: p.name(), diags });
            }
            let printed = self.print_after.wants(p.name()).then(|| smelt_ir::text::print(g));
            records.push(PassRecord { name: p.name(), time, nodes_before, nodes_after: g.len(), report, printed });
        }
        Ok(records)
    }
}

/// A `--time-passes` table: one line per pass with its time and node counts, and
/// the e-graph run's figures under its line.
pub fn time_table(records: &[PassRecord]) -> String {
    let mut s = String::from("pass                 time (ms)   nodes\n");
    let mut total = Duration::ZERO;
    for r in records {
        total += r.time;
        s.push_str(&format!(
            "{:<20} {:>9.3}   {} -> {}\n",
            r.name,
            r.time.as_secs_f64() * 1e3,
            r.nodes_before,
            r.nodes_after
        ));
        for n in &r.report.notes {
            s.push_str(&format!("  {n}\n"));
        }
        if let Some(e) = &r.report.eqsat {
            s.push_str(&format!("  {}\n", e.summary()));
        }
    }
    s.push_str(&format!("{:<20} {:>9.3}\n", "total", total.as_secs_f64() * 1e3));
    s
}
