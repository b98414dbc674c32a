//! Tokens of the text format, each with its line and column.

use crate::error::{Diagnostic, Span};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Name(String),
    /// `"any name"`: a value name or symbol that is not a plain identifier
    /// (never a keyword).
    Quoted(String),
    /// A number as written (sign excluded), and whether it looked like an integer.
    Num(String, bool),
    /// `$3`
    Dollar(usize),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Eq,
    Colon,
    Arrow,
    Minus,
    Eof,
}

impl Tok {
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("`{n}`"),
            Tok::Quoted(n) => format!("`{}`", super::quote(n)),
            Tok::Num(n, _) => format!("number `{n}`"),
            Tok::Dollar(i) => format!("`${i}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Arrow => "`->`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits text into tokens. Bad characters become diagnostics and are skipped.
pub(crate) fn lex(src: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut toks = Vec::new();
    let mut errs = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    while i < chars.len() {
        let c = chars[i];
        let span = Span { line, col };
        let start = i;
        let adv = |i: &mut usize, col: &mut u32| {
            *i += 1;
            *col += 1;
        };
        match c {
            '\n' => {
                i += 1;
                line += 1;
                col = 1;
                continue;
            }
            c if c.is_whitespace() => {
                adv(&mut i, &mut col);
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '(' | ')' | '[' | ']' | '{' | '}' | ',' | '=' | ':' => {
                let tok = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    ',' => Tok::Comma,
                    '=' => Tok::Eq,
                    _ => Tok::Colon,
                };
                adv(&mut i, &mut col);
                toks.push(Token { tok, span });
            }
            '-' => {
                adv(&mut i, &mut col);
                if i < chars.len() && chars[i] == '>' {
                    adv(&mut i, &mut col);
                    toks.push(Token { tok: Tok::Arrow, span });
                } else {
                    toks.push(Token { tok: Tok::Minus, span });
                }
            }
            '$' => {
                adv(&mut i, &mut col);
                let s = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    adv(&mut i, &mut col);
                }
                let digits: String = chars[s..i].iter().collect();
                match digits.parse::<usize>() {
                    Ok(n) => toks.push(Token { tok: Tok::Dollar(n), span }),
                    Err(_) => errs.push(Diagnostic::new("`$` must be followed by an input number").at(Some(span))),
                }
            }
            c if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let mut is_int = true;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    adv(&mut i, &mut col);
                }
                if i < chars.len() && chars[i] == '.' {
                    is_int = false;
                    adv(&mut i, &mut col);
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        adv(&mut i, &mut col);
                    }
                }
                if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                    let save = (i, col);
                    adv(&mut i, &mut col);
                    if i < chars.len() && (chars[i] == '-' || chars[i] == '+') {
                        adv(&mut i, &mut col);
                    }
                    if i < chars.len() && chars[i].is_ascii_digit() {
                        is_int = false;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            adv(&mut i, &mut col);
                        }
                    } else {
                        (i, col) = save;
                    }
                }
                let text: String = chars[start..i].iter().collect();
                toks.push(Token { tok: Tok::Num(text, is_int), span });
            }
            '"' => {
                // A quoted name: any characters but a newline; `\"` and `\\`
                // escape a quote and a backslash.
                adv(&mut i, &mut col);
                let mut name = String::new();
                let mut closed = false;
                while i < chars.len() && chars[i] != '\n' {
                    match chars[i] {
                        '"' => {
                            adv(&mut i, &mut col);
                            closed = true;
                            break;
                        }
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                            name.push(chars[i + 1]);
                            adv(&mut i, &mut col);
                            adv(&mut i, &mut col);
                        }
                        c => {
                            name.push(c);
                            adv(&mut i, &mut col);
                        }
                    }
                }
                if !closed {
                    errs.push(Diagnostic::new("a quoted name must end with `\"` on its line").at(Some(span)));
                } else if name.is_empty() {
                    errs.push(Diagnostic::new("a quoted name must not be empty").at(Some(span)));
                } else {
                    toks.push(Token { tok: Tok::Quoted(name), span });
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    adv(&mut i, &mut col);
                }
                toks.push(Token { tok: Tok::Name(chars[start..i].iter().collect()), span });
            }
            other => {
                adv(&mut i, &mut col);
                errs.push(Diagnostic::new(format!("unexpected character `{}`", other.escape_debug())).at(Some(span)));
            }
        }
    }
    toks.push(Token { tok: Tok::Eof, span: Span { line, col } });
    (toks, errs)
}
