//! Parses model text into a [`Graph`], reporting every error it finds (syntax,
//! names, attributes, types), each with line:column.

use super::lexer::{Tok, Token, lex};
use crate::attr::{Attr, AttrReader, AttrValue};
use crate::dtype::DType;
use crate::error::{Diagnostic, Diagnostics, Span};
use crate::expr::Expr;
use crate::graph::{Graph, Value};
use crate::ops::Op;
use crate::shape::{Dim, Shape};
use crate::tensor::{Data, Tensor};
use crate::types::{Quant, TensorType};
use std::collections::HashMap;

/// Parses one graph. On failure returns every problem found, sorted by position.
pub fn parse(src: &str) -> Result<Graph, Diagnostics> {
    let (toks, lex_errs) = lex(src);
    let mut p = Parser { toks, pos: 0, errs: lex_errs };
    let file = p.file();
    let mut errs = std::mem::take(&mut p.errs);
    let g = file.map(|f| build(f, &mut errs));
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

/// A parsed but unresolved statement.
struct Stmt {
    names: Vec<(String, Span)>,
    kind: StmtKind,
}

enum StmtKind {
    Param(TensorType),
    Const(TensorType, Vec<(Lit, Span)>),
    Op { op: String, op_span: Span, args: Vec<(String, Span)>, attrs: Vec<Attr> },
}

#[derive(Debug, Clone)]
enum Lit {
    Int(i64),
    Float(f32),
    Bool(bool),
}

struct File {
    name: String,
    inputs: Vec<(String, Span, TensorType)>,
    outputs: Vec<(String, Span)>,
    stmts: Vec<Stmt>,
}

/// The error was recorded; the caller recovers.
struct Failed;
type P<T> = Result<T, Failed>;

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    errs: Vec<Diagnostic>,
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
                        Err(Failed) => self.recover(line),
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
                let (n, sp) = self.name("for an input")?;
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
                outputs.push(self.name("for an output")?);
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
                    Tok::Name(s) => {
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
        let mut names = vec![self.name("to start a statement")?];
        while self.eat(&Tok::Comma) {
            names.push(self.name("after `,`")?);
        }
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
                        args.push(self.name("for an op input")?);
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
        Ok(Stmt { names, kind })
    }
}

/// Reads `quant(...)` parameters for a type.
fn quant_from_attrs(attrs: &[Attr], ty: &TensorType) -> Result<Quant, Vec<Diagnostic>> {
    let mut r = AttrReader::new("quant", attrs);
    let axis = r.opt_int("axis");
    let scale = r.float_or_floats("scale", None);
    let zp: Vec<i32> = r.int_or_ints("zero_point", Some(vec![0; scale.len().max(1)])).into_iter().map(|z| z as i32).collect();
    let mut errs = r.finish();
    if !ty.dtype.is_quantizable() {
        errs.push(Diagnostic::new(format!("only i8 and u8 tensors are quantized, found {}", ty.dtype)));
    }
    if scale.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        errs.push(Diagnostic::new(format!("quantization scales must be positive, found {scale:?}")));
    }
    if let Some((lo, hi)) = ty.dtype.int_range()
        && zp.iter().any(|&z| (z as i64) < lo || (z as i64) > hi)
    {
        errs.push(Diagnostic::new(format!("zero points {zp:?} do not fit {}", ty.dtype)));
    }
    let q = match axis {
        None => {
            if scale.len() != 1 || zp.len() != 1 {
                errs.push(Diagnostic::new("per-tensor quantization takes one scale and one zero point (give `axis` for per-axis)"));
            }
            Quant::PerTensor { scale: scale.first().copied().unwrap_or(1.0), zero_point: zp.first().copied().unwrap_or(0) }
        }
        Some(a) => {
            let zp = if zp.len() == 1 && scale.len() > 1 && zp[0] == 0 { vec![0; scale.len()] } else { zp };
            let ax = crate::shape::normalize_axis(a, ty.rank());
            match ax {
                None => errs.push(Diagnostic::new(format!("quantization axis {a} is out of range for {}", ty.shape))),
                Some(ax) => {
                    if ty.dims()[ax].fixed() != Some(scale.len() as u64) || zp.len() != scale.len() {
                        errs.push(Diagnostic::new(format!(
                            "per-axis quantization along axis {ax} of {} needs {} scales and zero points, found {} and {}",
                            ty.shape,
                            ty.dims()[ax],
                            scale.len(),
                            zp.len()
                        )));
                    }
                }
            }
            Quant::PerAxis { axis: ax.unwrap_or(0), scale, zero_point: zp }
        }
    };
    if errs.is_empty() { Ok(q) } else { Err(errs) }
}

