//! Text in, text out: inferred types of hand-written models, and the exact error
//! messages for bad models. Snapshots live in `ir/tests/snapshots/`.

use smelt_ir::text;

#[test]
fn inferred_types() {
    insta::glob!("cases/infer/*.smelt", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let g = text::parse(&src).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        smelt_ir::verify(&g, smelt_ir::Weights::IfPresent).unwrap();
        let printed = text::print(&g);
        assert_eq!(text::print(&text::parse(&printed).unwrap()), printed);
        insta::assert_snapshot!(printed);
    });
}

#[test]
fn error_messages() {
    insta::glob!("cases/errors/*.smelt", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let name = format!("{}.smelt", path.file_stem().unwrap().to_string_lossy());
        let err = text::parse(&src).expect_err("a bad model must not parse");
        insta::assert_snapshot!(err.render(Some(&name)));
    });
}
