//! Elementwise ops: unary functions, binary arithmetic with numpy broadcasting,
//! comparisons, logic, `where` and `cast`.

use crate::attr::{AttrReader, AttrValue};
use crate::dtype::DType;
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

/// A unary elementwise function; some carry parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum UnaryOp {
    Relu,
    Gelu,
    GeluTanh,
    Tanh,
    Sigmoid,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Neg,
    Abs,
    Erf,
    Sin,
    Cos,
    Reciprocal,
    Floor,
    Ceil,
    Round,
    Sign,
    Softplus,
    Silu,
    Identity,
    Not,
    LeakyRelu { alpha: f32 },
    Elu { alpha: f32 },
    HardSigmoid { alpha: f32, beta: f32 },
    Clip {
        #[serde(with = "crate::serde_float")]
        min: f32,
        #[serde(with = "crate::serde_float")]
        max: f32,
    },
}

/// Unary ops without parameters, by text name.
pub const PLAIN_UNARY: &[(&str, UnaryOp)] = &[
    ("relu", UnaryOp::Relu),
    ("gelu", UnaryOp::Gelu),
    ("gelu_tanh", UnaryOp::GeluTanh),
    ("tanh", UnaryOp::Tanh),
    ("sigmoid", UnaryOp::Sigmoid),
    ("exp", UnaryOp::Exp),
    ("log", UnaryOp::Log),
    ("sqrt", UnaryOp::Sqrt),
    ("rsqrt", UnaryOp::Rsqrt),
    ("neg", UnaryOp::Neg),
    ("abs", UnaryOp::Abs),
    ("erf", UnaryOp::Erf),
    ("sin", UnaryOp::Sin),
    ("cos", UnaryOp::Cos),
    ("reciprocal", UnaryOp::Reciprocal),
    ("floor", UnaryOp::Floor),
    ("ceil", UnaryOp::Ceil),
    ("round", UnaryOp::Round),
    ("sign", UnaryOp::Sign),
    ("softplus", UnaryOp::Softplus),
    ("silu", UnaryOp::Silu),
    ("identity", UnaryOp::Identity),
    ("not", UnaryOp::Not),
];

/// Names of the unary ops that take parameters, with the parameters' names and
/// defaults in order.
pub const PARAM_UNARY: &[(&str, &[(&str, f32)])] = &[
    ("leaky_relu", &[("alpha", 0.01)]),
    ("elu", &[("alpha", 1.0)]),
    ("hard_sigmoid", &[("alpha", 0.2), ("beta", 0.5)]),
    ("clip", &[("min", f32::NEG_INFINITY), ("max", f32::INFINITY)]),
];

