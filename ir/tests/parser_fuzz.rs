//! The parser never panics: arbitrary text, and real models with random edits,
//! either parse (and then round-trip) or give diagnostics with locations.

use proptest::prelude::*;
use smelt_ir::text;

const SEED_MODEL: &str = include_str!("cases/infer/symbolic_cnn.smelt");
const SEED_SEQ: &str = include_str!("cases/infer/symbolic_seq.smelt");
const SEED_Q: &str = include_str!("cases/infer/quantized.smelt");

fn check(src: &str) {
    match text::parse(src) {
        Ok(g) => {
            let p = text::print(&g);
            let again = text::parse(&p).expect("printed text parses");
            assert_eq!(text::print(&again), p);
        }
        Err(d) => {
            assert!(!d.0.is_empty());
            let rendered = d.render(Some("fuzz.smelt"));
            assert!(rendered.starts_with("error: "));
        }
    }
}

/// A random edit of a seed text: delete, duplicate or replace a span, or insert
/// one of the format's own tokens.
fn mutated() -> impl Strategy<Value = String> {
    let seeds = prop_oneof![Just(SEED_MODEL), Just(SEED_SEQ), Just(SEED_Q)];
    let tokens = prop_oneof![
        Just("("), Just(")"), Just("["), Just("]"), Just("{"), Just("}"), Just(","), Just("="),
        Just("->"), Just("-"), Just("$1"), Just("1e40"), Just("-0"), Just("99999999999999999999"),
        Just("N"), Just("quant("), Just("relu("), Just("split"), Just("# c\n"), Just("\n"), Just("inf"),
        Just("nan"), Just("i8"), Just("const"), Just("param"), Just("0"), Just("é"), Just("\u{0}"),
    ];
    (seeds, proptest::collection::vec((0usize..10_000, 0usize..12, 0u8..4, tokens), 1..6)).prop_map(|(seed, edits)| {
        let mut s: Vec<char> = seed.chars().collect();
        for (pos, len, kind, tok) in edits {
            let at = pos % (s.len() + 1);
            let end = (at + len).min(s.len());
            match kind {
                0 => {
                    s.drain(at..end);
                }
                1 => {
                    let dup: Vec<char> = s[at..end].to_vec();
                    s.splice(at..at, dup);
                }
                2 => {
                    s.splice(at..end, tok.chars());
                }
                _ => {
                    s.splice(at..at, tok.chars());
                }
            }
        }
        s.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        check(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn edited_models_never_panic(s in mutated()) {
        check(&s);
    }
}

/// Ops applied to inputs of odd shapes (empty, huge, mismatched) with assorted
/// attributes: inference must answer with a type or an error, never panic.
fn op_soup() -> impl Strategy<Value = String> {
    let dim = prop_oneof![Just("0"), Just("1"), Just("3"), Just("4"), Just("N"), Just("281474976710656"), Just("9223372036854775807")];
    let dims = proptest::collection::vec(dim, 0..5);
    let dtype = prop_oneof![Just("f32"), Just("i8"), Just("i64"), Just("bool"), Just("i32")];
    let op = proptest::sample::select(smelt_ir::ops::op_names());
    let attr = prop_oneof![
        Just("axis = 0"), Just("axis = -1"), Just("axis = 7"), Just("k = 0"), Just("k = 2"),
        Just("stride = [0, 0]"), Just("stride = [2, 2]"), Just("pad = [1, 1, 1, 1]"), Just("pad = [1, 0]"),
        Just("kernel = [0, 2]"), Just("kernel = [2, 2]"), Just("kernel = [2]"), Just("groups = 0"), Just("groups = 3"),
        Just("sizes = [1, 2]"), Just("sizes = []"), Just("shape = [-1, 0]"), Just("shape = [N, -1]"),
        Just("starts = [0]"), Just("ends = [-1]"), Just("steps = [0]"), Just("hidden = 2"), Just("heads = 0"),
        Just("heads = 2"), Just("experts = 0"), Just("capacity = 0"), Just("capacity = 2"), Just("scale = 0.5"),
        Just("dtype = u8"), Just("cols = 4"), Just("block = [2, 0]"), Just("format = bsr"), Just("perm = [1, 0]"),
        Just("pads = [1, 1, 1, 1, 1, 1, 1, 1]"), Just("mode = reflect"), Just("expr = add($0, $1)"),
        Just("epilogue = relu($0)"), Just("expr = $9"), Just("to = i8"), Just("dilation = [3, 3]"),
    ];
    (
        proptest::collection::vec((dtype, dims), 1..5),
        op,
        proptest::collection::vec(attr, 0..4),
    )
        .prop_map(|(ins, op, attrs)| {
            let sig: Vec<String> =
                ins.iter().enumerate().map(|(i, (d, s))| format!("x{i}: {d}[{}]", s.join(", "))).collect();
            let args: Vec<String> = (0..ins.len()).map(|i| format!("x{i}")).collect();
            format!(
                "graph g({}) -> (y) {{\n  y = {op}({}) {{{}}}\n}}\n",
                sig.join(", "),
                args.join(", "),
                attrs.join(", ")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn odd_shapes_never_panic(s in op_soup()) {
        check(&s);
    }
}
