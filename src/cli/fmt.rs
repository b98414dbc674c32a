//! `smelt fmt MODEL [--check | --write | --json]`: the canonical text (or JSON) form.

use super::{parse_model, reported, shown};
use smelt::ir::{text, weights};
use std::path::Path;

/// What `fmt` does with the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Print,
    Json,
    Check,
    Write,
}

pub fn main(model: &Path, mode: Mode) -> anyhow::Result<()> {
    let (g, src) = parse_model(model)?;
    let canon = text::print(&g);
    match mode {
        Mode::Print => print!("{canon}"),
        Mode::Json => println!("{}", serde_json::to_string_pretty(&g)?),
        Mode::Check => {
            if canon != src {
                let line = first_difference(&src, &canon);
                return reported(format!(
                    "error: {} is not in canonical form (first difference at line {line}); \
                     `smelt fmt --write {}` fixes it",
                    shown(model),
                    shown(model),
                ));
            }
        }
        Mode::Write => {
            if canon != src {
                if let Err(e) = weights::write_atomic(model, canon.as_bytes()) {
                    return reported(e.render(None));
                }
                eprintln!("formatted {}", shown(model));
            }
        }
    }
    Ok(())
}

/// The 1-based line where `a` and `b` first differ.
fn first_difference(a: &str, b: &str) -> usize {
    let mut la = a.lines();
    let mut lb = b.lines();
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            _ => return n,
        }
    }
}
