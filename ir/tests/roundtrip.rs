//! Every model text in the repository parses, verifies, and round-trips through the
//! printer: `print(parse(print(g))) == print(g)`; and the JSON form round-trips.

use smelt_ir::{Weights, text, verify};
use std::path::{Path, PathBuf};

fn models() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for dir in ["examples", "tests/fixtures/interp", "tests/cases"] {
        collect(&root.join(dir), &mut out);
    }
    out.sort();
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "smelt") && !p.to_string_lossy().contains("/bad/") {
            out.push(p);
        }
    }
}

#[test]
fn every_model_round_trips() {
    let files = models();
    assert!(files.len() > 100, "expected the fixtures and examples, found {}", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let g = match text::parse(&src) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{}:\n{}", f.display(), e.render(Some(&f.display().to_string()))));
                continue;
            }
        };
        if let Err(e) = verify(&g, Weights::IfPresent) {
            failures.push(format!("{}: verify: {e}", f.display()));
            continue;
        }
        let p1 = text::print(&g);
        let g2 = text::parse(&p1).unwrap_or_else(|e| panic!("{}: printed text does not parse:\n{e}\n{p1}", f.display()));
        let p2 = text::print(&g2);
        assert_eq!(p1, p2, "{}: print is not a fixed point", f.display());
        let json = serde_json::to_string(&g).unwrap();
        let g3: smelt_ir::Graph = serde_json::from_str(&json).unwrap();
        assert_eq!(text::print(&g3), p1, "{}: JSON round trip changed the graph", f.display());
    }
    assert!(failures.is_empty(), "{} of {} models failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

/// Names that are not identifiers (ONNX's `a/b`, `x::y`, spaces, quotes,
/// backslashes, keywords) are quoted by the printer and read back as they were.
#[test]
fn quoted_names_round_trip() {
    let src = "graph g(\"in/0\": f32[\"batch size\", 3], graph: f32[N, 3]) -> (\"a\\\"b\\\\c\", \"param\") {\n  \"w::0\" = param f32[3, 3]\n  \"a\\\"b\\\\c\" = matmul(\"in/0\", \"w::0\")\n  \"param\" = add(\"a\\\"b\\\\c\", \"in/0\")\n}\n";
    let g = smelt_ir::text::parse(src).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = g.inputs().iter().map(|&i| g.node(i).name()).collect();
    assert_eq!(names, ["in/0", "graph"]);
    let outs: Vec<&str> = g.outputs().iter().map(|&v| g.value_name(v)).collect();
    assert_eq!(outs, ["a\"b\\c", "param"]);
    let printed = smelt_ir::text::print(&g);
    assert!(printed.starts_with("graph g(\"in/0\": f32[\"batch size\", 3], \"graph\": f32[N, 3]) -> (\"a\\\"b\\\\c\", \"param\") {"), "{printed}");
    let again = smelt_ir::text::parse(&printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(smelt_ir::text::print(&again), printed);
    for bad in ["graph g(\"x: f32[1]) -> (y) {\n}\n", "graph g(\"\": f32[1]) -> (y) {\n}\n"] {
        assert!(smelt_ir::text::parse(bad).is_err(), "{bad}");
    }
}
