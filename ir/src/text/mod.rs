//! The text format (see `docs/text-format.md`): a lexer, a parser that reports every
//! error with line:column, and a canonical printer.

mod build;
mod lexer;
mod parser;
mod printer;

pub use parser::parse;
pub use printer::print;
