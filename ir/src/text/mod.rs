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