fn const_tensor(ty: &TensorType, lits: &[(Lit, Span)]) -> Result<Tensor, Diagnostic> {
    let shape = ty.shape.fixed().ok_or_else(|| Diagnostic::new(format!("a const needs a fixed shape, found {ty}")))?;
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(n) = n.filter(|&n| n == lits.len()) else {
        let n = n.map(|n| n.to_string()).unwrap_or_else(|| "too many".into());
        return Err(Diagnostic::new(format!("const of type {ty} needs {n} values, found {}", lits.len())));
    };
    let data = if ty.dtype.is_float() {
        let mut v = Vec::with_capacity(n);
        for (l, sp) in lits {
            v.push(match l {
                Lit::Int(i) => *i as f32,
                Lit::Float(f) => *f,
                Lit::Bool(_) => return Err(Diagnostic::new(format!("a {} const takes numbers, found a bool", ty.dtype)).at(Some(*sp))),
            });
        }
        Data::from_f32(ty.dtype, &v)
    } else if ty.dtype == DType::Bool {
        let mut v = Vec::with_capacity(n);
        for (l, sp) in lits {
            match l {
                Lit::Bool(b) => v.push(*b),
                _ => return Err(Diagnostic::new("a bool const takes `true` and `false`").at(Some(*sp))),
            }
        }
        Data::Bool(v)
    } else {
        let (lo, hi) = ty.dtype.int_range().expect("integer dtype");
        let mut v = Vec::with_capacity(n);
        for (l, sp) in lits {
            match l {
                Lit::Int(i) if *i >= lo && *i <= hi => v.push(*i),
                Lit::Int(i) => return Err(Diagnostic::new(format!("{i} does not fit {}", ty.dtype)).at(Some(*sp))),
                _ => return Err(Diagnostic::new(format!("a {} const takes integers", ty.dtype)).at(Some(*sp))),
            }
        }
        Data::from_i64(ty.dtype, &v)
    };
    Tensor::new(shape, data).map_err(|e| Diagnostic::new(e.to_string()))
}

