//! Attribute values as written in the text format, and a reader that turns them
//! into an op's typed fields while collecting every error.

use crate::dtype::DType;
use crate::error::{Diagnostic, Span};
use crate::expr::Expr;
use crate::shape::Dim;
use std::fmt;

/// An attribute value as the text format spells it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f32),
    /// A bare name: `true`, `i8`, `reflect`, `N`.
    Ident(String),
    List(Vec<AttrValue>),
    Expr(Expr),
}

impl AttrValue {
    pub fn ints(v: &[i64]) -> AttrValue {
        AttrValue::List(v.iter().map(|&i| AttrValue::Int(i)).collect())
    }
    pub fn usizes(v: &[usize]) -> AttrValue {
        AttrValue::List(v.iter().map(|&i| AttrValue::Int(i as i64)).collect())
    }
    pub fn floats(v: &[f32]) -> AttrValue {
        AttrValue::List(v.iter().map(|&f| AttrValue::Float(f)).collect())
    }
    pub fn bool(b: bool) -> AttrValue {
        AttrValue::Ident(if b { "true" } else { "false" }.into())
    }
    pub fn ident(s: &str) -> AttrValue {
        AttrValue::Ident(s.into())
    }
    pub fn dims(v: &[Dim]) -> AttrValue {
        AttrValue::List(
            v.iter()
                .map(|d| match d {
                    Dim::Fixed(n) => AttrValue::Int(*n as i64),
                    Dim::Sym(s) => AttrValue::Ident(s.to_string()),
                })
                .collect(),
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            AttrValue::Int(_) => "an int",
            AttrValue::Float(_) => "a float",
            AttrValue::Ident(_) => "a name",
            AttrValue::List(_) => "a list",
            AttrValue::Expr(_) => "an expression",
        }
    }
}

/// Writes a float so that parsing it gives the same bits back.
pub fn fmt_f32(f: &mut fmt::Formatter<'_>, x: f32) -> fmt::Result {
    if x.is_nan() {
        f.write_str("nan")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        write!(f, "{x:?}")
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(x) => fmt_f32(f, *x),
            AttrValue::Ident(s) => f.write_str(s),
            AttrValue::List(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            AttrValue::Expr(e) => write!(f, "{e}"),
        }
    }
}

/// One attribute as written: name, value, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub name: String,
    pub value: AttrValue,
    pub span: Option<Span>,
}

/// Reads attributes into typed fields. Getters never fail: a missing or ill-typed
/// attribute records an error and yields a placeholder, so that one pass over a
/// statement reports every problem.
#[derive(Debug)]
pub struct AttrReader<'a> {
    op: &'a str,
    attrs: &'a [Attr],
    used: Vec<bool>,
    errors: Vec<Diagnostic>,
}

