//! Parses model text into its syntax tree ([`File`]), reporting every syntax
//! error it finds with line:column; `build.rs` resolves the tree into a graph.

use super::ast::{File, Lit, Stmt, StmtKind};
use super::lexer::{Tok, Token, lex};
use super::quant::quant_from_attrs;
use crate::attr::{Attr, AttrValue};
use crate::dtype::DType;
use crate::error::{Diagnostic, Span};
use crate::expr::Expr;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;

/// Parses the text of one graph into its syntax tree ([`File`]), or `None`;
/// every syntax error found is in the list.
pub(super) fn file(src: &str) -> (Option<File>, Vec<Diagnostic>) {
    let (toks, lex_errs) = lex(src);
    let mut p = Parser { toks, pos: 0, errs: lex_errs, broken: None };
    let file = p.file();
    (file, p.errs)
}

/// The error was recorded; the caller recovers.
struct Failed;
type P<T> = Result<T, Failed>;

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    errs: Vec<Diagnostic>,
    /// The names of a statement that failed after its names were read.
    broken: Option<Vec<(String, Span)>>,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }
    fn span(&self) -> Span {
        self.toks[self.pos].span
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }
    fn fail<T>(&mut self, msg: String) -> P<T> {
        let sp = self.span();
        self.errs.push(Diagnostic::new(msg).at(Some(sp)));
        Err(Failed)
    }
    fn expect(&mut self, t: Tok, context: &str) -> P<Span> {
        if self.peek() == &t {
            Ok(self.bump().span)
        } else {
            let found = self.peek().describe();
            self.fail(format!("expected {} {context}, found {found}", t.describe()))
        }
    }
    fn name(&mut self, context: &str) -> P<(String, Span)> {
        match self.peek().clone() {
            Tok::Name(n) => {
                let sp = self.bump().span;
                Ok((n, sp))
            }
            other => self.fail(format!("expected a name {context}, found {}", other.describe())),
        }
    }
    /// A value name: an identifier or a quoted name.
    fn value_name(&mut self, context: &str) -> P<(String, Span)> {
        match self.peek().clone() {
            Tok::Name(n) | Tok::Quoted(n) => {
                let sp = self.bump().span;
                Ok((n, sp))
            }
            other => self.fail(format!("expected a name {context}, found {}", other.describe())),
        }
    }

    /// Skips to the first token on a line after `line` (or to `}` / end).
    fn recover(&mut self, line: u32) {
        while !matches!(self.peek(), Tok::Eof) && self.span().line <= line {
            self.bump();
        }
    }

    fn file(&mut self) -> Option<File> {
        let header = self.header();
        let (name, inputs, outputs) = match header {
            Ok(h) => h,
            Err(Failed) => {
                // Find the body and keep going, to report its errors too.
                while !matches!(self.peek(), Tok::LBrace | Tok::Eof) {
                    self.bump();
                }
                if !self.eat(&Tok::LBrace) {
                    return None;
                }
                (String::new(), vec![], vec![])
            }
        };
        let mut stmts = Vec::new();
        loop {
            match self.peek() {
                Tok::RBrace => {
                    self.bump();
                    break;
                }
                Tok::Eof => {
                    let _ = self.fail::<()>("expected `}` to close the graph, found end of file".into());
                    break;
                }
                _ => {
                    let line = self.span().line;
                    match self.stmt() {
                        Ok(s) => stmts.push(s),
                        Err(Failed) => {
                            // Its names still exist, so their uses do not report again.
                            if let Some(names) = self.broken.take() {
                                stmts.push(Stmt { names, kind: StmtKind::Broken });
                            }
                            self.recover(line)
                        }
                    }
                }
            }
        }
        if !matches!(self.peek(), Tok::Eof) {
            let found = self.peek().describe();
            let _ = self.fail::<()>(format!("expected end of file after the graph, found {found}"));
        }
        Some(File { name, inputs, outputs, stmts })
    }

    #[allow(clippy::type_complexity)]
    fn header(&mut self) -> P<(String, Vec<(String, Span, TensorType)>, Vec<(String, Span)>)> {
        match self.peek() {
            Tok::Name(n) if n == "graph" => {
                self.bump();
            }
            other => {
                let f = other.describe();
                return self.fail(format!("expected `graph`, found {f}"));
            }
        }
        let (name, _) = self.name("for the graph")?;
        self.expect(Tok::LParen, "after the graph name")?;
        let mut inputs = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                let (n, sp) = self.value_name("for an input")?;
                self.expect(Tok::Colon, "after the input name")?;
                let ty = self.ty()?;
                inputs.push((n, sp, ty));
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(Tok::Comma, "between inputs")?;
            }
        }
        self.expect(Tok::Arrow, "after the inputs")?;
        self.expect(Tok::LParen, "before the outputs")?;
        let mut outputs = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                outputs.push(self.value_name("for an output")?);
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(Tok::Comma, "between outputs")?;
            }
        }
        self.expect(Tok::LBrace, "to open the graph body")?;
        Ok((name, inputs, outputs))
    }

    fn ty(&mut self) -> P<TensorType> {
        let (d, sp) = self.name("for a dtype")?;
        let Some(dtype) = DType::from_name(&d) else {
            self.errs.push(
                Diagnostic::new(format!("unknown dtype `{d}` (expected f32, f16, bf16, i8, u8, i32, i64 or bool)")).at(Some(sp)),
            );
            return Err(Failed);
        };
        self.expect(Tok::LBracket, "to open the shape")?;
        let mut dims = Vec::new();
        if !self.eat(&Tok::RBracket) {
            loop {
                match self.peek().clone() {
                    Tok::Num(n, true) => {
                        match n.parse::<u64>() {
                            Ok(v) if v <= crate::shape::MAX_DIM => dims.push(Dim::Fixed(v)),
                            _ => return self.fail(format!("dimension `{n}` is too large (at most 2^48)")),
                        }
                        self.bump();
                    }
                    Tok::Name(s) | Tok::Quoted(s) => {
                        dims.push(Dim::sym(&s));
                        self.bump();
                    }
                    other => return self.fail(format!("expected a size or a symbol in a shape, found {}", other.describe())),
                }
                if self.eat(&Tok::RBracket) {
                    break;
                }
                self.expect(Tok::Comma, "between dims")?;
            }
        }
        let mut ty = TensorType::new(dtype, Shape(dims));
        if matches!(self.peek(), Tok::Name(n) if n == "quant") && self.peek_at(1) == &Tok::LParen {
            let qsp = self.bump().span;
            self.bump();
            let mut attrs = Vec::new();
            loop {
                let (n, sp) = self.name("for a quantization parameter")?;
                self.expect(Tok::Eq, "after the parameter name")?;
                let v = self.value()?;
                attrs.push(Attr { name: n, value: v, span: Some(sp) });
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(Tok::Comma, "between quantization parameters")?;
            }
            // Bad parameters are reported; the type stays usable without them so
            // that the rest of the model is still checked.
            match quant_from_attrs(&attrs, &ty) {
                Ok(q) => ty.quant = Some(q),
                Err(ds) => self.errs.extend(ds.into_iter().map(|d| d.at(Some(qsp)))),
            }
        }
        Ok(ty)
    }

    fn number(&mut self) -> P<AttrValue> {
        let neg = self.eat(&Tok::Minus);
        let sign = if neg { -1.0 } else { 1.0 };
        match self.peek().clone() {
            Tok::Num(n, true) => {
                self.bump();
                let text = if neg { format!("-{n}") } else { n.clone() };
                match text.parse::<i64>() {
                    Ok(i) => Ok(AttrValue::Int(i)),
                    Err(_) => self.fail(format!("integer `{text}` is too large")),
                }
            }
            Tok::Num(n, false) => {
                self.bump();
                let text = if neg { format!("-{n}") } else { n.clone() };
                match text.parse::<f32>() {
                    Ok(f) => Ok(AttrValue::Float(f)),
                    Err(_) => self.fail(format!("bad number `{text}`")),
                }
            }
            Tok::Name(n) if n == "inf" => {
                self.bump();
                Ok(AttrValue::Float(sign * f32::INFINITY))
            }
            Tok::Name(n) if n == "nan" && !neg => {
                self.bump();
                Ok(AttrValue::Float(f32::NAN))
            }
            other => self.fail(format!("expected a number, found {}", other.describe())),
        }
    }

    fn value(&mut self) -> P<AttrValue> {
        match self.peek().clone() {
            Tok::Minus | Tok::Num(..) => self.number(),
            Tok::Name(n) if n == "inf" || n == "nan" => self.number(),
            Tok::Name(_) if self.peek_at(1) == &Tok::LParen => Ok(AttrValue::Expr(self.expr()?)),
            Tok::Dollar(_) => Ok(AttrValue::Expr(self.expr()?)),
            Tok::Name(n) => {
                self.bump();
                Ok(AttrValue::Ident(n))
            }
            Tok::LBracket => {
                self.bump();
                let mut v = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        v.push(self.value()?);
                        if self.eat(&Tok::RBracket) {
                            break;
                        }
                        self.expect(Tok::Comma, "between list items")?;
                    }
                }
                Ok(AttrValue::List(v))
            }
            other => self.fail(format!("expected an attribute value, found {}", other.describe())),
        }
    }

    fn expr(&mut self) -> P<Expr> {
        match self.peek().clone() {
            Tok::Dollar(i) => {
                self.bump();
                Ok(Expr::Input(i))
            }
            Tok::Minus | Tok::Num(..) => match self.number()? {
                AttrValue::Int(i) => Ok(Expr::Const(i as f32)),
                AttrValue::Float(f) => Ok(Expr::Const(f)),
                _ => unreachable!("number() returns numbers"),
            },
            Tok::Name(n) if n == "inf" || n == "nan" => match self.number()? {
                AttrValue::Float(f) => Ok(Expr::Const(f)),
                _ => unreachable!("inf and nan are floats"),
            },
            Tok::Name(n) => {
                let sp = self.bump().span;
                self.expect(Tok::LParen, &format!("after `{n}` in an expression"))?;
                let mut args = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        self.expect(Tok::Comma, "between arguments")?;
                    }
                }
                Expr::call(&n, args).map_err(|m| {
                    self.errs.push(Diagnostic::new(m).at(Some(sp)));
                    Failed
                })
            }
            other => self.fail(format!("expected an expression (`$i`, a number or a call), found {}", other.describe())),
        }
    }

    fn stmt(&mut self) -> P<Stmt> {
        let mut names = vec![self.value_name("to start a statement")?];
        while self.eat(&Tok::Comma) {
            names.push(self.value_name("after `,`")?);
        }
        let kind = self.stmt_rest();
        if kind.is_err() {
            self.broken = Some(names.clone());
        }
        Ok(Stmt { names, kind: kind? })
    }

    fn stmt_rest(&mut self) -> P<StmtKind> {
        self.expect(Tok::Eq, "after the value name")?;
        let (op, op_span) = self.name("for an op")?;
        let kind = match op.as_str() {
            "param" if self.peek() != &Tok::LParen => StmtKind::Param(self.ty()?),
            "const" if self.peek() != &Tok::LParen => {
                let ty = self.ty()?;
                self.expect(Tok::LBracket, "to open the constant's values")?;
                let mut lits = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        let sp = self.span();
                        let lit = match self.peek().clone() {
                            Tok::Name(b) if b == "true" || b == "false" => {
                                self.bump();
                                Lit::Bool(b == "true")
                            }
                            _ => match self.number()? {
                                AttrValue::Int(i) => Lit::Int(i),
                                AttrValue::Float(f) => Lit::Float(f),
                                _ => unreachable!("number() returns numbers"),
                            },
                        };
                        lits.push((lit, sp));
                        if self.eat(&Tok::RBracket) {
                            break;
                        }
                        self.expect(Tok::Comma, "between constant values")?;
                    }
                }
                StmtKind::Const(ty, lits)
            }
            _ => {
                self.expect(Tok::LParen, &format!("after op `{op}`"))?;
                let mut args = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        args.push(self.value_name("for an op input")?);
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        self.expect(Tok::Comma, "between op inputs")?;
                    }
                }
                let mut attrs = Vec::new();
                if self.eat(&Tok::LBrace) && !self.eat(&Tok::RBrace) {
                    loop {
                        let (n, sp) = self.name("for an attribute")?;
                        self.expect(Tok::Eq, &format!("after attribute `{n}`"))?;
                        let value = self.value()?;
                        attrs.push(Attr { name: n, value, span: Some(sp) });
                        if self.eat(&Tok::RBrace) {
                            break;
                        }
                        self.expect(Tok::Comma, "between attributes")?;
                    }
                }
                StmtKind::Op { op, op_span, args, attrs }
            }
        };
        Ok(kind)
    }
}

/// The comment lines before the first line that holds anything else.
pub(super) fn leading_comments(src: &str) -> Vec<String> {
    let mut doc = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        match t.strip_prefix('#') {
            Some(c) => doc.push(c.strip_prefix(' ').unwrap_or(c).trim_end().to_string()),
            None => break,
        }
    }
    doc
}
