//! Every op of the catalogue appears in at least one numpy fixture model, so every
//! op is parsed, printed, round-tripped and run on the interpreter against
//! independent values.

use std::collections::BTreeSet;

#[test]
fn every_op_has_a_fixture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interp");
    let mut used = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "smelt") {
            let g = smelt_ir::text::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
            for id in g.node_ids() {
                used.insert(g.node(id).op.name());
            }
        }
    }
    let missing: Vec<&str> = smelt_ir::ops::op_names().into_iter().filter(|n| !used.contains(n)).collect();
    assert!(missing.is_empty(), "ops without a fixture: {missing:?}");
}