impl<'a> AttrReader<'a> {
    pub fn new(op: &'a str, attrs: &'a [Attr]) -> AttrReader<'a> {
        AttrReader { op, attrs, used: vec![false; attrs.len()], errors: Vec::new() }
    }

    pub fn op(&self) -> &str {
        self.op
    }

    /// Records an error about the op's attributes as a whole.
    pub fn error(&mut self, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(msg));
    }

    fn take(&mut self, name: &str) -> Option<&'a Attr> {
        let attrs = self.attrs;
        let mut found = None;
        for (i, a) in attrs.iter().enumerate() {
            if a.name == name {
                if self.used[i] {
                    self.errors.push(
                        Diagnostic::new(format!("attribute `{name}` of {} given twice", self.op)).at(a.span),
                    );
                } else if found.is_none() {
                    found = Some(a);
                }
                self.used[i] = true;
            }
        }
        found
    }

    fn bad(&mut self, a: &Attr, expected: &str) {
        self.errors.push(
            Diagnostic::new(format!(
                "attribute `{}` of {} expects {expected}, found {} `{}`",
                a.name,
                self.op,
                a.value.kind(),
                a.value
            ))
            .at(a.span),
        );
    }

    fn missing(&mut self, name: &str, expected: &str) {
        self.errors.push(Diagnostic::new(format!("{} needs attribute `{name}` ({expected})", self.op)));
    }

    pub fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|a| a.name == name)
    }

    fn get<T>(&mut self, name: &str, default: Option<T>, expected: &str, conv: impl Fn(&AttrValue) -> Option<T>) -> Option<T> {
        match self.take(name) {
            Some(a) => match conv(&a.value) {
                Some(v) => Some(v),
                None => {
                    self.bad(a, expected);
                    default
                }
            },
            None => {
                if default.is_none() {
                    self.missing(name, expected);
                }
                default
            }
        }
    }

    pub fn opt_int(&mut self, name: &str) -> Option<i64> {
        if !self.has(name) {
            return None;
        }
        self.get(name, None, "an int", as_int)
    }

    pub fn int(&mut self, name: &str, default: Option<i64>) -> i64 {
        self.get(name, default, "an int", as_int).unwrap_or(0)
    }

    pub fn usize(&mut self, name: &str, default: Option<usize>) -> usize {
        self.get(name, default, "a non-negative int", |v| as_int(v).and_then(|i| usize::try_from(i).ok()))
            .unwrap_or(0)
    }

    pub fn float(&mut self, name: &str, default: Option<f32>) -> f32 {
        self.get(name, default, "a number", as_float).unwrap_or(0.0)
    }

    pub fn opt_float(&mut self, name: &str) -> Option<f32> {
        if !self.has(name) {
            return None;
        }
        self.get(name, None, "a number", as_float)
    }

    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        self.get(name, Some(default), "true or false", |v| match v {
            AttrValue::Ident(s) if s == "true" => Some(true),
            AttrValue::Ident(s) if s == "false" => Some(false),
            _ => None,
        })
        .unwrap_or(default)
    }

    pub fn ints(&mut self, name: &str, default: Option<Vec<i64>>) -> Vec<i64> {
        self.get(name, default, "a list of ints", |v| match v {
            AttrValue::List(l) => l.iter().map(as_int).collect(),
            _ => None,
        })
        .unwrap_or_default()
    }

    pub fn opt_ints(&mut self, name: &str) -> Option<Vec<i64>> {
        if !self.has(name) {
            return None;
        }
        Some(self.ints(name, None))
    }

    pub fn usizes(&mut self, name: &str, default: Option<Vec<usize>>) -> Vec<usize> {
        self.get(name, default, "a list of non-negative ints", |v| match v {
            AttrValue::List(l) => l.iter().map(|x| as_int(x).and_then(|i| usize::try_from(i).ok())).collect(),
            _ => None,
        })
        .unwrap_or_default()
    }

    pub fn opt_usizes(&mut self, name: &str) -> Option<Vec<usize>> {
        if !self.has(name) {
            return None;
        }
        Some(self.usizes(name, None))
    }

    pub fn floats(&mut self, name: &str, default: Option<Vec<f32>>) -> Vec<f32> {
        self.get(name, default, "a list of numbers", |v| match v {
            AttrValue::List(l) => l.iter().map(as_float).collect(),
            _ => None,
        })
        .unwrap_or_default()
    }

    /// A float, or a list of floats (per-axis parameters).
    pub fn float_or_floats(&mut self, name: &str, default: Option<Vec<f32>>) -> Vec<f32> {
        self.get(name, default, "a number or a list of numbers", |v| match v {
            AttrValue::List(l) => l.iter().map(as_float).collect(),
            x => as_float(x).map(|f| vec![f]),
        })
        .unwrap_or_default()
    }

    pub fn int_or_ints(&mut self, name: &str, default: Option<Vec<i64>>) -> Vec<i64> {
        self.get(name, default, "an int or a list of ints", |v| match v {
            AttrValue::List(l) => l.iter().map(as_int).collect(),
            x => as_int(x).map(|i| vec![i]),
        })
        .unwrap_or_default()
    }

    pub fn dtype(&mut self, name: &str, default: Option<DType>) -> DType {
        self.get(name, default, "a dtype (f32, f16, bf16, i8, u8, i32, i64, bool)", |v| match v {
            AttrValue::Ident(s) => DType::from_name(s),
            _ => None,
        })
        .unwrap_or(DType::F32)
    }

    /// One dim: a symbol (a bare name such as `K`) or a size.
    pub fn dim_spec(&mut self, name: &str) -> DimSpec {
        self.get(name, None, "a symbol (a name such as `K`) or a size", |v| match v {
            AttrValue::Ident(s) if s != "true" && s != "false" && DType::from_name(s).is_none() => Some(DimSpec::Sym(s.clone())),
            AttrValue::Int(i) if *i >= 0 => Some(DimSpec::Int(*i)),
            _ => None,
        })
        .unwrap_or(DimSpec::Sym(String::new()))
    }

    /// One of a fixed set of names.
    pub fn choice<T: Copy>(&mut self, name: &str, choices: &[(&str, T)], default: Option<T>) -> Option<T> {
        let expected = format!(
            "one of {}",
            choices.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        );
        self.get(name, default, &expected, |v| match v {
            AttrValue::Ident(s) => choices.iter().find(|(n, _)| n == s).map(|(_, t)| *t),
            _ => None,
        })
    }

    /// A list of dims: ints and symbols, with `-1` kept as a marker by the caller.
    pub fn dim_specs(&mut self, name: &str) -> Vec<DimSpec> {
        self.get(name, None, "a list of sizes and symbols", |v| match v {
            AttrValue::List(l) => l
                .iter()
                .map(|x| match x {
                    AttrValue::Int(i) if *i >= -1 => Some(DimSpec::Int(*i)),
                    AttrValue::Ident(s) => Some(DimSpec::Sym(s.clone())),
                    _ => None,
                })
                .collect(),
            _ => None,
        })
        .unwrap_or_default()
    }

    pub fn expr(&mut self, name: &str) -> Expr {
        self.get(name, None, "an elementwise expression", |v| match v {
            AttrValue::Expr(e) => Some(e.clone()),
            AttrValue::Int(i) => Some(Expr::Const(*i as f32)),
            AttrValue::Float(f) => Some(Expr::Const(*f)),
            _ => None,
        })
        .unwrap_or(Expr::Input(0))
    }

    /// Ends reading: unknown attributes become errors. Returns every error.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        for (i, a) in self.attrs.iter().enumerate() {
            if !self.used[i] {
                self.errors.push(Diagnostic::new(format!("{} has no attribute `{}`", self.op, a.name)).at(a.span));
            }
        }
        self.errors
    }
}

/// An entry of a shape attribute (`reshape`, `expand`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DimSpec {
    Int(i64),
    Sym(String),
}

impl DimSpec {
    /// One dim as an attribute value.
    pub fn one_attr(&self) -> AttrValue {
        match self {
            DimSpec::Int(i) => AttrValue::Int(*i),
            DimSpec::Sym(s) => AttrValue::Ident(s.clone()),
        }
    }

    pub fn to_attr(v: &[DimSpec]) -> AttrValue {
        AttrValue::List(
            v.iter()
                .map(|d| match d {
                    DimSpec::Int(i) => AttrValue::Int(*i),
                    DimSpec::Sym(s) => AttrValue::Ident(s.clone()),
                })
                .collect(),
        )
    }
}

fn as_int(v: &AttrValue) -> Option<i64> {
    match v {
        AttrValue::Int(i) => Some(*i),
        _ => None,
    }
}

fn as_float(v: &AttrValue) -> Option<f32> {
    match v {
        AttrValue::Int(i) => Some(*i as f32),
        AttrValue::Float(f) => Some(*f),
        AttrValue::Ident(s) if s == "inf" => Some(f32::INFINITY),
        AttrValue::Ident(s) if s == "nan" => Some(f32::NAN),
        _ => None,
    }
}