impl UnaryOp {
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::LeakyRelu { .. } => "leaky_relu",
            UnaryOp::Elu { .. } => "elu",
            UnaryOp::HardSigmoid { .. } => "hard_sigmoid",
            UnaryOp::Clip { .. } => "clip",
            plain => PLAIN_UNARY.iter().find(|(_, u)| u == plain).map(|(n, _)| *n).expect("every plain unary op is listed"),
        }
    }

    /// The parameters in declaration order.
    pub fn params(&self) -> Vec<f32> {
        match *self {
            UnaryOp::LeakyRelu { alpha } | UnaryOp::Elu { alpha } => vec![alpha],
            UnaryOp::HardSigmoid { alpha, beta } => vec![alpha, beta],
            UnaryOp::Clip { min, max } => vec![min, max],
            _ => vec![],
        }
    }

    /// Builds a unary op from its name and parameters (missing ones take defaults).
    pub fn from_name(name: &str, params: &[f32]) -> Option<UnaryOp> {
        if let Some((_, u)) = PLAIN_UNARY.iter().find(|(n, _)| *n == name) {
            return params.is_empty().then_some(*u);
        }
        let (_, defaults) = PARAM_UNARY.iter().find(|(n, _)| *n == name)?;
        if params.len() > defaults.len() {
            return None;
        }
        let p = |i: usize| params.get(i).copied().unwrap_or(defaults[i].1);
        Some(match name {
            "leaky_relu" => UnaryOp::LeakyRelu { alpha: p(0) },
            "elu" => UnaryOp::Elu { alpha: p(0) },
            "hard_sigmoid" => UnaryOp::HardSigmoid { alpha: p(0), beta: p(1) },
            "clip" => UnaryOp::Clip { min: p(0), max: p(1) },
            _ => return None,
        })
    }

    pub(crate) fn parse(name: &str, a: &mut AttrReader) -> Option<UnaryOp> {
        if let Some((_, u)) = PLAIN_UNARY.iter().find(|(n, _)| *n == name) {
            return Some(*u);
        }
        let (_, defaults) = PARAM_UNARY.iter().find(|(n, _)| *n == name)?;
        let params: Vec<f32> = defaults.iter().map(|(p, d)| a.float(p, Some(*d))).collect();
        UnaryOp::from_name(name, &params)
    }

    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let Some((_, defaults)) = PARAM_UNARY.iter().find(|(n, _)| *n == self.name()) else {
            return vec![];
        };
        defaults
            .iter()
            .zip(self.params())
            .filter(|((_, d), v)| d.to_bits() != v.to_bits())
            .map(|((n, _), v)| (*n, AttrValue::Float(v)))
            .collect()
    }

    /// Which input dtypes the op accepts.
    pub fn accepts(&self, d: DType) -> bool {
        match self {
            UnaryOp::Not => d == DType::Bool,
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Relu | UnaryOp::Identity => {
                d.is_float() || (d.is_int() && d != DType::U8) || (d == DType::U8 && !matches!(self, UnaryOp::Neg))
            }
            _ => d.is_float(),
        }
    }

    /// Applies the function to one f32 value (the reference semantics).
    pub fn eval(&self, x: f32) -> f32 {
        match *self {
            // NaN propagates (as numpy, ONNX and PyTorch): not `x.max(0.0)`.
            UnaryOp::Relu => {
                if x < 0.0 { 0.0 } else { x }
            }
            UnaryOp::Gelu => (0.5 * x as f64 * (1.0 + erf(x as f64 / std::f64::consts::SQRT_2))) as f32,
            UnaryOp::GeluTanh => {
                let x = x as f64;
                (0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())) as f32
            }
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => (1.0 / (1.0 + (-(x as f64)).exp())) as f32,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => (1.0 / (x as f64).sqrt()) as f32,
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Erf => erf(x as f64) as f32,
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Round => x.round_ties_even(),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            UnaryOp::Softplus => {
                let x = x as f64;
                (if x > 20.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }) as f32
            }
            UnaryOp::Silu => (x as f64 / (1.0 + (-(x as f64)).exp())) as f32,
            UnaryOp::Identity => x,
            UnaryOp::Not => (x == 0.0) as u8 as f32,
            UnaryOp::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha * x
                } else {
                    x
                }
            }
            UnaryOp::Elu { alpha } => {
                if x < 0.0 {
                    (alpha as f64 * ((x as f64).exp() - 1.0)) as f32
                } else {
                    x
                }
            }
            UnaryOp::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            UnaryOp::Clip { min, max } => {
                if x.is_nan() { x } else { x.max(min).min(max) }
            }
        }
    }
}

/// The error function, to double precision (Abramowitz–Stegun 7.1.26 is too coarse
/// for an oracle; this uses the series / continued fraction split).
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let r = if ax < 2.5 {
        // Maclaurin series: erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)).
        let mut sum = 0.0;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        loop {
            let t = term / (2.0 * n + 1.0);
            sum += t;
            // `<=`: at x = 0 every term is 0, and `<` would never stop.
            if t.abs() <= 1e-17 * sum.abs() {
                break;
            }
            n += 1.0;
            term *= -x2 / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc, evaluated bottom-up.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        1.0 - (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * (ax + f))
    };
    if x < 0.0 { -r } else { r }
}

/// A binary elementwise op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    Pow,
    Prelu,
    Equal,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    And,
    Or,
    Xor,
}

pub const BINARY: &[(&str, BinaryOp)] = &[
    ("add", BinaryOp::Add),
    ("sub", BinaryOp::Sub),
    ("mul", BinaryOp::Mul),
    ("div", BinaryOp::Div),
    ("max", BinaryOp::Max),
    ("min", BinaryOp::Min),
    ("pow", BinaryOp::Pow),
    ("prelu", BinaryOp::Prelu),
    ("equal", BinaryOp::Equal),
    ("less", BinaryOp::Less),
    ("less_equal", BinaryOp::LessEqual),
    ("greater", BinaryOp::Greater),
    ("greater_equal", BinaryOp::GreaterEqual),
    ("and", BinaryOp::And),
    ("or", BinaryOp::Or),
    ("xor", BinaryOp::Xor),
];

