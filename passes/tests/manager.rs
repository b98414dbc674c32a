//! The pass manager and the e-graph pass's controls: pipelines per level, the
//! verifier catching a broken pass, `print_after`, saturation limits and their
//! reported stop reasons, and the exact extractor never doing worse than greedy.

mod common;

use common::{assert_same_values, root};
use smelt_ir::{Graph, Op};
use smelt_passes::{EqSat, Error, Limits, OptLevel, Pass, PassManager, PassReport, PrintAfter};
use std::time::Duration;

fn example(name: &str) -> Graph {
    smelt_ir::load_model(&root().join(format!("examples/{name}.smelt"))).unwrap()
}

#[test]
fn pipelines_by_level() {
    assert_eq!(PassManager::pipeline(OptLevel::O0).names(), ["infer-types"]);
    assert!(!PassManager::pipeline(OptLevel::O1).names().contains(&"eqsat"));
    assert!(PassManager::pipeline(OptLevel::O2).names().contains(&"eqsat"));
    assert_eq!("-O3".parse::<OptLevel>().unwrap(), OptLevel::O3);
    assert!(matches!("4".parse::<OptLevel>(), Err(Error::BadLevel(_))));
}

/// A pass that breaks the graph: it retypes the first op node wrongly.
#[derive(Debug)]
struct Breaks;

impl Pass for Breaks {
    fn name(&self) -> &'static str {
        "breaks"
    }
    fn run(&self, g: &mut Graph) -> smelt_passes::Result<PassReport> {
        let id = g.node_ids().find(|&i| !g.node(i).op.is_source()).unwrap();
        g.node_mut(id).types = vec![smelt_ir::TensorType::f32([1])];
        Ok(PassReport::default())
    }
}

#[test]
fn the_verifier_catches_a_broken_pass() {
    let mut g = example("mlp");
    let mut pm = PassManager::new();
    pm.set_verify(true);
    pm.add(Breaks);
    match pm.run(&mut g) {
        Err(Error::Verify { pass, diags }) => {
            assert_eq!(pass, "breaks");
            assert!(diags.to_string().contains("differs from inferred"), "{diags}");
        }
        other => panic!("expected a verify error, got {other:?}"),
    }
}

#[test]
fn print_after_keeps_the_text_of_the_named_passes() {
    let mut g = example("resblock");
    let mut pm = PassManager::pipeline(OptLevel::O2);
    pm.set_print_after(PrintAfter::Only(vec!["fold-batch-norm".into()])).unwrap();
    let records = pm.run(&mut g).unwrap();
    let printed: Vec<&str> = records.iter().filter(|r| r.printed.is_some()).map(|r| r.name).collect();
    assert_eq!(printed, ["fold-batch-norm"]);
    assert!(!records[2].printed.as_ref().unwrap().contains("batch_norm("));
    assert!(matches!(pm.set_print_after(PrintAfter::Only(vec!["nope".into()])), Err(Error::UnknownPass { .. })));
    let table = smelt_passes::time_table(&records);
    assert!(table.contains("eqsat") && table.contains("e-graph:"), "{table}");
}

#[test]
fn limits_stop_saturation_and_say_why() {
    let g = example("attention");
    let mut typed = g.clone();
    typed.infer().unwrap();
    let cases = [
        (Limits { nodes: 100_000, iters: 1, time: Duration::from_secs(60) }, "iteration limit"),
        (Limits { nodes: 30, iters: 50, time: Duration::from_secs(60) }, "node limit"),
        (Limits::default(), "saturated"),
    ];
    for (limits, why) in cases {
        let (out, report) = EqSat::new(limits).optimize(&typed).unwrap();
        assert!(report.stop_reason.starts_with(why), "{limits:?}: {}", report.stop_reason);
        assert!(report.eclasses > 0 && report.enodes >= report.eclasses && report.iterations >= 1);
        assert!(report.cost_after <= report.cost_before);
        smelt_ir::verify(&out, smelt_ir::Weights::Required).unwrap();
        assert_same_values(why, &g, &out, 0);
    }
}

#[test]
fn exact_extraction_is_no_worse_than_greedy() {
    for name in ["mlp", "resblock", "attention"] {
        let mut g = example(name);
        PassManager::pipeline(OptLevel::O1).run(&mut g).unwrap();
        let (_, greedy) = EqSat::new(Limits::default()).optimize(&g).unwrap();
        let (out, exact) = EqSat::new(Limits::default()).with_exact(true).optimize(&g).unwrap();
        assert!(exact.cost_after <= greedy.cost_after * (1.0 + 1e-12), "{name}: {} > {}", exact.cost_after, greedy.cost_after);
        assert_same_values(name, &g, &out, 1);
        assert!(out.node_ids().any(|i| matches!(out.node(i).op, Op::FusedMatMul { .. })), "{name}");
    }
}
