//! Every op of the catalogue appears in at least one numpy fixture model that the
//! manifest lists (the fixtures the interpreter is run against), so every op is
//! parsed, printed, round-tripped and run on the interpreter against independent
//! values. The manifest and the files agree: every listed case has its three
//! files, and no model file is left out of the manifest.

use std::collections::BTreeSet;

#[test]
fn every_op_has_a_fixture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interp");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.txt")).expect("MANIFEST.txt");
    let listed: Vec<&str> =
        manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).filter_map(|l| l.split_whitespace().next()).collect();
    assert!(listed.len() >= 300, "the manifest lists {} cases", listed.len());
    let mut used = BTreeSet::new();
    for case in &listed {
        for f in [format!("{case}.smelt"), format!("{case}.safetensors"), format!("{case}.io.safetensors")] {
            assert!(dir.join(&f).exists(), "{f} is listed in MANIFEST.txt but missing");
        }
        let g = smelt_ir::text::parse(&std::fs::read_to_string(dir.join(format!("{case}.smelt"))).unwrap()).unwrap();
        for id in g.node_ids() {
            used.insert(g.node(id).op.name());
        }
    }
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.path().file_name()?.to_str()?.strip_suffix(".smelt").map(str::to_string))
        .collect();
    let unlisted: Vec<&String> = files.iter().filter(|f| !listed.contains(&f.as_str())).collect();
    assert!(unlisted.is_empty(), "fixtures not in MANIFEST.txt: {unlisted:?}");
    let missing: Vec<&str> = smelt_ir::ops::op_names().into_iter().filter(|n| !used.contains(n)).collect();
    assert!(missing.is_empty(), "ops without a fixture: {missing:?}");
}
