//! Text in, text out: each case under `tests/cases/DIR/*.smelt` runs the passes
//! that `DIR` names (a classic pass, or the e-graph pass with one rule family;
//! a `# prune SPARSITY PATTERN` line prunes the random weights first), and
//! its snapshot shows the model before and after, and the rules that fired. Every
//! case is also checked numerically (the optimized graph computes what the original
//! computes on the interpreter, random weights and inputs) and for print ∘ parse.
//! Then every rule of every family must have fired in some case, and its result
//! must be in the extracted graph of some case (a node the rule built, chosen by
//! the cost model, not one the original graph had): so each rule has a case in
//! which what it built is computed, and checked against the original.

mod common;

use common::{assert_same_values, fill_weights};
use smelt_passes::prune;
use smelt_passes::rules::{Family, rule_names};
use smelt_passes::{Cse, Dce, EqSat, FoldBatchNorm, FoldConstants, InferTypes, Limits, PassManager, SimplifyShapes, SplitConv};
use std::collections::BTreeSet;

fn pipeline(dir: &str) -> PassManager {
    let mut pm = PassManager::new();
    pm.set_verify(true);
    pm.add(InferTypes);
    let eq = |f: &[Family]| EqSat::new(Limits::default()).with_families(f);
    match dir {
        "dce" => pm.add(Dce),
        "cse" => pm.add(Cse).add(Dce),
        "fold-constants" => pm.add(FoldConstants).add(Dce),
        "fold-batch-norm" => pm.add(FoldBatchNorm).add(Dce),
        "split-conv" => pm.add(SplitConv::default()).add(Dce),
        "simplify-shapes" => pm.add(SimplifyShapes).add(Dce),
        "algebra" => pm.add(eq(&[Family::Algebra])).add(FoldConstants).add(Dce),
        "fusion" => pm.add(eq(&[Family::Algebra, Family::Fusion])).add(FoldConstants).add(Dce),
        "patterns" => pm.add(eq(&[Family::Algebra, Family::Patterns])).add(FoldConstants).add(Dce),
        "sparsity" => pm.add(eq(&[Family::Algebra, Family::Fusion, Family::Sparsity])).add(FoldConstants).add(Dce),
        other => panic!("no pipeline for tests/cases/{other}"),
    };
    pm
}

#[test]
fn passes_before_and_after() {
    let mut fired: BTreeSet<String> = BTreeSet::new();
    let mut extracted: BTreeSet<String> = BTreeSet::new();
    insta::glob!("cases/**/*.smelt", |path| {
        let dir = path.parent().and_then(|p| p.file_name()).unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(path).unwrap();
        let mut g = smelt_ir::text::parse(&src).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        fill_weights(&mut g, 1);
        // `# prune SPARSITY PATTERN`: the linear layers' weights pruned first.
        if let Some(line) = src.lines().find_map(|l| l.strip_prefix("# prune ")) {
            let (s, p) = line.split_once(' ').expect("# prune SPARSITY PATTERN");
            let layers = prune::layers(&g);
            let refs: Vec<&prune::Layer> = layers.iter().collect();
            prune::prune(&mut g, &refs, p.parse().unwrap(), s.parse().unwrap(), false).unwrap();
        }
        let before = smelt_ir::text::print(&g);
        let mut o = g.clone();
        let records = pipeline(&dir).run(&mut o).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let after = smelt_ir::text::print(&o);
        assert_eq!(smelt_ir::text::print(&smelt_ir::text::parse(&after).unwrap()), after, "print ∘ parse");
        for seed in 0..2 {
            assert_same_values(&path.display().to_string(), &g, &o, seed);
        }
        let mut snap = format!("{before}\n# ---- after {dir} ----\n{after}");
        for r in &records {
            if let Some(e) = &r.report.eqsat {
                let rules: Vec<String> = e.applied.keys().cloned().collect();
                snap.push_str(&format!("\n# rules fired: {}\n", rules.join(", ")));
                fired.extend(rules);
                extracted.extend(e.extracted.keys().cloned());
            }
        }
        insta::assert_snapshot!(snap);
    });
    let missing: Vec<String> = rule_names().into_iter().filter(|r| !fired.contains(r)).collect();
    assert!(missing.is_empty(), "rules that no case exercises: {missing:?}");
    let unused: Vec<String> = rule_names().into_iter().filter(|r| !extracted.contains(r)).collect();
    eprintln!("rules whose results some case extracts: {} of {}", extracted.len(), rule_names().len());
    assert!(unused.is_empty(), "rules whose results no case extracts (and so no numerical check covers): {unused:?}");
}
