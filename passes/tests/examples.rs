//! Every example model (with its weights) optimizes at every level, verifies, and
//! computes what the original computes on the reference interpreter (random inputs,
//! tolerance 1e-4 relative and absolute).

mod common;

use common::{assert_same_values, root};
use smelt_passes::{OptLevel, PassManager};

fn examples() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "smelt"))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

#[test]
fn examples_compute_what_they_computed() {
    for path in examples() {
        let g = smelt_ir::load_model(&path).unwrap();
        for level in [OptLevel::O0, OptLevel::O1, OptLevel::O2, OptLevel::O3] {
            let mut o = g.clone();
            let mut pm = PassManager::pipeline(level);
            pm.set_verify(true);
            pm.run(&mut o).unwrap_or_else(|e| panic!("{} at {level:?}: {e}", path.display()));
            smelt_ir::verify(&o, smelt_ir::Weights::Required).unwrap();
            let what = format!("{} at {level:?}", path.display());
            for seed in 0..2 {
                assert_same_values(&what, &g, &o, seed);
            }
            if level == OptLevel::O2 {
                eprintln!("{what}:\n{}", smelt_ir::text::print(&o));
            }
        }
    }
}

#[test]
fn optimized_output_is_deterministic() {
    for path in examples() {
        let g = smelt_ir::load_model(&path).unwrap();
        let texts: Vec<String> = (0..2)
            .map(|_| {
                let mut o = g.clone();
                PassManager::pipeline(OptLevel::O2).run(&mut o).unwrap();
                smelt_ir::text::print(&o)
            })
            .collect();
        assert_eq!(texts[0], texts[1], "{}", path.display());
    }
}