impl BinaryOp {
    pub fn name(&self) -> &'static str {
        BINARY.iter().find(|(_, b)| b == self).map(|(n, _)| *n).expect("every binary op is listed")
    }

    pub fn from_name(s: &str) -> Option<BinaryOp> {
        BINARY.iter().find(|(n, _)| *n == s).map(|(_, b)| *b)
    }

    pub fn is_comparison(&self) -> bool {
        matches!(self, BinaryOp::Equal | BinaryOp::Less | BinaryOp::LessEqual | BinaryOp::Greater | BinaryOp::GreaterEqual)
    }

    pub fn is_logical(&self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
    }

    /// Output dtype for operands of dtype `d`, or `None` when `d` is not accepted.
    pub fn out_dtype(&self, d: DType) -> Option<DType> {
        if self.is_logical() {
            return (d == DType::Bool).then_some(DType::Bool);
        }
        if d == DType::Bool {
            return (*self == BinaryOp::Equal).then_some(DType::Bool);
        }
        if self.is_comparison() {
            return Some(DType::Bool);
        }
        match self {
            BinaryOp::Pow | BinaryOp::Prelu => d.is_float().then_some(d),
            _ => Some(d),
        }
    }

    /// The reference semantics on f32 values (comparisons and logic give 0 or 1).
    pub fn eval(&self, a: f32, b: f32) -> f32 {
        let t = |c: bool| c as u8 as f32;
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            BinaryOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            BinaryOp::Pow => (a as f64).powf(b as f64) as f32,
            BinaryOp::Prelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
            BinaryOp::Equal => t(a == b),
            BinaryOp::Less => t(a < b),
            BinaryOp::LessEqual => t(a <= b),
            BinaryOp::Greater => t(a > b),
            BinaryOp::GreaterEqual => t(a >= b),
            BinaryOp::And => t(a != 0.0 && b != 0.0),
            BinaryOp::Or => t(a != 0.0 || b != 0.0),
            BinaryOp::Xor => t((a != 0.0) != (b != 0.0)),
        }
    }

    /// The reference semantics on integers (division truncates; `None` on division
    /// by zero).
    pub fn eval_int(&self, a: i64, b: i64) -> Option<i64> {
        let t = |c: bool| c as i64;
        Some(match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div => a.checked_div(b)?,
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Pow => a.checked_pow(u32::try_from(b).ok()?)?,
            BinaryOp::Prelu => {
                if a < 0 {
                    a * b
                } else {
                    a
                }
            }
            BinaryOp::Equal => t(a == b),
            BinaryOp::Less => t(a < b),
            BinaryOp::LessEqual => t(a <= b),
            BinaryOp::Greater => t(a > b),
            BinaryOp::GreaterEqual => t(a >= b),
            BinaryOp::And => t(a != 0 && b != 0),
            BinaryOp::Or => t(a != 0 || b != 0),
            BinaryOp::Xor => t((a != 0) != (b != 0)),
        })
    }
}

pub(crate) fn infer_unary(u: &UnaryOp, x: &TensorType) -> Result<TensorType, String> {
    if x.quant.is_some() {
        return Err(format!("{} does not take quantized input {x}; dequantize first", u.name()));
    }
    if !u.accepts(x.dtype) {
        return Err(format!("{} does not take {} input (found {x})", u.name(), x.dtype));
    }
    Ok(x.with_dtype(x.dtype))
}

pub(crate) fn infer_binary(b: &BinaryOp, x: &TensorType, y: &TensorType) -> Result<TensorType, String> {
    if x.dtype != y.dtype {
        return Err(format!("{} expects operands of one dtype, found {x} and {y}", b.name()));
    }
    if x.quant.is_some() || y.quant.is_some() {
        return Err(format!("{} does not take quantized operands; dequantize first", b.name()));
    }
    let d = b.out_dtype(x.dtype).ok_or_else(|| format!("{} does not take {} operands", b.name(), x.dtype))?;
    let shape = x
        .shape
        .broadcast(&y.shape)
        .ok_or_else(|| format!("{} cannot broadcast {} with {}", b.name(), x.shape, y.shape))?;
    Ok(TensorType::new(d, shape))
}

pub(crate) fn infer_where(c: &TensorType, a: &TensorType, b: &TensorType) -> Result<TensorType, String> {
    if c.dtype != DType::Bool {
        return Err(format!("where expects a bool condition, found {c}"));
    }
    if a.dtype != b.dtype {
        return Err(format!("where expects both branches of one dtype, found {a} and {b}"));
    }
    let s = a
        .shape
        .broadcast(&b.shape)
        .and_then(|s| s.broadcast(&c.shape))
        .ok_or_else(|| format!("where cannot broadcast {}, {} and {}", c.shape, a.shape, b.shape))?;
    Ok(TensorType::new(a.dtype, s))
}
