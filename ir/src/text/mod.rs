//! The text format (see `docs/text-format.md`): a lexer, a parser that reports every
//! error with line:column into a syntax tree, the build that resolves the tree into
//! a graph (names, attributes, types), and a canonical printer.

mod ast;
mod build;
mod lexer;
mod parser;
mod printer;
mod quant;

use crate::error::{Diagnostic, Diagnostics};
use crate::graph::Graph;

pub use printer::print;

/// Names the text format reserves: a value or symbol named so is quoted.
const RESERVED: &[&str] = &[
    "graph", "param", "const", "quant", "inf", "nan", "true", "false", "f32", "f16", "bf16", "i8", "u8", "i32", "i64", "bool",
];

/// A name as the text format writes it: as it is when it is an identifier
/// (`[A-Za-z_][A-Za-z0-9_.]*`, not reserved), else quoted (`"gpu_0/data_0"`,
/// `"onnx::Flatten_0"`), with `"` and `\` escaped by a backslash.
pub fn quote(name: &str) -> std::borrow::Cow<'_, str> {
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !RESERVED.contains(&name);
    if plain {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    std::borrow::Cow::Owned(s)
}

/// Parses one graph. On failure returns every problem found, sorted by position.
pub fn parse(src: &str) -> Result<Graph, Diagnostics> {
    let (file, mut errs) = parser::file(src);
    let g = file.map(|f| {
        let mut g = build::build(f, &mut errs);
        g.doc = parser::leading_comments(src);
        g
    });
    errs.sort_by_key(|d| d.span.map(|s| (0, s.line, s.col)).unwrap_or((1, 0, 0)));
    errs.dedup();
    match g {
        Some(g) if errs.is_empty() => Ok(g),
        _ => {
            if errs.is_empty() {
                errs.push(Diagnostic::new("no graph found"));
            }
            Err(Diagnostics(errs))
        }
    }
}

