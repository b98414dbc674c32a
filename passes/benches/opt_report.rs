//! The optimizer's report (not a test): for each example model, a ResNet-50 and a
//! 12-layer transformer encoder (both built here with `GraphBuilder`, the
//! transformer with its layer norms, attention and GELU spelled out as exporters
//! write them), the -O2 pipeline's node counts before and after, the e-graph's size,
//! iterations and stop reason, and the optimization time.
//!
//! `cargo bench -p smelt-passes --bench opt_report` (release build). CostTarget: ResNet-50
//! and the transformer under 2 s each.

#[path = "../tests/common/models.rs"]
mod models;

use smelt_ir::Graph;
use smelt_passes::{OptLevel, PassManager};
use std::path::Path;
use std::time::Instant;

fn with_weights(mut g: Graph) -> Graph {
    for (k, v) in smelt_interp::init::random_weights(&g, 0).expect("random weights") {
        g.set_weight(k, v);
    }
    g
}

fn ops(g: &Graph) -> usize {
    g.node_ids().filter(|&i| !g.node(i).op.is_source()).count()
}

fn report(name: &str, g: &Graph) {
    let mut o = g.clone();
    let t0 = Instant::now();
    let records = PassManager::pipeline(OptLevel::O2).run(&mut o).expect("optimizes");
    let total = t0.elapsed();
    let e = records.iter().find_map(|r| r.report.eqsat.clone()).expect("an e-graph pass");
    let mut again = g.clone();
    PassManager::pipeline(OptLevel::O2).run(&mut again).expect("optimizes");
    let same = smelt_ir::text::print(&again) == smelt_ir::text::print(&o);
    println!(
        "{name:<12} {:>5} -> {:<5} {:>4} -> {:<4} {:>7} {:>7} {:>5}  {:<22} {:>9.1} {:>9.1}  {}",
        g.len(),
        o.len(),
        ops(g),
        ops(&o),
        e.eclasses,
        e.enodes,
        e.iterations,
        e.stop_reason,
        e.time.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        if same { "yes" } else { "NO" },
    );
}

fn main() {
    println!(
        "{:<12} {:>13} {:>12} {:>7} {:>7} {:>5}  {:<22} {:>9} {:>9}  {:<10}",
        "model", "nodes", "ops", "classes", "e-nodes", "iters", "stop reason", "eqsat ms", "O2 ms", "same twice"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&root)
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "smelt"))
        .collect();
    paths.sort();
    for p in paths {
        let g = smelt_ir::load_model(&p).expect("an example loads");
        report(&p.file_stem().unwrap_or_default().to_string_lossy(), &g);
    }
    report("resnet50", &with_weights(models::resnet(&[3, 4, 6, 3], 64, 224, 1000)));
    report("transformer", &with_weights(models::transformer(12, 128, 768, 12, 3072)));
}