/// Resolves names and builds the graph, then infers types. Every problem goes to
/// `errs`; values that failed are poisoned so their uses do not report again.
fn build(f: File, errs: &mut Vec<Diagnostic>) -> Graph {
    let mut g = Graph::new(f.name);
    let mut env: HashMap<String, (Option<Value>, Span)> = HashMap::new();
    let define = |env: &mut HashMap<String, (Option<Value>, Span)>, errs: &mut Vec<Diagnostic>, name: &str, sp: Span, v: Option<Value>| {
        if let Some((_, prev)) = env.get(name) {
            errs.push(Diagnostic::new(format!("value `{name}` is already defined at {prev}")).node(name).at(Some(sp)));
            return false;
        }
        env.insert(name.to_string(), (v, sp));
        true
    };
    for (name, sp, ty) in f.inputs {
        let v = g.add_input(name.clone(), ty);
        g.node_mut(v.node).span = Some(sp);
        define(&mut env, errs, &name, sp, Some(v));
    }
    for s in f.stmts {
        let (first, sp) = s.names[0].clone();
        let node_err = |m: String| Diagnostic::new(m).node(first.clone()).at(Some(sp));
        let value: Option<Vec<Value>> = match s.kind {
            StmtKind::Param(ty) => {
                if s.names.len() != 1 {
                    errs.push(node_err("param binds one name".into()));
                    None
                } else {
                    let v = g.add_param(first.clone(), ty);
                    Some(vec![v])
                }
            }
            StmtKind::Const(ty, lits) => match const_tensor(&ty, &lits) {
                Ok(t) if s.names.len() == 1 => {
                    let v = g.add_const(first.clone(), t);
                    g.node_mut(v.node).types = vec![ty];
                    Some(vec![v])
                }
                Ok(_) => {
                    errs.push(node_err("const binds one name".into()));
                    None
                }
                Err(d) => {
                    errs.push(d.node(first.clone()).op("const").at(Some(sp)));
                    None
                }
            },
            StmtKind::Op { op, op_span, args, attrs } => {
                let mut reader = AttrReader::new(&op, &attrs);
                let parsed = Op::parse(&op, &mut reader);
                let attr_errs = reader.finish();
                let mut ok = true;
                let parsed = match parsed {
                    None => {
                        errs.push(
                            Diagnostic::new(format!("unknown op `{op}`{}", suggest(&op))).node(first.clone()).at(Some(op_span)),
                        );
                        None
                    }
                    Some(o) => {
                        for d in attr_errs {
                            errs.push(d.node(first.clone()).op(op.clone()).at(Some(op_span)));
                            ok = false;
                        }
                        Some(o)
                    }
                };
                let mut ins = Vec::new();
                for (a, asp) in &args {
                    match env.get(a) {
                        Some((Some(v), _)) => ins.push(*v),
                        Some((None, _)) => ok = false,
                        None => {
                            errs.push(Diagnostic::new(format!("unknown value `{a}`")).node(first.clone()).at(Some(*asp)));
                            ok = false;
                        }
                    }
                }
                match parsed {
                    Some(o) if o.num_outputs() != s.names.len() => {
                        errs.push(
                            Diagnostic::new(format!(
                                "{} produces {} output{}, but {} name{} bound",
                                o.name(),
                                o.num_outputs(),
                                if o.num_outputs() == 1 { "" } else { "s" },
                                s.names.len(),
                                if s.names.len() == 1 { " is" } else { "s are" }
                            ))
                            .node(first.clone())
                            .op(o.name())
                            .at(Some(sp)),
                        );
                        None
                    }
                    Some(o) if ok => {
                        let names = s.names.iter().map(|(n, _)| n.clone()).collect();
                        let id = g.add_node(o, &ins, names);
                        g.node_mut(id).span = Some(sp);
                        Some((0..s.names.len()).map(|i| Value { node: id, output: i }).collect())
                    }
                    _ => None,
                }
            }
        };
        if let Some(vs) = &value
            && let Some(id) = vs.first().map(|v| v.node)
            && g.node(id).span.is_none()
        {
            g.node_mut(id).span = Some(sp);
        }
        for (i, (n, nsp)) in s.names.iter().enumerate() {
            define(&mut env, errs, n, *nsp, value.as_ref().map(|v| v[i]));
        }
    }
    let mut outs = Vec::new();
    for (o, sp) in f.outputs {
        match env.get(&o) {
            Some((Some(v), _)) => outs.push(*v),
            Some((None, _)) => {}
            None => errs.push(Diagnostic::new(format!("output `{o}` names no value")).at(Some(sp))),
        }
    }
    if outs.is_empty() && errs.is_empty() {
        errs.push(Diagnostic::new(format!("graph `{}` has no outputs", g.name)));
    }
    g.set_outputs(outs);
    if let Err(ds) = g.infer() {
        errs.extend(ds.0);
    }
    g
}

/// " (did you mean `x`?)" for a near miss among the op names.
fn suggest(op: &str) -> String {
    let best = crate::ops::op_names()
        .into_iter()
        .map(|n| (edit_distance(op, n), n))
        .min()
        .filter(|(d, _)| *d <= 2);
    match best {
        Some((_, n)) => format!(" (did you mean `{n}`?)"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + (ca != *cb) as usize).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
