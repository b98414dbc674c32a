//! Elementwise expressions: the bodies of `elementwise` regions and of matmul
//! epilogues. `$i` names input i; calls are the unary and binary ops.

use crate::attr::fmt_f32;
use crate::dtype::DType;
use crate::ops::elementwise::{BinaryOp, UnaryOp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An elementwise expression tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Input(usize),
    Const(#[serde(with = "crate::serde_float")] f32),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Where(Box<Expr>, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Whether the expression calls a function that code generators evaluate by a
    /// polynomial or rational approximation (exp, tanh, sigmoid, erf, pow, …) rather
    /// than an instruction or two. Fusion and GEMM epilogues treat these as heavy.
    pub fn is_transcendental(&self) -> bool {
        match self {
            Expr::Input(_) | Expr::Const(_) => false,
            Expr::Unary(u, x) => {
                let cheap = matches!(
                    u,
                    UnaryOp::Identity
                        | UnaryOp::Relu
                        | UnaryOp::Neg
                        | UnaryOp::Abs
                        | UnaryOp::Sign
                        | UnaryOp::Clip { .. }
                        | UnaryOp::LeakyRelu { .. }
                        | UnaryOp::HardSigmoid { .. }
                        | UnaryOp::Floor
                        | UnaryOp::Ceil
                        | UnaryOp::Round
                        | UnaryOp::Not
                );
                !cheap || x.is_transcendental()
            }
            Expr::Binary(b, x, y) => *b == BinaryOp::Pow || x.is_transcendental() || y.is_transcendental(),
            Expr::Where(c, x, y) => c.is_transcendental() || x.is_transcendental() || y.is_transcendental(),
        }
    }

    pub fn input(i: usize) -> Expr {
        Expr::Input(i)
    }
    pub fn unary(u: UnaryOp, e: Expr) -> Expr {
        Expr::Unary(u, Box::new(e))
    }
    pub fn binary(b: BinaryOp, x: Expr, y: Expr) -> Expr {
        Expr::Binary(b, Box::new(x), Box::new(y))
    }

    /// Builds a call node from a name and its arguments, as the parser reads
    /// `name(arg, …)`. Unary parameters are trailing constant arguments.
    pub fn call(name: &str, args: Vec<Expr>) -> Result<Expr, String> {
        if let Some(b) = BinaryOp::from_name(name) {
            let [x, y]: [Expr; 2] = args.try_into().map_err(|a: Vec<Expr>| format!("`{name}` takes 2 arguments, found {}", a.len()))?;
            return Ok(Expr::binary(b, x, y));
        }
        if name == "where" {
            let [c, x, y]: [Expr; 3] = args.try_into().map_err(|a: Vec<Expr>| format!("`where` takes 3 arguments, found {}", a.len()))?;
            return Ok(Expr::Where(Box::new(c), Box::new(x), Box::new(y)));
        }
        let mut args = args.into_iter();
        let Some(x) = args.next() else {
            return Err(format!("`{name}` needs an argument"));
        };
        let params: Option<Vec<f32>> = args.map(|a| if let Expr::Const(c) = a { Some(c) } else { None }).collect();
        let params = params.ok_or_else(|| format!("the parameters of `{name}` must be numbers"))?;
        let u = UnaryOp::from_name(name, &params).ok_or_else(|| {
            if UnaryOp::from_name(name, &[]).is_some() {
                format!("wrong number of parameters for `{name}`")
            } else {
                format!("unknown elementwise function `{name}`")
            }
        })?;
        Ok(Expr::unary(u, x))
    }

    /// The highest input index used, plus one.
    pub fn arity(&self) -> usize {
        match self {
            Expr::Input(i) => i + 1,
            Expr::Const(_) => 0,
            Expr::Unary(_, e) => e.arity(),
            Expr::Binary(_, a, b) => a.arity().max(b.arity()),
            Expr::Where(c, a, b) => c.arity().max(a.arity()).max(b.arity()),
        }
    }

    /// The result dtype for inputs of the given dtypes (constants take the dtype of
    /// the other operand, or f32).
    pub fn dtype(&self, inputs: &[DType]) -> Result<DType, String> {
        Ok(match self {
            Expr::Input(i) => *inputs.get(*i).ok_or_else(|| format!("`${i}` names no input (there are {})", inputs.len()))?,
            Expr::Const(_) => DType::F32,
            Expr::Unary(u, e) => {
                let d = e.dtype(inputs)?;
                if !u.accepts(d) {
                    return Err(format!("{} does not take {d}", u.name()));
                }
                d
            }
            Expr::Binary(b, x, y) => {
                let (dx, dy) = (x.dtype(inputs)?, y.dtype(inputs)?);
                let d = match (&**x, &**y) {
                    (Expr::Const(_), _) => dy,
                    (_, Expr::Const(_)) => dx,
                    _ if dx == dy => dx,
                    _ => return Err(format!("{} mixes {dx} and {dy}", b.name())),
                };
                b.out_dtype(d).ok_or_else(|| format!("{} does not take {d}", b.name()))?
            }
            Expr::Where(c, x, y) => {
                if c.dtype(inputs)? != DType::Bool {
                    return Err("where needs a bool condition".into());
                }
                let (dx, dy) = (x.dtype(inputs)?, y.dtype(inputs)?);
                match (&**x, &**y) {
                    (Expr::Const(_), _) => dy,
                    (_, Expr::Const(_)) => dx,
                    _ if dx == dy => dx,
                    _ => return Err(format!("where mixes {dx} and {dy}")),
                }
            }
        })
    }

    /// Evaluates on scalar f32 inputs (the reference semantics; bools are 0/1).
    pub fn eval(&self, inputs: &[f32]) -> f32 {
        match self {
            Expr::Input(i) => inputs[*i],
            Expr::Const(c) => *c,
            Expr::Unary(u, e) => u.eval(e.eval(inputs)),
            Expr::Binary(b, x, y) => b.eval(x.eval(inputs), y.eval(inputs)),
            Expr::Where(c, x, y) => {
                if c.eval(inputs) != 0.0 {
                    x.eval(inputs)
                } else {
                    y.eval(inputs)
                }
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Input(i) => write!(f, "${i}"),
            Expr::Const(c) => fmt_f32(f, *c),
            Expr::Unary(u, e) => {
                write!(f, "{}({e}", u.name())?;
                for p in u.params() {
                    f.write_str(", ")?;
                    fmt_f32(f, p)?;
                }
                f.write_str(")")
            }
            Expr::Binary(b, x, y) => write!(f, "{}({x}, {y})", b.name()),
            Expr::Where(c, x, y) => write!(f, "where({c}, {x}, {y})"),
        }
    }
}
